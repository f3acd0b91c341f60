package emit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

func TestDestinationAccepts(t *testing.T) {
	won := event("1", "updated")
	won.Data = json.RawMessage(`{"id":"1","status":"won","stage_id":3,"amount":12345678901234567890}`)
	won.Previous = json.RawMessage(`{"id":"1","status":"open","stage_id":2,"amount":12345678901234567890}`)
	won.ChangedFields = []string{"stage_id", "status"}
	created := event("2", "created")
	created.Data = json.RawMessage(`{"id":"2","status":"open"}`)
	deleted := event("3", "deleted")
	deleted.Data, deleted.Previous = json.RawMessage("null"), json.RawMessage(`{"id":"3","status":"won"}`)

	tests := []struct {
		filter  string
		e       cursor.Event
		want    bool
		wantErr string
	}{
		{"", won, true, ""},
		{`.data.status == "won"`, won, true, ""},
		{`.data.status == "won"`, created, false, ""},
		{`.data.status == "won"`, deleted, false, ""},
		{`.previous.status == "won"`, deleted, true, ""},
		// index gives 0, a number: true, as jq's select takes it.
		{`.changed_fields | index("stage_id")`, won, true, ""},
		{`.changed_fields | index("stage_id")`, created, false, ""},
		{`.type == "contact.updated" and (.changed_fields | any(. == "status"))`, won, true, ""},
		{`.data.amount == 12345678901234567890`, won, true, ""},
		{`empty`, won, false, ""},
		{`null`, won, false, ""},
		{`.object_id | tonumber > 1`, created, true, ""},
		{`.data.status | test(1)`, won, false, "filter event evt_1_updated"},
	}
	for _, tt := range tests {
		t.Run(tt.filter+" on "+tt.e.Type, func(t *testing.T) {
			d, err := NewDestination(destConfig("app", "stdout", func(c *config.Destination) { c.Filter = tt.filter }), Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Accepts(tt.e)
			if got != tt.want {
				t.Errorf("Accepts = %v, want %v", got, tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := NewDestination(destConfig("app", "stdout", func(c *config.Destination) { c.Filter = ".data | (" }), Options{}); err == nil ||
		!strings.Contains(err.Error(), `destination app: filter ".data | ("`) {
		t.Errorf("bad filter: error %v", err)
	}
}

// TestFilterKeepsEventsOut: a destination's filter keeps the events it
// rejects out of its queue (they are never delivered to it, and count as
// filtered once), while another destination of the same events gets them
// all; an event the filter fails on is kept out, counted apart and logged.
func TestFilterKeepsEventsOut(t *testing.T) {
	h := newHarness(t)
	a, b := newSink(t, nil), newSink(t, nil)
	var logs bytes.Buffer
	m, reg := h.metrics()
	e := h.engine(EngineOptions{Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		destConfig("won", a.URL, func(c *config.Destination) {
			c.Events = []string{"contact.updated"}
			// "x" | tonumber fails: the filter errors on that event.
			c.Filter = `if .data.id == "x" then .data.id | tonumber else .changed_fields | index("stage") end`
		}),
		destConfig("all", b.URL))

	update := func(id string, data string, changed ...string) cursor.Event {
		return cursor.Event{
			ID: id, Type: "contact.updated", Resource: "contacts", Source: "keap", Object: "contact",
			ObjectID: "1", OccurredAt: start, DetectedAt: start, Data: json.RawMessage(data),
			Previous: json.RawMessage(`{"id":0}`), ChangedFields: changed,
		}
	}
	evs := []cursor.Event{
		update("evt_a", `{"id":1}`, "stage"),
		update("evt_b", `{"id":1}`, "email"),
		update("evt_c", `{"id":1}`), // changed fields unknown: null
		update("evt_d", `{"id":1}`, "email", "stage"),
		update("evt_e", `{"id":"x"}`, "id"),
	}
	commitEvents(t, h.store, evs)
	evs = append(evs, h.add("contact.created")...) // another type: not the filter's business

	res := h.step(e)
	if res.Filtered != 3 || res.Queued != 2+len(evs) {
		t.Errorf("step = %+v, want 3 filtered and %d queued", res, 2+len(evs))
	}
	if got, want := a.delivered(), []string{"evt_a", "evt_d"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("won got %v, want %v", got, want)
	}
	if got := b.delivered(); len(got) != len(evs) {
		t.Errorf("all got %v, want every event", got)
	}
	if ds, err := h.store.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: "won"}); err != nil || len(ds) != 2 {
		t.Errorf("deliveries of won = %d, %v; want only the 2 it takes", len(ds), err)
	}
	if v, _ := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "won", "reason": FilterRejected}); v != 2 {
		t.Errorf("filtered rejected = %v, want 2", v)
	}
	if v, _ := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "won", "reason": FilterError}); v != 1 {
		t.Errorf("filtered error = %v, want 1", v)
	}
	if _, ok := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "all", "reason": FilterRejected}); ok {
		t.Error("a destination without a filter has a filtered series")
	}
	if !strings.Contains(logs.String(), "destination filter failed on events") || !strings.Contains(logs.String(), "evt_e") {
		t.Errorf("log = %s, want the filter's failure with the event", logs.String())
	}
	// Judged once: the next step counts nothing again.
	h.add("contact.updated")
	if res := h.step(e); res.Filtered != 1 {
		t.Errorf("next step filtered %d, want only the new event", res.Filtered)
	}
	if v, _ := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "won", "reason": FilterRejected}); v != 3 {
		t.Errorf("filtered rejected after a second step = %v, want 3", v)
	}
}

