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
	"slices"
	"strconv"
	"sync"
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

// benchAPI serves n Keap-like contacts at any offset and limit (offset
// pagination). With pre-rendered records (a few hundred thousand at most)
// the server costs little next to the client; a larger listing is
// rendered page by page, so that it holds nothing per record.
type benchAPI struct {
	n    int
	mu   sync.RWMutex
	recs [][]byte // nil: rendered per request
}

// benchBase is the date of the first record.
var benchBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchRecord renders record i in version v (0 for the first): a later
// version has another family name and is updated v hours later.
func benchRecord(b []byte, i, v int) []byte {
	created := benchBase.Add(time.Duration(i) * time.Second)
	updated := created.Add(time.Duration(v) * time.Hour)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, int64(i+1), 10)
	b = append(b, `,"given_name":"Ada","family_name":"Lovelace `...)
	b = strconv.AppendInt(b, int64(i), 10)
	if v > 0 {
		b = append(b, " v"...)
		b = strconv.AppendInt(b, int64(v), 10)
	}
	b = append(b, `","email":"ada`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `@example.com","company":{"id":`...)
	b = strconv.AppendInt(b, int64(i%97), 10)
	b = append(b, `,"company_name":"Analytical Engines"},"tag_ids":[1,2,`...)
	b = strconv.AppendInt(b, int64(i%7), 10)
	b = append(b, `],"date_created":"`...)
	b = created.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","last_updated":"`...)
	b = updated.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...)
}

// newBenchAPI starts the upstream of n records.
func newBenchAPI(b *testing.B, n int) (*benchAPI, *httptest.Server) {
	b.Helper()
	api := &benchAPI{n: n}
	if n <= 200_000 {
		api.recs = make([][]byte, n)
		for i := range api.recs {
			api.recs[i] = benchRecord(nil, i, 0)
		}
	}
	srv := httptest.NewServer(api)
	b.Cleanup(srv.Close)
	return api, srv
}

// benchUpstream serves benchRecords records.
func benchUpstream(b *testing.B) *httptest.Server {
	_, srv := newBenchAPI(b, benchRecords)
	return srv
}

// change gives one record in every 100 (those whose index is v modulo
// 100) its version v: 1% of the records change.
func (a *benchAPI) change(v int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := v % 100; i < len(a.recs); i += 100 {
		a.recs[i] = benchRecord(a.recs[i][:0:0], i, v)
	}
}

// page renders the records from offset off, at most limit.
func (a *benchAPI) page(off, limit int) []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	from, to := min(off, a.n), min(off+limit, a.n)
	out := make([]byte, 0, 16+(to-from)*256)
	out = append(out, `{"contacts":[`...)
	for i := from; i < to; i++ {
		if i > from {
			out = append(out, ',')
		}
		if a.recs != nil {
			out = append(out, a.recs[i]...)
		} else {
			out = benchRecord(out, i, 0)
		}
	}
	out = append(out, `],"count":`...)
	out = strconv.AppendInt(out, int64(a.n), 10)
	return append(out, '}')
}

func (a *benchAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil {
		limit = benchPageSize
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(a.page(off, limit))
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

// floorRuns are the floor's runs so far in this process: its records/s
// and CPU seconds per record.
var floorRuns struct {
	rates, cpu []float64
}

// reportFloor reports a case's records/s (n records in the elapsed time,
// cpu of CPU time) as a ratio to the floor's, the median of its runs in
// the same process: x-floor, and x-floor-cpu for CPU time, steadier on a
// shared machine. Nothing when the floor did not run (a -bench pattern
// that leaves it out).
func reportFloor(b *testing.B, n int, cpu cpuClock) {
	if len(floorRuns.rates) == 0 || n == 0 {
		return
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds()/median(floorRuns.rates), "x-floor")
	if cpu.total > 0 && len(floorRuns.cpu) > 0 {
		b.ReportMetric(median(floorRuns.cpu)/(cpu.total.Seconds()/float64(n)), "x-floor-cpu")
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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
				body := getPage(b, srv.URL, off, benchPageSize)
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
		floorRuns.rates = append(floorRuns.rates, float64(n)/b.Elapsed().Seconds())
		if cpu.total > 0 {
			floorRuns.cpu = append(floorRuns.cpu, cpu.total.Seconds()/float64(n))
		}
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
			recurring(b, st.open(b), res, src, func(int) {}, 0)
		})

		// steady-1pct: the recurring cycle where 1% of the records
		// changed since the last one (a different 1% each cycle): each
		// change is an updated event with the record's previous content.
		b.Run("steady-1pct"+st.suffix, func(b *testing.B) {
			api, srv := newBenchAPI(b, benchRecords)
			res, src := benchResource(b, srv.URL)
			recurring(b, st.open(b), res, src, api.change, benchRecords/100)
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
			reportFloor(b, n, cpu)
			h.report(b)
			cpu.report(b)
		})
	}
}

// getPage fetches the body of the page at offset off of the upstream at
// url.
func getPage(b *testing.B, url string, off, limit int) []byte {
	resp, err := http.Get(fmt.Sprintf("%s/contacts?offset=%d&limit=%d", url, off, limit))
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// recurring runs the cycles after a first one that recorded every record,
// calling change(v) before cycle v (from 1), and checks that each
// reports updated records as updated events, and nothing else.
func recurring(b *testing.B, store cursor.Store, res *config.Resource, src *config.Source, change func(v int), updated int) {
	h := newHeapSampler()
	p, err := New(res, src, store, Options{AfterPage: func(int) error { h.sample(); return nil }})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Cycle(context.Background(), holdLease(b, store, res.Name)); err != nil {
		b.Fatal(err)
	}
	h.peak = 0
	n, v := 0, 0
	var cpu cpuClock
	cpu.start()
	for b.Loop() {
		v++
		change(v)
		r, err := p.Cycle(context.Background(), holdLease(b, store, res.Name))
		if err != nil {
			b.Fatal(err)
		}
		if r.Updated != updated || r.Events() != int64(updated) {
			b.Fatalf("cycle %d: %d updated, %d events; want %d updates and nothing else", v, r.Updated, r.Events(), updated)
		}
		n += r.Records
	}
	cpu.stop()
	reportRecords(b, n)
	reportFloor(b, n, cpu)
	h.report(b)
	cpu.report(b)
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

// BenchmarkCycleMemory measures the peak heap of a steady snapshot cycle
// (every record known and unchanged, in pages of 1,000) over 10,000 and
// over 1,000,000 records: a cycle holds a page at a time, and nothing per
// record of the whole resource, so the two peaks should be alike. The
// store is seeded directly with the versions a cycle would have written
// (see seedStore); the cycle measured is the poller's own.
func BenchmarkCycleMemory(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			_, srv := newBenchAPI(b, n)
			res, src := benchResource(b, srv.URL)
			// Offset pages overlap: a few more pages than n/1000.
			res.Pagination.MaxPages = n/(benchPageSize-Overlap(benchPageSize)) + 2
			store := benchStore(b)
			seedStore(b, store, res, srv.URL, n)
			var h *heapSampler
			p, err := New(res, src, store, Options{AfterPage: func(int) error { h.sample(); return nil }})
			if err != nil {
				b.Fatal(err)
			}
			h = newHeapSampler()
			records := 0
			for b.Loop() {
				r, err := p.Cycle(context.Background(), holdLease(b, store, res.Name))
				if err != nil {
					b.Fatal(err)
				}
				if r.Records != n || r.Events() != 0 {
					b.Fatalf("cycle read %d records and wrote %d events, want %d and none", r.Records, r.Events(), n)
				}
				records += r.Records
			}
			reportRecords(b, records)
			h.report(b)
		})
	}
}

// seedStore records the n records the upstream at url serves as a
// complete cycle of res would: their versions, extracted as the poller
// extracts them, committed 10,000 at a time, without events.
func seedStore(b *testing.B, store cursor.Store, res *config.Resource, url string, n int) {
	b.Helper()
	ctx := context.Background()
	x, err := NewExtractor(res)
	if err != nil {
		b.Fatal(err)
	}
	lease := holdLease(b, store, res.Name)
	cycle, err := store.BeginCycle(ctx, res.Name, lease)
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 10_000
	for off := 0; off < n; off += chunk {
		doc, err := x.Decode(getPage(b, url, off, chunk))
		if err != nil {
			b.Fatal(err)
		}
		recs, skips, err := x.Records(doc)
		if err != nil || len(skips) > 0 {
			b.Fatalf("seed: %v, %d skipped", err, len(skips))
		}
		page := cursor.Page{Resource: res.Name, Cycle: cycle, Lease: lease, Records: make([]cursor.SeenRecord, len(recs))}
		for i, r := range recs {
			page.Records[i] = cursor.SeenRecord{ID: r.ID, Seen: cursor.Seen{Updated: r.Updated, Hash: r.Hash, Content: string(r.Data)}}
		}
		if err := store.CommitPage(ctx, page); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := store.FinishCycle(ctx, cursor.Finish{Resource: res.Name, Cycle: cycle, Lease: lease, Snapshot: true, DeleteGuard: 1,
		Deleted: func(string, cursor.Seen) cursor.Event { b.Fatal("seed: a delete"); return cursor.Event{} }}); err != nil {
		b.Fatal(err)
	}
}
