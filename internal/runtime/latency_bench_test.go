package runtime

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// commitClock is a store that notes when each event was committed: when
// the CommitPage (or FinishCycle) that wrote it returned.
type commitClock struct {
	cursor.Store
	mu sync.Mutex
	at map[string]time.Time // event id → commit
}

func (c *commitClock) CommitPage(ctx context.Context, p cursor.Page) error {
	err := c.Store.CommitPage(ctx, p)
	now := time.Now()
	if err == nil {
		c.mu.Lock()
		for _, e := range p.Events {
			if _, ok := c.at[e.ID]; !ok {
				c.at[e.ID] = now
			}
		}
		c.mu.Unlock()
	}
	return err
}

func (c *commitClock) committed(id string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.at[id]
	return t, ok
}

// changingAPI serves records {id, updated, name} by offset and limit,
// each page after a delay, as a remote API would; change updates one.
type changingAPI struct {
	delay   time.Duration
	mu      sync.Mutex
	updated []time.Time
	clock   time.Time
}

func (a *changingAPI) change(i int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clock = a.clock.Add(time.Second)
	a.updated[i%len(a.updated)] = a.clock
}

func (a *changingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(a.delay):
	case <-r.Context().Done():
		return
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	a.mu.Lock()
	offset = min(max(offset, 0), len(a.updated))
	end := min(offset+max(limit, 1), len(a.updated))
	items := []map[string]any{}
	for i := offset; i < end; i++ {
		items = append(items, map[string]any{"id": i, "updated": a.updated[i].Format(time.RFC3339), "name": fmt.Sprint("record ", i)})
	}
	a.mu.Unlock()
	json.NewEncoder(w).Encode(items)
}

// BenchmarkDeliveryLatency runs the daemon (Runtime.Run) on SQLite over
// an API of 200 records polled every second in 4 pages of 50, each served
// after 50 ms, one record of which changes every 20 ms, and delivers each
// change (unbatched) to a loopback receiver. It
// measures, for every event, the time from the commit of the page that
// holds it to the receiver's getting it, and reports its median and 99th
// percentile (p50-ms, p99-ms), and those of the time from the change at
// the API (e2e-p50-ms, e2e-p99-ms: the wait for the next poll included).
// b.N is the number of changes.
//
// Run it with:
//
//	go test -run '^$' -bench BenchmarkDeliveryLatency -benchtime 300x ./internal/runtime
func BenchmarkDeliveryLatency(b *testing.B) {
	const records, every = 200, 20 * time.Millisecond
	api := &changingAPI{delay: 50 * time.Millisecond, updated: make([]time.Time, records), clock: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	for i := range records {
		api.change(i)
	}
	up := httptest.NewServer(api)
	defer up.Close()

	var mu sync.Mutex
	received := map[string]time.Time{} // event id → first receipt
	objects := map[string]string{}     // event id → object id
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			ObjectID string `json:"object_id"`
		}
		json.Unmarshal(body, &ev)
		id := r.Header.Get("webhook-id")
		mu.Lock()
		if _, ok := received[id]; !ok {
			received[id] = now
			objects[id] = ev.ObjectID
		}
		mu.Unlock()
	}))
	defer rcv.Close()

	dir := b.TempDir()
	cfg := parseConfig(b, dir, fmt.Sprintf(`state:
  %s
sources:
  - name: up
    base_url: %s
resources:
  - name: r0
    object: thing
    url: /items
    schedule: 1s
    dates: { updated_field: updated, updated_format: rfc3339 }
    pagination: { type: offset, limit: 50 }
destinations:
  - name: app
    url: %s
`, stateKey(dir), up.URL, rcv.URL))
	store, err := openState(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	clock := &commitClock{Store: store, at: map[string]time.Time{}}
	rt, err := New(clock, cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rt.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// The first cycle records what exists (start: now).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err := store.ResourceState(ctx, "r0"); err == nil && st.Completed > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the first cycle did not complete within 30s")
		}
	}

	changed := map[string][]time.Time{} // object id → times of its changes
	b.ResetTimer()
	t := time.NewTicker(every)
	for i := range b.N {
		<-t.C
		changed[fmt.Sprint(i%records)] = append(changed[fmt.Sprint(i%records)], time.Now())
		api.change(i)
	}
	t.Stop()
	// Every change is delivered within the next poll or two.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	var fromCommit, fromChange []float64
	for id, at := range received {
		c, ok := clock.committed(id)
		if !ok {
			b.Fatalf("event %s was received but its commit was not seen", id)
		}
		fromCommit = append(fromCommit, float64(at.Sub(c).Microseconds())/1000)
		// The change an event reports is the last one of its object
		// before the commit.
		var made time.Time
		for _, m := range changed[objects[id]] {
			if m.Before(c) {
				made = m
			}
		}
		if !made.IsZero() {
			fromChange = append(fromChange, float64(at.Sub(made).Microseconds())/1000)
		}
	}
	if len(fromCommit) == 0 {
		b.Fatal("no event was received")
	}
	b.ReportMetric(percentile(fromCommit, 50), "p50-ms")
	b.ReportMetric(percentile(fromCommit, 99), "p99-ms")
	b.ReportMetric(percentile(fromChange, 50), "e2e-p50-ms")
	b.ReportMetric(percentile(fromChange, 99), "e2e-p99-ms")
	b.ReportMetric(float64(len(fromCommit)), "events")
}

// percentile returns the p-th percentile of xs (nearest rank).
func percentile[T cmp.Ordered](xs []T, p float64) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
