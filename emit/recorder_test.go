package emit

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// gatedStore holds the first RecordOutcomes until open is closed, and
// notes how many outcomes each call wrote.
type gatedStore struct {
	*cursor.SQLite
	open chan struct{}

	mu    sync.Mutex
	calls []int
}

func (s *gatedStore) RecordOutcomes(ctx context.Context, lease cursor.Lease, outcomes []cursor.Outcome) error {
	s.mu.Lock()
	first := len(s.calls) == 0
	s.calls = append(s.calls, len(outcomes))
	s.mu.Unlock()
	if first {
		<-s.open
	}
	return s.SQLite.RecordOutcomes(ctx, lease, outcomes)
}

// TestOutcomesCommittedTogether holds the commit of the first request's
// outcome while the other requests are answered, many more than
// max_in_flight (a slow commit holds up no request while up to a page of
// them wait): their outcomes are written together by the next commit, and
// every event is delivered and counted once committed.
func TestOutcomesCommittedTogether(t *testing.T) {
	const inFlight, events = 4, 40
	h := newHarness(t)
	answered := make(chan struct{}, events)
	rcv := newSink(t, func(hit, int) (int, http.Header) {
		answered <- struct{}{}
		return http.StatusOK, nil
	})
	store := &gatedStore{SQLite: h.store, open: make(chan struct{})}
	d := h.dest(destConfig("a", rcv.URL, func(d *config.Destination) { d.MaxInFlight = inFlight }))
	e := NewEngine(store, []*Destination{d}, EngineOptions{Leases: storeLeases{h.store}, Now: h.clock.Now})
	defer e.Close()
	evs := h.addN(events)
	done := make(chan StepResult)
	go func() {
		res, err := e.Step(context.Background())
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Every request is answered while the first outcome waits: a request
	// answered frees its place for the next one.
	for i := range events {
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
			close(store.open)
			t.Fatalf("%d of %d requests answered while the first outcome waits to be committed", i, events)
		}
	}
	if n := len(delivered(t, h, evs)); n != 0 {
		t.Errorf("%d events recorded delivered while the commit of the first is held, want 0", n)
	}
	close(store.open)
	res := <-done
	if res.Delivered != events || res.Requests != events {
		t.Fatalf("step = %+v, want %d requests and events delivered", res, events)
	}
	if n := len(delivered(t, h, evs)); n != events {
		t.Errorf("%d events recorded delivered, want %d", n, events)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.calls) >= events || store.calls[1] < 2 {
		t.Errorf("outcomes per commit %v: want the outcomes answered during the first commit written together", store.calls)
	}
}

// delivered returns the events of evs recorded delivered to a.
func delivered(t *testing.T, h *harness, evs []cursor.Event) []string {
	t.Helper()
	var out []string
	for _, ev := range evs {
		if h.delivery("a", ev.ID).Status == cursor.StatusDelivered {
			out = append(out, ev.ID)
		}
	}
	return out
}
