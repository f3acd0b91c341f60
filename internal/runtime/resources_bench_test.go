package runtime

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/cputime"
	"github.com/pollhook/pollhook/poller"
)

// resourcesWindow is how long BenchmarkResources watches each N, once its
// resources have all polled once.
var resourcesWindow = flag.Duration("resources.window", 20*time.Second, "how long BenchmarkResources measures each N")

// Resource intervals of BenchmarkResources: resource i polls every
// 30s + i mod 31 seconds, so that the resources spread over their
// intervals by their stable jitter and over several intervals.
const (
	benchMinInterval = 30
	benchIntervals   = 31
	// One resource in benchChangeEvery sees a record change at every
	// poll (an event to deliver); the others get the same page.
	benchChangeEvery = 20
)

// BenchmarkResources runs the daemon (scheduler, leases, delivery
// engine, maintenance) on a SQLite state with N resources, each polling
// a loopback upstream every 30–60s, most of them answering the same page
// every time, and measures one window (-resources.window, after every
// resource has polled once) per b.N. It reports, per resource: the Go
// heap and stack, the RSS and the goroutines it costs (measured after a
// GC, against the process before the runtime started); the CPU time it
// costs the process per second of wall time (the simulated upstream and
// receiver included); the store calls and lease rows written per second;
// and for the whole: the CPU used as % of one core, the lateness of the
// cycles' starts (when the upstream saw the request, against the
// scheduler's planned time; p50 and p99), and how long every resource
// took to poll once (see poller.StartRate) and the store to record it.
//
//	go test ./internal/runtime -run '^$' -bench BenchmarkResources -benchtime 1x
func BenchmarkResources(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) { benchResources(b, n) })
	}
}