// cancelingStore cancels a fan-out after its match judged `after` events,
// as a store failing mid-way would: the chunks before commit, the rest
// does not.
type cancelingStore struct {
	DeliveryStore
	after int
}

func (s *cancelingStore) Fanout(ctx context.Context, dest string, match func(cursor.Event) bool, now time.Time) (int, error) {
	if s.after == 0 {
		return s.DeliveryStore.Fanout(ctx, dest, match, now)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	return s.DeliveryStore.Fanout(ctx, dest, func(e cursor.Event) bool {
		if n++; n == s.after {
			cancel()
		}
		return match(e)
	}, now)
}

// TestFilteredCountedOnceAcrossFailedFanout: the events a filter kept out
// are counted when the fan-out that judged them commits; a chunk that
// failed is judged, and counted, by the next step only.
func TestFilteredCountedOnceAcrossFailedFanout(t *testing.T) {
	h := newHarness(t)
	m, reg := h.metrics()
	store := &cancelingStore{DeliveryStore: h.store, after: 1500}
	d := mustDest(t, h, "none", "stdout", `.data.n > 100000`, "")
	e := NewEngine(store, []*Destination{d}, EngineOptions{Metrics: m, Now: h.clock.Now, Leases: storeLeases{h.store}})
	const n = 2500 // the store fans out 1000 events a transaction
	h.addN(n)
	res, err := e.Step(context.Background())
	if err == nil {
		t.Fatal("the canceled fan-out did not fail")
	}
	first, _ := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "none", "reason": FilterRejected})
	if res.Filtered != int(first) || first <= 0 || first >= n {
		t.Fatalf("after a failed fan-out: step filtered %d, metric %v; want the committed chunks only", res.Filtered, first)
	}
	store.after = 0
	res = h.step(e)
	if total, _ := metric(t, reg, "pollhook_events_filtered_total", map[string]string{"destination": "none", "reason": FilterRejected}); total != n || res.Filtered != n-int(first) {
		t.Errorf("after the next step: metric %v, step %d; want %d in all, each event once", total, res.Filtered, n)
	}
}

// mustDest is a destination of the harness with a filter, taking events
// (every type when empty).
func mustDest(t *testing.T, h *harness, name, url, filter, events string) *Destination {
	t.Helper()
	d, err := NewDestination(destConfig(name, url, func(c *config.Destination) {
		c.Filter = filter
		if events != "" {
			c.Events = []string{events}
		}
	}), Options{Now: h.clock.Now, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
