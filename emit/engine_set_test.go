package emit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// dest builds a destination of cfg for a test; the engine closes it.
func (h *harness) dest(cfg config.Destination) *Destination {
	h.t.Helper()
	d, err := NewDestination(cfg, Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

// await waits until ok holds, on the real clock.
func await(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running starts e.Run and returns a stop func that waits for it.
func running(t *testing.T, e *Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			e.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestSetChangesDestinationsWhileRunning adds, removes and changes
// destinations of a running engine: each change applies to the events
// after it, and the destinations it leaves alone go on undisturbed.
func TestSetChangesDestinationsWhileRunning(t *testing.T) {
	h := newHarness(t)
	a, b, c, a2 := newSink(t, nil), newSink(t, nil), newSink(t, nil), newSink(t, nil)
	e := NewEngine(h.store, []*Destination{h.dest(destConfig("a", a.URL)), h.dest(destConfig("b", b.URL))},
		EngineOptions{Leases: storeLeases{h.store}, Now: h.clock.Now})
	running(t, e)

	first := h.addN(1)
	e.Notify()
	await(t, "a and b get the first event", func() bool { return len(a.delivered()) == 1 && len(b.delivered()) == 1 })

	// b goes, c comes, a stays: a is given an equal destination, which
	// the engine keeps as it is.
	h.clock.Advance(time.Minute)
	e.Set([]*Destination{h.dest(destConfig("a", a.URL)), h.dest(destConfig("c", c.URL))})
	if got := e.Destinations(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("destinations %v, want [a c]", got)
	}
	second := h.addN(1)
	e.Notify()
	await(t, "a and c get the second event", func() bool { return len(a.delivered()) == 2 && len(c.delivered()) == 1 })
	if got := c.delivered(); !slices.Equal(got, ids(second)) {
		t.Errorf("c, added after the first event, got %v; want only %v", got, ids(second))
	}

	// a moves to another URL: the next events go there.
	e.Set([]*Destination{h.dest(destConfig("a", a2.URL)), h.dest(destConfig("c", c.URL))})
	third := h.addN(1)
	e.Notify()
	await(t, "a's new URL gets the third event", func() bool { return len(a2.delivered()) == 1 && len(c.delivered()) == 2 })

	if got := b.delivered(); !slices.Equal(got, ids(first)) {
		t.Errorf("b, removed, got %v; want only %v", got, ids(first))
	}
	if got := a.delivered(); !slices.Equal(got, append(ids(first), ids(second)...)) {
		t.Errorf("a's old URL got %v; want %v", got, append(ids(first), ids(second)...))
	}
	if got := a2.delivered(); !slices.Equal(got, ids(third)) {
		t.Errorf("a's new URL got %v; want %v", got, ids(third))
	}
	for _, r := range []*sink{a, b, c, a2} {
		if n := len(r.got()); n != len(r.delivered()) {
			t.Errorf("%s: %d requests for %d events: a request was repeated", r.URL, n, len(r.delivered()))
		}
	}
}

// TestRemovedDestinationFinishesInFlight removes a destination while a
// request to it is in flight: the request is answered and recorded once,
// and nothing is sent to it again.
func TestRemovedDestinationFinishesInFlight(t *testing.T) {
	h := newHarness(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	var mu sync.Mutex
	requests := 0
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		arrived <- struct{}{}
		<-release
	}))
	defer slow.Close()
	e := NewEngine(h.store, []*Destination{h.dest(destConfig("s", slow.URL, func(d *config.Destination) { d.MaxInFlight = 1 }))},
		EngineOptions{Leases: storeLeases{h.store}, Now: h.clock.Now})
	running(t, e)
	evs := h.addN(2)
	e.Notify()
	<-arrived
	e.Set(nil)
	close(release)
	await(t, "the request in flight is recorded", func() bool {
		return h.delivery("s", evs[0].ID).Status == cursor.StatusDelivered
	})
	// The second event is not sent: the destination is gone.
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if requests != 1 {
		t.Errorf("%d requests to the removed destination, want the one in flight", requests)
	}
	if d := h.delivery("s", evs[1].ID); d.Status != cursor.StatusPending || d.Attempts != 0 {
		t.Errorf("the second delivery = %+v, want pending, never tried", d)
	}
}

// TestGoneSubscriberLeavesOthersAlone: one of several destinations
// answers 410 and is removed from the engine at once (as a REST Hooks
// subscription is, through OnGone), while the others receive the same
// events: no destination gets an event twice.
func TestGoneSubscriberLeavesOthersAlone(t *testing.T) {
	for round := range 5 {
		h := newHarness(t)
		var sinks []*sink
		var dests []*Destination
		for i, name := range []string{"gone", "x", "y", "z"} {
			respond := answer(http.StatusOK)
			if i == 0 {
				respond = answer(http.StatusGone)
			}
			s := newSink(t, respond)
			sinks = append(sinks, s)
			dests = append(dests, h.dest(destConfig(name, s.URL)))
		}
		var e *Engine
		var once sync.Once
		e = NewEngine(h.store, dests, EngineOptions{
			Leases: storeLeases{h.store},
			Now:    h.clock.Now,
			OnGone: func(dest, _ string) {
				once.Do(func() {
					e.Set([]*Destination{h.dest(destConfig("x", sinks[1].URL)), h.dest(destConfig("y", sinks[2].URL)), h.dest(destConfig("z", sinks[3].URL))})
				})
			},
		})
		running(t, e)
		var want []string
		for range 20 {
			want = append(want, h.addN(3)[0].ID)
			e.Notify()
		}
		await(t, "x, y and z get every event", func() bool {
			for _, s := range sinks[1:] {
				if len(s.delivered()) < 60 {
					return false
				}
			}
			return true
		})
		for _, s := range sinks[1:] {
			got := s.delivered()
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Errorf("round %d: %s got %s twice", round, s.URL, id)
				}
				seen[id] = true
			}
		}
		// The requests in flight when the first 410 came back (up to
		// max_in_flight) were answered 410 too; none was sent again.
		gone := sinks[0].got()
		seen := map[string]bool{}
		for _, hit := range gone {
			if seen[hit.events[0]] {
				t.Errorf("round %d: the gone subscriber got %s twice", round, hit.events[0])
			}
			seen[hit.events[0]] = true
		}
		if len(gone) > config.DefaultMaxInFlight {
			t.Errorf("round %d: the gone subscriber got %d requests, want at most the %d in flight", round, len(gone), config.DefaultMaxInFlight)
		}
	}
}