func benchResources(b *testing.B, n int) {
	up := newBenchUpstream(n)
	upSrv := httptest.NewServer(up)
	defer upSrv.Close()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer recv.Close()

	before := memNow()
	dir := b.TempDir()
	var y strings.Builder
	fmt.Fprintf(&y, "state:\n  path: %s\nsources:\n  - name: up\n    base_url: %s\nresources:\n", filepath.Join(dir, "state.db"), upSrv.URL)
	for i := range n {
		fmt.Fprintf(&y, "  - name: r%d\n    object: thing\n    url: /r%d\n    schedule: %ds\n    dates: { updated_field: updated, updated_format: rfc3339 }\n",
			i, i, benchMinInterval+i%benchIntervals)
	}
	fmt.Fprintf(&y, "destinations:\n  - name: app\n    url: %s\n    events: [\"*.*\"]\n", recv.URL)
	cfg, err := config.Parse(filepath.Join(dir, "pollhook.yaml"), []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	up.resources = cfg.Resources
	sqlite, err := cursor.Open(context.Background(), cfg.State.Path)
	if err != nil {
		b.Fatal(err)
	}
	store := newCountingStore(sqlite)
	rt, err := New(store, cfg, Options{Holder: "bench:1:aaaaaa"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		sqlite.Close()
	}()

	// Every resource polls once when the daemon starts; the window
	// begins after, once every resource has polled and the cycles begun
	// so far are recorded, when the resources poll on their schedules.
	start := time.Now()
	recorded := store.calls["RecordCycle"]
	for up.first.Load() < int64(n) || recorded.Load() < up.polls.Load() {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("after 10m, %d of %d resources polled, %d of %d cycles recorded", up.first.Load(), n, recorded.Load(), up.polls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	startup := time.Since(start)
	time.Sleep(time.Second)

	b.ResetTimer()
	var cpu time.Duration
	var calls, leaseRows, polls int64
	var by map[string]int64
	for range b.N {
		up.record.Store(true)
		cpu0, rows0, polls0 := cputime.Process(), store.leaseRows.Load(), up.polls.Load()
		_, by0 := store.total()
		time.Sleep(*resourcesWindow)
		up.record.Store(false)
		cpu += cputime.Process() - cpu0
		leaseRows += store.leaseRows.Load() - rows0
		polls += up.polls.Load() - polls0
		_, by1 := store.total()
		if by == nil {
			by = map[string]int64{}
		}
		for m, v := range by1 {
			by[m] += v - by0[m]
			calls += v - by0[m]
		}
	}
	b.StopTimer()
	wall := b.Elapsed().Seconds()
	after := memNow()

	late := up.lateness()
	perRes := func(v float64) float64 { return v / float64(n) }
	b.ReportMetric(perRes(float64(after.heap-before.heap)), "heap-B/res")
	b.ReportMetric(perRes(float64(after.stack-before.stack)), "stack-B/res")
	if after.rss > 0 {
		b.ReportMetric(perRes(float64(after.rss-before.rss)), "rss-B/res")
	}
	b.ReportMetric(perRes(float64(after.goroutines-before.goroutines)), "goroutines/res")
	b.ReportMetric(100*cpu.Seconds()/wall, "cpu-%core")
	b.ReportMetric(1e6*perRes(cpu.Seconds()/wall), "cpu-µs/s/res")
	b.ReportMetric(perRes(float64(calls)/wall), "store-calls/s/res")
	b.ReportMetric(perRes(float64(leaseRows)/wall), "lease-rows/s/res")
	b.ReportMetric(perRes(float64(polls)/wall), "polls/s/res")
	b.ReportMetric(percentile(late, 50).Seconds()*1e3, "late-p50-ms")
	b.ReportMetric(percentile(late, 99).Seconds()*1e3, "late-p99-ms")
	b.ReportMetric(startup.Seconds(), "startup-s")
	b.ReportMetric(0, "ns/op")
	if testing.Verbose() {
		var top []string
		for m, v := range by {
			if v > 0 {
				top = append(top, fmt.Sprintf("%s=%.3g/s", m, float64(v)/wall))
			}
		}
		slices.Sort(top)
		b.Logf("N=%d polls=%d store calls: %s", n, polls, strings.Join(top, " "))
	}
}

// benchUpstream serves /r<i> for resource i: three records, one of which,
// for one resource in benchChangeEvery, is updated at every request. It
// counts the polls and the resources polled at least once, and while
// record is set notes how late each request is against the resource's schedule.
type benchUpstream struct {
	resources []config.Resource
	same      []byte // the page of a resource whose records do not change
	seen      []atomic.Bool
	first     atomic.Int64 // resources polled at least once
	polls     atomic.Int64
	record    atomic.Bool
	mu        sync.Mutex
	late      []time.Duration
}

func newBenchUpstream(n int) *benchUpstream {
	return &benchUpstream{
		same: []byte(`[{"id":1,"updated":"2026-01-01T00:00:00Z"},{"id":2,"updated":"2026-01-02T00:00:00Z"},{"id":3,"updated":"2026-01-03T00:00:00Z"}]`),
		seen: make([]atomic.Bool, n),
	}
}

func (u *benchUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r"))
	if err != nil || i < 0 || i >= len(u.seen) {
		http.NotFound(w, r)
		return
	}
	u.polls.Add(1)
	if !u.seen[i].Swap(true) {
		u.first.Add(1)
	} else if u.record.Load() {
		// The cycle planned last is the latest tick of the resource's
		// schedule at or before now.
		res := &u.resources[i]
		planned := poller.NextRun(res, now.Add(-res.Schedule.Every))
		u.mu.Lock()
		u.late = append(u.late, now.Sub(planned))
		u.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	if i%benchChangeEvery != 0 {
		w.Write(u.same)
		return
	}
	fmt.Fprintf(w, `[{"id":1,"updated":"2026-01-01T00:00:00Z"},{"id":2,"updated":"2026-01-02T00:00:00Z"},{"id":3,"updated":%q}]`,
		now.UTC().Format(time.RFC3339))
}

// lateness returns the lateness noted, sorted.
func (u *benchUpstream) lateness() []time.Duration {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := slices.Clone(u.late)
	slices.Sort(out)
	return out
}

// memState is the memory the process uses, after a GC.
type memState struct {
	heap, stack, rss int64
	goroutines       int
}

func memNow() memState {
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return memState{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), rss: rss(), goroutines: goruntime.NumGoroutine()}
}

// rss is the resident set of the process, from /proc (0 where there is
// none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}
