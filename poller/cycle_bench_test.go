package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/pgtest"
)

const (
	benchRecords  = 100_000
	benchPageSize = 1000
)

// benchUpstream serves benchRecords Keap-like contacts at any offset and
// limit (offset pagination), from records pre-rendered so that the server
// costs little next to the client.
func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := make([][]byte, benchRecords)
	for i := range recs {
		recs[i], _ = json.Marshal(map[string]any{
			"id":           i + 1,
			"given_name":   "Ada",
			"family_name":  "Lovelace " + strconv.Itoa(i),
			"email":        fmt.Sprintf("ada%d@example.com", i),
			"company":      map[string]any{"id": i % 97, "company_name": "Analytical Engines"},
			"tag_ids":      []int{1, 2, i % 7},
			"date_created": base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z"),
			"last_updated": base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z"),
		})
	}
	tail := []byte(`],"count":` + strconv.Itoa(benchRecords) + `}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil {
			limit = benchPageSize
		}
		page := recs[min(off, len(recs)):min(off+limit, len(recs))]
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"contacts":[`))
		for i, rec := range page {
			if i > 0 {
				w.Write([]byte{','})
			}
			w.Write(rec)
		}
		w.Write(tail)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchResource(b *testing.B, url string) (*config.Resource, *config.Source) {
	b.Helper()
	yml := fmt.Sprintf(`
sources:
  - name: keap
    base_url: %s
resources:
  - name: contacts
    object: contact
    url: /contacts
    items: .contacts
    dates:
      updated_field: last_updated
      updated_format: "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
      created_field: date_created
      created_format: "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
    pagination: { type: offset, limit: %d, max_pages: 1000 }
    deletes: snapshot
    start: beginning
`, url, benchPageSize)
	cfg, err := config.Parse("bench.yaml", []byte(yml), nil)
	if err != nil {
		b.Fatal(err)
	}
	return &cfg.Resources[0], &cfg.Sources[0]
}

// heapSampler tracks the peak of live heap objects, sampled after each page.
type heapSampler struct {
	s    []metrics.Sample
	peak uint64
}

func newHeapSampler() *heapSampler {
	runtime.GC()
	return &heapSampler{s: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
}

func (h *heapSampler) sample() {
	metrics.Read(h.s)
	if v := h.s[0].Value.Uint64(); v > h.peak {
		h.peak = v
	}
}

func (h *heapSampler) report(b *testing.B) {
	b.ReportMetric(float64(h.peak)/(1<<20), "peak-heap-MiB")
}

func reportRecords(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// cpuClock adds up the CPU time (user and system, every thread: the
// upstream's too) spent while it runs. On a machine shared with other
// work, wall time varies with the neighbours' load far more than the CPU
// time a cycle takes.
type cpuClock struct {
	total, since time.Duration
}

func (c *cpuClock) start() { c.since = processCPU() }
func (c *cpuClock) stop()  { c.total += processCPU() - c.since }

// report reports the CPU time per cycle; nothing where the platform does
// not tell it.
func (c *cpuClock) report(b *testing.B) {
	if c.total > 0 {
		b.ReportMetric(c.total.Seconds()/float64(b.N), "cpu-s/op")
	}
}

// BenchmarkFullScan measures one cycle over 100,000 records in pages of
// 1,000 against the floor: fetching and JSON-decoding the same pages with
// no extraction, diff or store.
func BenchmarkFullScan(b *testing.B) {
	srv := benchUpstream(b)
	res, src := benchResource(b, srv.URL)

	b.Run("floor", func(b *testing.B) {
		h := newHeapSampler()
		n := 0
		var cpu cpuClock
		cpu.start()
		for b.Loop() {
			for off := 0; ; off += benchPageSize {
				resp, err := http.Get(fmt.Sprintf("%s/contacts?offset=%d&limit=%d", srv.URL, off, benchPageSize))
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				var doc struct {
					Contacts []any `json:"contacts"`
				}
				if err := json.Unmarshal(body, &doc); err != nil {
					b.Fatal(err)
				}
				h.sample()
				n += len(doc.Contacts)
				if len(doc.Contacts) < benchPageSize {
					break
				}
			}
		}
		cpu.stop()
		reportRecords(b, n)
		h.report(b)
		cpu.report(b)
	})

	// The same cycles on each store: SQLite, and PostgreSQL when a server
	// answers (see package pgtest; the cycles there are named -postgres).
	stores := []struct {
		suffix string
		open   func(b *testing.B) cursor.Store
	}{
		{"", func(b *testing.B) cursor.Store { return benchStore(b) }},
		{"-postgres", benchPostgres(b)},
	}
	for _, st := range stores {
		// steady: the recurring cycle, every record already known and
		// unchanged; each is re-read, diffed and marked seen for the
		// snapshot.
		b.Run("steady"+st.suffix, func(b *testing.B) {
			store := st.open(b)
			h := newHeapSampler()
			p, err := New(res, src, store, Options{AfterPage: func(int) error { h.sample(); return nil }})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Cycle(context.Background(), holdLease(b, store, res.Name)); err != nil {
				b.Fatal(err)
			}
			h.peak = 0
			n := 0
			var cpu cpuClock
			cpu.start()
			for b.Loop() {
				r, err := p.Cycle(context.Background(), holdLease(b, store, res.Name))
				if err != nil {
					b.Fatal(err)
				}
				if r.Events() != 0 {
					b.Fatalf("steady cycle wrote %d events", r.Events())
				}
				n += r.Records
			}
			cpu.stop()
			reportRecords(b, n)
			h.report(b)
			cpu.report(b)
		})

		// backfill: start: beginning on an empty store; every record is
		// new and becomes a contact.created event in the outbox.
		b.Run("backfill"+st.suffix, func(b *testing.B) {
			h := newHeapSampler()
			n := 0
			var cpu cpuClock
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				store := st.open(b)
				p, err := New(res, src, store, Options{AfterPage: func(int) error { h.sample(); return nil }})
				if err != nil {
					b.Fatal(err)
				}
				lease := holdLease(b, store, res.Name)
				b.StartTimer()
				cpu.start()
				r, err := p.Cycle(context.Background(), lease)
				cpu.stop()
				if err != nil {
					b.Fatal(err)
				}
				if r.Created != benchRecords {
					b.Fatalf("backfill created %d events", r.Created)
				}
				n += r.Records
			}
			reportRecords(b, n)
			h.report(b)
			cpu.report(b)
		})
	}
}

// benchPostgres returns an opener of fresh PostgreSQL stores, a schema
// each in one database made for the run of b, or one that skips when no
// server answers.
func benchPostgres(b *testing.B) func(b *testing.B) cursor.Store {
	ok, why := pgtest.Available()
	if !ok {
		return func(b *testing.B) cursor.Store { b.Skip(why); return nil }
	}
	db := pgtest.DSN(b)
	return func(b *testing.B) cursor.Store {
		b.Helper()
		s, err := cursor.OpenPostgres(context.Background(), pgtest.Schema(b, db))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
}

func benchStore(b *testing.B) *cursor.SQLite {
	b.Helper()
	s, err := cursor.Open(context.Background(), filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