// leaseFor is a Leaser that holds nothing, or a given lease.
type leaseFor map[string]cursor.Lease

func (l leaseFor) Lease(name string) (cursor.Lease, bool) {
	lease, ok := l[name]
	return lease, ok
}

// TestLeaseDecidesWhoDelivers: a destination whose lease another process
// holds is left to it; one whose lease was lost records nothing of what
// it sent, so the new holder sends it again under the same id.
func TestLeaseDecidesWhoDelivers(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	rcv := newSink(t, nil)
	cfg := destConfig("a", rcv.URL)
	h.addN(1)
	// Another process holds a's lease.
	if _, err := h.store.AcquireLeases(ctx, "other", []string{cursor.DestinationLease("a")}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	e := h.engine(EngineOptions{Leases: storeLeases{h.store}}, cfg)
	res := h.step(e)
	if res.Elsewhere != 1 || res.Requests != 0 || len(rcv.got()) != 0 {
		t.Fatalf("step without the lease = %+v, %d requests; want nothing done, Elsewhere 1", res, len(rcv.got()))
	}

	// This process held the lease (fence 1 of "mine"), then lost it to
	// "other" while it was away: what it sends is not recorded.
	name := cursor.DestinationLease("b")
	mine, err := h.store.AcquireLeases(ctx, "mine", []string{name}, time.Minute, start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.AcquireLeases(ctx, "other", []string{name}, time.Minute, start.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	lost := h.engine(EngineOptions{Leases: leaseFor{name: mine[0]}}, destConfig("b", rcv.URL))
	ev := h.addN(1)[0]
	_, err = lost.Step(ctx)
	if !errors.Is(err, cursor.ErrLeaseLost) {
		t.Fatalf("step under a lost lease: %v, want ErrLeaseLost", err)
	}
	if d := h.delivery("b", ev.ID); d.Status != cursor.StatusPending || d.Attempts != 0 {
		t.Errorf("delivery sent under a lost lease = %+v, want pending, nothing recorded", d)
	}
}
