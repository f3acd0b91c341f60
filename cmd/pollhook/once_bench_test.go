package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pagedAPI serves n records at /items?offset=O&limit=L, in id order, as
// {"items":[…]}; it notes when it served its last page.
type pagedAPI struct {
	pages    [][]byte // the records' JSON, one a record
	lastPage atomic.Int64
}

func newPagedAPI(n int) *pagedAPI {
	a := &pagedAPI{}
	for i := range n {
		a.pages = append(a.pages, fmt.Appendf(nil,
			`{"id":%d,"updated":"2026-11-01T10:%02d:%02dZ","name":"Contact %d","email":"contact%d@example.com","company":"Example %d Ltd","phone":"+44 20 7946 %04d","tags":["lead","newsletter"]}`,
			i+1, i/60%60, i%60, i+1, i+1, i%97, i%10000))
	}
	return a
}

func (a *pagedAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	offset = min(max(offset, 0), len(a.pages))
	end := min(offset+limit, len(a.pages))
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i, rec := range a.pages[offset:end] {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(rec)
	}
	b.WriteString(`]}`)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b.Bytes())
	if end-offset < limit {
		a.lastPage.Store(time.Now().UnixNano())
	}
}

// countingReceiver answers 204 to every POST after reading its body, and
// counts them, noting the first and the last.
type countingReceiver struct {
	n           atomic.Int64
	first, last atomic.Int64
}

func (c *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	now := time.Now().UnixNano()
	if c.n.Add(1) == 1 {
		c.first.Store(now)
	}
	c.last.Store(now)
	w.WriteHeader(http.StatusNoContent)
}

func (c *countingReceiver) reset() {
	c.n.Store(0)
	c.first.Store(0)
	c.last.Store(0)
}

// plainFetchAndPost is the floor BenchmarkOnce compares pollhook with: a
// program of the standard library alone that GETs every page of the API
// and POSTs each record, as it comes, to the receiver, with workers
// requests at a time on connections it keeps. It returns how many records
// it POSTed.
func plainFetchAndPost(ctx context.Context, api, receiver string, limit, workers int) (int, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers + 1
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()

	records := make(chan json.RawMessage, workers*4)
	var posted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for range workers {
		wg.Go(func() {
			for rec := range records {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, receiver, bytes.NewReader(rec))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					errs <- fmt.Errorf("POST %s: %s", receiver, resp.Status)
					return
				}
				posted.Add(1)
			}
		})
	}
	fetch := func() error {
		defer close(records)
		for offset := 0; ; offset += limit {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/items?offset=%d&limit=%d", api, offset, limit), nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			var page struct {
				Items []json.RawMessage `json:"items"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return err
			}
			for _, rec := range page.Items {
				records <- rec
			}
			if len(page.Items) < limit {
				return nil
			}
		}
	}
	if err := fetch(); err != nil {
		errs <- err
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return int(posted.Load()), err
	}
	return int(posted.Load()), nil
}

// BenchmarkOnce measures `pollhook once` end to end: a first cycle of a
// resource with start: beginning over 20,000 new records in pages of
// 1,000 from a loopback API, each record one event POSTed (unbatched,
// max_in_flight 4, signed) to a loopback receiver, from the command's
// start to its exit. In the same run it measures plainFetchAndPost, a
// program that fetches the same pages and POSTs each record with 4
// workers and no state at all, and reports:
//
//	records/s        pollhook once
//	plain-records/s  the plain program
//	ratio            the first over the second
//	poll-s           from the start to the API's serving the last page
//	first-ms         from the start to the receiver's first request
//	tail-s           from the last page served to the last request received
//
// Run it with:
//
//	go test -run '^$' -bench BenchmarkOnce -benchtime 3x ./cmd/pollhook
func BenchmarkOnce(b *testing.B) {
	const records, limit, workers = 20000, 1000, 4
	api := newPagedAPI(records)
	up := httptest.NewServer(api)
	defer up.Close()
	rcv := &countingReceiver{}
	down := httptest.NewServer(rcv)
	defer down.Close()
	ctx := context.Background()

	var plain, once, poll, first, tail time.Duration
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		rcv.reset()
		t0 := time.Now()
		n, err := plainFetchAndPost(ctx, up.URL, down.URL+"/hook", limit, workers)
		plain += time.Since(t0)
		if err != nil || n != records || rcv.n.Load() != records {
			b.Fatalf("plain program: posted %d, received %d of %d: %v", n, rcv.n.Load(), records, err)
		}

		dir := b.TempDir()
		cfg := filepath.Join(dir, "pollhook.yaml")
		yml := fmt.Sprintf(`state:
  path: %s
sources:
  - name: api
    base_url: %s
resources:
  - name: contacts
    object: contact
    url: /items
    items: .items
    dates: { updated_field: updated, updated_format: rfc3339 }
    pagination: { type: offset, limit: %d }
    start: beginning
destinations:
  - name: app
    url: %s/hook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    max_in_flight: %d
`, filepath.Join(dir, "state.db"), up.URL, limit, down.URL, workers)
		if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
			b.Fatal(err)
		}
		rcv.reset()
		var stderr bytes.Buffer
		b.StartTimer()
		t0 = time.Now()
		err = Run(ctx, []string{"once", "-c", cfg, "--quiet"}, io.Discard, &stderr)
		d := time.Since(t0)
		b.StopTimer()
		if err != nil || rcv.n.Load() != records {
			b.Fatalf("pollhook once: received %d of %d: %v\n%s", rcv.n.Load(), records, err, stderr.String())
		}
		once += d
		lastPage := time.Unix(0, api.lastPage.Load())
		poll += lastPage.Sub(t0)
		first += time.Unix(0, rcv.first.Load()).Sub(t0)
		tail += time.Unix(0, rcv.last.Load()).Sub(lastPage)
	}
	total := float64(records * b.N)
	b.ReportMetric(total/once.Seconds(), "records/s")
	b.ReportMetric(total/plain.Seconds(), "plain-records/s")
	b.ReportMetric(plain.Seconds()/once.Seconds(), "ratio")
	b.ReportMetric(poll.Seconds()/float64(b.N), "poll-s")
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "first-ms")
	b.ReportMetric(tail.Seconds()/float64(b.N), "tail-s")
}
