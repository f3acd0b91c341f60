package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pollhook/pollhook/cursor"
)

// deliveryTests: destinations, fan-out, pending and due deliveries, the
// attempt log, replay, backlogs and pruning.
var deliveryTests = []test{
	{"EnsureDestinationStartsAtSince", testEnsureDestinationStartsAtSince},
	{"FanoutMatchesInChunks", testFanoutMatchesInChunks},
	{"PendingDueInSeqOrder", testPendingDueInSeqOrder},
	{"RecordOutcomes", testRecordOutcomes},
	{"DisableEnableDestination", testDisableEnableDestination},
	{"Replay", testReplay},
	{"Prune", testPrune},
	{"PruneManyInChunks", testPruneManyInChunks},
	{"DeleteDestinationUnblocksPrune", testDeleteDestinationUnblocksPrune},
	{"DeletedDestinationComesBackFromItsDeletion", testDeletedDestinationComesBack},
	{"DeliverySummary", testDeliverySummary},
	{"DeliveriesInPages", testDeliveriesInPages},
}

// addEvents commits events to the outbox, each detected at detected, and
// returns them with their seq.
func addEvents(t testing.TB, s cursor.Store, detected time.Time, evs ...cursor.Event) []cursor.Event {
	t.Helper()
	for i := range evs {
		evs[i].DetectedAt = detected
	}
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1, Events: evs})
	last, err := s.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		evs[i].Seq = last - int64(len(evs)-1-i)
	}
	return evs
}

func delivery(t testing.TB, s cursor.Store, dest, id string) cursor.Delivery {
	t.Helper()
	ds, err := s.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: dest, EventID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("deliveries of %s to %s: %d rows, want 1", id, dest, len(ds))
	}
	return ds[0]
}

func pendingIDs(t testing.TB, s cursor.Store, q cursor.PendingQuery) []string {
	t.Helper()
	ps, err := s.Pending(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Event.ID)
	}
	return out
}

func ensure(t testing.TB, s cursor.Store, name string, since time.Time) cursor.DestinationState {
	t.Helper()
	st, err := s.EnsureDestination(context.Background(), name, since)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fanout(t testing.TB, s cursor.Store, name string, now time.Time) int {
	t.Helper()
	n, err := s.Fanout(context.Background(), name, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// record records the outcomes of deliveries to dest under its lease.
func record(t testing.TB, s cursor.Store, dest string, outcomes ...cursor.Outcome) {
	t.Helper()
	if err := s.RecordOutcomes(context.Background(), hold(t, s, cursor.DestinationLease(dest)), outcomes); err != nil {
		t.Fatal(err)
	}
}

func testEnsureDestinationStartsAtSince(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	addEvents(t, s, t0, event("contacts", "e1", "contact.created"), event("contacts", "e2", "contact.created"))
	addEvents(t, s, t0.Add(time.Hour), event("contacts", "e3", "contact.updated"))

	a := ensure(t, s, "a", t0.Add(time.Minute))
	if a.FanoutSeq != 2 || a.Disabled() {
		t.Fatalf("new destination = %+v, want fanout_seq 2 (after the events detected before since), enabled", a)
	}
	if n := fanout(t, s, "a", t0.Add(2*time.Hour)); n != 1 {
		t.Fatalf("fan-out queued %d, want 1 (e3 only)", n)
	}
	if got := pendingIDs(t, s, cursor.PendingQuery{Destination: "a", Limit: 10}); !reflect.DeepEqual(got, []string{"e3"}) {
		t.Fatalf("pending = %v, want [e3]", got)
	}
	// A known destination keeps its place.
	if again := ensure(t, s, "a", time.Time{}); again.FanoutSeq != 3 {
		t.Fatalf("known destination moved to fanout_seq %d, want 3", again.FanoutSeq)
	}
	// A zero since takes the whole outbox.
	ensure(t, s, "b", time.Time{})
	if n := fanout(t, s, "b", t0); n != 3 {
		t.Fatalf("fan-out to a destination starting at the beginning queued %d, want 3", n)
	}
	if _, err := s.Destination(ctx, "nope"); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Fatalf("Destination(unknown) error = %v, want ErrUnknownDestination", err)
	}
	if _, err := s.Fanout(ctx, "nope", nil, t0); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Fatalf("Fanout(unknown) error = %v, want ErrUnknownDestination", err)
	}
	all, err := s.Destinations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "a" || all[1].Name != "b" {
		t.Fatalf("Destinations = %+v, want a and b", all)
	}
}

// testFanoutMatchesInChunks fans out more events than a backend reads at
// once (SQLite: 1000 a transaction). The match is given each event whole:
// a destination's filter reads its data and history.
func testFanoutMatchesInChunks(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "crm", time.Time{})
	const n = 2500
	evs := make([]cursor.Event, n)
	for i := range evs {
		typ := "contact.created"
		if i%2 == 1 {
			typ = "deal.updated"
		}
		evs[i] = event("contacts", fmt.Sprintf("e%05d", i), typ)
		if i%3 == 0 {
			evs[i].Previous = json.RawMessage(fmt.Sprintf(`{"id":"e%05d","stage":"old"}`, i))
			evs[i].ChangedFields = []string{"stage"}
		}
	}
	evs = addEvents(t, s, t0, evs...)
	byID := map[string]cursor.Event{}
	for _, e := range evs {
		byID[e.ID] = e
	}

	given := 0
	contacts := func(e cursor.Event) bool {
		given++
		if want := byID[e.ID]; !reflect.DeepEqual(e, want) {
			t.Errorf("match given %+v, want the event as stored: %+v", e, want)
		}
		return strings.HasPrefix(e.Type, "contact.")
	}
	got, err := s.Fanout(ctx, "crm", contacts, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got != n/2 || given != n {
		t.Fatalf("fan-out queued %d of %d events matched, want %d of %d (the contact events)", got, given, n/2, n)
	}
	st, err := s.Destination(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if st.FanoutSeq != evs[n-1].Seq {
		t.Fatalf("fanout_seq = %d, want %d", st.FanoutSeq, evs[n-1].Seq)
	}
	if again, err := s.Fanout(ctx, "crm", contacts, t0); err != nil || again != 0 {
		t.Fatalf("second fan-out = %d, %v; want 0, nil", again, err)
	}
	bl, err := s.Backlog(ctx, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if bl.Pending != n/2 || !bl.OldestPending.Equal(t0) {
		t.Fatalf("backlog = %+v, want %d pending since %v", bl, n/2, t0)
	}
	late := addEvents(t, s, t0, event("contacts", "late", "contact.updated"))
	byID["late"] = late[0]
	if again, err := s.Fanout(ctx, "crm", contacts, t0); err != nil || again != 1 {
		t.Fatalf("fan-out of a new event = %d, %v; want 1, nil", again, err)
	}
	// A match over the content: only the events whose data says so.
	ensure(t, s, "stage", time.Time{})
	byData := func(e cursor.Event) bool { return len(e.ChangedFields) == 1 && e.ChangedFields[0] == "stage" }
	if got, err := s.Fanout(ctx, "stage", byData, t0); err != nil || got != (n+2)/3 {
		t.Fatalf("fan-out over changed fields = %d, %v; want %d", got, err, (n+2)/3)
	}
}

func testPendingDueInSeqOrder(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	evs := addEvents(t, s, t0, event("contacts", "e1", "contact.created"), event("contacts", "e2", "contact.created"),
		event("contacts", "e3", "contact.created"))
	fanout(t, s, "a", t0)
	// e2 fails and is due a minute later.
	record(t, s, "a", cursor.Outcome{Destination: "a", EventID: "e2", At: t0, HTTPStatus: 500,
		Error: "500", Status: cursor.StatusPending, Counted: true, NextAt: t0.Add(time.Minute)})
	tests := []struct {
		name string
		q    cursor.PendingQuery
		want []string
	}{
		{"due now", cursor.PendingQuery{Destination: "a", Due: t0, Limit: 10}, []string{"e1", "e3"}},
		{"due later", cursor.PendingQuery{Destination: "a", Due: t0.Add(time.Minute), Limit: 10}, []string{"e1", "e2", "e3"}},
		{"all pending", cursor.PendingQuery{Destination: "a", Limit: 10}, []string{"e1", "e2", "e3"}},
		{"limit", cursor.PendingQuery{Destination: "a", Limit: 2}, []string{"e1", "e2"}},
		{"after seq", cursor.PendingQuery{Destination: "a", AfterSeq: evs[0].Seq, Limit: 10}, []string{"e2", "e3"}},
		{"other destination", cursor.PendingQuery{Destination: "b", Limit: 10}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pendingIDs(t, s, tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pending = %v, want %v", got, tt.want)
			}
		})
	}
	ps, err := s.Pending(ctx, cursor.PendingQuery{Destination: "a", Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := evs[0]
	if got := ps[0].Event; !reflect.DeepEqual(got, want) {
		t.Errorf("pending event = %+v\nwant %+v", got, want)
	}
	if ps[0].Attempts != 0 || !ps[0].NextAt.Equal(t0) || !ps[0].CreatedAt.Equal(t0) {
		t.Errorf("pending delivery = %+v, want no attempts, due and created at %v", ps[0], t0)
	}
	next, ok, err := s.NextDue(ctx, "a", t0)
	if err != nil || !ok || !next.Equal(t0.Add(time.Minute)) {
		t.Errorf("NextDue after now = %v, %v, %v; want %v", next, ok, err, t0.Add(time.Minute))
	}
	if _, ok, err := s.NextDue(ctx, "a", t0.Add(time.Minute)); err != nil || ok {
		t.Errorf("NextDue after the last = %v, %v; want none", ok, err)
	}
	if _, err := s.Pending(ctx, cursor.PendingQuery{Destination: "a"}); err == nil {
		t.Error("Pending with no limit succeeded")
	}
}

func testRecordOutcomes(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	addEvents(t, s, t0, event("contacts", "ok", "contact.created"), event("contacts", "retry", "contact.created"),
		event("contacts", "dead", "contact.created"), event("contacts", "gone", "contact.created"))
	fanout(t, s, "a", t0)

	at := t0.Add(time.Second)
	long := strings.Repeat("é", cursor.MaxErrorBytes) // 2 bytes a rune
	record(t, s, "a",
		cursor.Outcome{Destination: "a", EventID: "ok", BodyID: "bat_1", At: at, HTTPStatus: 200, Latency: 5 * time.Millisecond,
			Response: strings.Repeat("r", 2*cursor.MaxResponseBytes), Status: cursor.StatusDelivered, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "retry", BodyID: "bat_1", At: at, HTTPStatus: 500, Error: long,
			Status: cursor.StatusPending, Counted: true, NextAt: at.Add(time.Minute)},
		cursor.Outcome{Destination: "a", EventID: "dead", BodyID: "dead", At: at, Error: "connection refused",
			Status: cursor.StatusDead, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "gone", BodyID: "gone", At: at, HTTPStatus: 410, Error: "410 Gone",
			Status: cursor.StatusPending},
		cursor.Outcome{Destination: "a", EventID: "no such event", At: at, Status: cursor.StatusDelivered, Counted: true},
	)
	tests := []struct {
		id   string
		want cursor.Delivery
	}{
		{"ok", cursor.Delivery{Status: cursor.StatusDelivered, Attempts: 1, NextAt: t0, LastStatus: 200, DoneAt: at}},
		{"retry", cursor.Delivery{Status: cursor.StatusPending, Attempts: 1, NextAt: at.Add(time.Minute), LastStatus: 500,
			LastError: long[:cursor.MaxErrorBytes]}}, // whole runes: é is 2 bytes
		{"dead", cursor.Delivery{Status: cursor.StatusDead, Attempts: 1, NextAt: t0, LastError: "connection refused", DoneAt: at}},
		{"gone", cursor.Delivery{Status: cursor.StatusPending, Attempts: 0, NextAt: t0, LastStatus: 410, LastError: "410 Gone"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got := delivery(t, s, "a", tt.id)
			want := tt.want
			want.Destination, want.EventID, want.Seq, want.Type, want.CreatedAt = "a", tt.id, got.Seq, "contact.created", t0
			if !reflect.DeepEqual(got, want) {
				t.Errorf("delivery = %+v\nwant       %+v", got, want)
			}
		})
	}
	if e := delivery(t, s, "a", "retry").LastError; len(e) > cursor.MaxErrorBytes || !utf8.ValidString(e) || len(e) < cursor.MaxErrorBytes-1 {
		t.Errorf("last error is %d bytes (valid UTF-8: %v), want %d bytes cut at a rune", len(e), utf8.ValidString(e), cursor.MaxErrorBytes)
	}

	logs, err := s.Attempts(ctx, cursor.AttemptFilter{Destination: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 4 {
		t.Fatalf("attempt log has %d rows, want 4 (one per event of a known delivery)", len(logs))
	}
	ok := logs[len(logs)-1] // oldest last
	if ok.EventID != "ok" || ok.BodyID != "bat_1" || ok.Status != 200 || ok.Latency != 5*time.Millisecond ||
		!ok.At.Equal(at) || len(ok.Response) != cursor.MaxResponseBytes {
		t.Errorf("attempt = %+v, want ok/bat_1/200/5ms with a %d-byte response", ok, cursor.MaxResponseBytes)
	}
	one, err := s.Attempts(ctx, cursor.AttemptFilter{Destination: "a", EventID: "retry"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || len(one[0].Error) > cursor.MaxErrorBytes {
		t.Errorf("attempts of retry = %+v, want one with the error cut to %d bytes", one, cursor.MaxErrorBytes)
	}
	lease := hold(t, s, cursor.DestinationLease("a"))
	if err := s.RecordOutcomes(ctx, lease, []cursor.Outcome{{Destination: "a", EventID: "ok", Status: "lost"}}); err == nil {
		t.Error("an outcome with an unknown status was recorded")
	}
}

func testDisableEnableDestination(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", t0)
	if err := s.DisableDestination(ctx, "a", "410 Gone", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableDestination(ctx, "a", "by hand", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Destination(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Disabled() || !st.DisabledAt.Equal(t0) || st.DisabledReason != "410 Gone" {
		t.Fatalf("disabled twice = %+v, want the first time and reason kept", st)
	}
	if bl, err := s.Backlog(ctx, "a"); err != nil || !bl.Disabled {
		t.Fatalf("backlog = %+v, %v; want disabled", bl, err)
	}
	if err := s.EnableDestination(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Destination(ctx, "a"); st.Disabled() || st.DisabledReason != "" {
		t.Fatalf("enabled = %+v, want no disabled time or reason", st)
	}
	for name, err := range map[string]error{
		"disable": s.DisableDestination(ctx, "nope", "x", t0),
		"enable":  s.EnableDestination(ctx, "nope"),
	} {
		if !errors.Is(err, cursor.ErrUnknownDestination) || !strings.Contains(err.Error(), "nope") {
			t.Errorf("%s unknown destination: error = %v, want ErrUnknownDestination naming it", name, err)
		}
	}
	if _, err := s.Backlog(ctx, "nope"); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("Backlog(unknown) error = %v, want ErrUnknownDestination", err)
	}
}

func testReplay(t *testing.T, b Backend) {
	ctx := context.Background()
	now := t0.Add(24 * time.Hour)
	// setup: a has e1 delivered, e2 dead, e3 pending with attempts; e4
	// (detected later) dead; b has e1 dead.
	setup := func(t *testing.T) cursor.Store {
		s := b.Open(t)
		ensure(t, s, "a", time.Time{})
		ensure(t, s, "b", time.Time{})
		addEvents(t, s, t0, event("contacts", "e1", "contact.created"), event("contacts", "e2", "contact.created"),
			event("contacts", "e3", "contact.created"))
		addEvents(t, s, t0.Add(time.Hour), event("contacts", "e4", "contact.created"))
		fanout(t, s, "a", t0)
		record(t, s, "a",
			cursor.Outcome{Destination: "a", EventID: "e1", At: t0, Status: cursor.StatusDelivered, Counted: true},
			cursor.Outcome{Destination: "a", EventID: "e2", At: t0, Status: cursor.StatusDead, Counted: true},
			cursor.Outcome{Destination: "a", EventID: "e3", At: t0, Status: cursor.StatusPending, Counted: true, NextAt: now.Add(time.Hour)},
			cursor.Outcome{Destination: "a", EventID: "e4", At: t0, Status: cursor.StatusDead, Counted: true},
		)
		if _, err := s.Replay(ctx, cursor.ReplayFilter{Destination: "b", EventID: "e1", Now: t0}); err != nil {
			t.Fatal(err)
		}
		record(t, s, "b", cursor.Outcome{Destination: "b", EventID: "e1", At: t0, Status: cursor.StatusDead, Counted: true})
		return s
	}
	type key = destEvent
	tests := []struct {
		name     string
		f        cursor.ReplayFilter
		want     int64
		replayed []key
	}{
		{"dead of one destination", cursor.ReplayFilter{Destination: "a", Dead: true}, 2, []key{{"a", "e2"}, {"a", "e4"}}},
		{"dead of all", cursor.ReplayFilter{Dead: true}, 3, []key{{"a", "e2"}, {"a", "e4"}, {"b", "e1"}}},
		{"since", cursor.ReplayFilter{Destination: "a", Since: t0.Add(time.Minute)}, 1, []key{{"a", "e4"}}},
		{"dead since", cursor.ReplayFilter{Dead: true, Since: t0.Add(time.Minute)}, 1, []key{{"a", "e4"}}},
		{"a delivered event", cursor.ReplayFilter{Destination: "a", EventID: "e1"}, 1, []key{{"a", "e1"}}},
		{"an event never queued", cursor.ReplayFilter{Destination: "b", EventID: "e3"}, 1, []key{{"b", "e3"}}},
		{"a new destination", cursor.ReplayFilter{Destination: "c", EventID: "e2"}, 1, []key{{"c", "e2"}}},
		{"event id, not dead", cursor.ReplayFilter{Destination: "a", EventID: "e1", Dead: true}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := setup(t)
			f := tt.f
			f.Now = now
			n, err := s.Replay(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.want {
				t.Errorf("replayed %d, want %d", n, tt.want)
			}
			for _, k := range tt.replayed {
				d := delivery(t, s, k.dest, k.id)
				if d.Status != cursor.StatusPending || d.Attempts != 0 || !d.NextAt.Equal(now) || !d.DoneAt.IsZero() {
					t.Errorf("replayed %s to %s = %+v, want pending, no attempts, due now", k.id, k.dest, d)
				}
			}
			if p := pendingIDs(t, s, cursor.PendingQuery{Destination: "a", Due: now, Limit: 10}); len(p) != countDest(tt.replayed, "a") {
				t.Errorf("due to a after replay: %v, want only the replayed %v", p, tt.replayed)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, tt := range []struct {
			name string
			f    cursor.ReplayFilter
			want string
			is   error
		}{
			{"nothing selected", cursor.ReplayFilter{Destination: "a"}, "no event id, dead or since", nil},
			{"event id without destination", cursor.ReplayFilter{EventID: "e1"}, "needs a destination", nil},
			{"unknown event", cursor.ReplayFilter{Destination: "a", EventID: "nope"}, `unknown event "nope"`, cursor.ErrUnknownEvent},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.Replay(ctx, tt.f)
				if err == nil || !strings.Contains(err.Error(), tt.want) || (tt.is != nil && !errors.Is(err, tt.is)) {
					t.Errorf("error = %v, want %q", err, tt.want)
				}
			})
		}
	})
}

// destEvent names one delivery.
type destEvent struct{ dest, id string }

func countDest(keys []destEvent, dest string) int {
	n := 0
	for _, k := range keys {
		if k.dest == dest {
			n++
		}
	}
	return n
}

func testPrune(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	day := 24 * time.Hour
	now := t0.Add(100 * day)
	ensure(t, s, "a", time.Time{})
	// Detected long ago: old-delivered, new-delivered, old-dead, new-dead,
	// old-pending, unqueued (no delivery: not matched).
	old := addEvents(t, s, t0,
		event("contacts", "old-delivered", "contact.created"), event("contacts", "new-delivered", "contact.created"),
		event("contacts", "old-dead", "contact.created"), event("contacts", "new-dead", "contact.created"),
		event("contacts", "old-pending", "contact.created"), event("contacts", "unqueued", "deal.created"))
	if _, err := s.Fanout(ctx, "a", func(e cursor.Event) bool { return e.Type == "contact.created" }, t0); err != nil {
		t.Fatal(err)
	}
	record(t, s, "a",
		cursor.Outcome{Destination: "a", EventID: "old-delivered", At: now.Add(-8 * day), Status: cursor.StatusDelivered, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "new-delivered", At: now.Add(-6 * day), Status: cursor.StatusDelivered, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "old-dead", At: now.Add(-31 * day), Status: cursor.StatusDead, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "new-dead", At: now.Add(-29 * day), Status: cursor.StatusDead, Counted: true},
		cursor.Outcome{Destination: "a", EventID: "old-pending", At: now.Add(-50 * day), Status: cursor.StatusPending, Counted: true, NextAt: now},
	)
	// Detected long ago but not yet fanned out to b, which lags.
	ensure(t, s, "b", now)
	addEvents(t, s, t0, event("contacts", "behind-b", "deal.created"))
	// Detected recently, no delivery.
	addEvents(t, s, now.Add(-day), event("contacts", "recent", "deal.created"))

	res, err := s.Prune(ctx, cursor.PruneOptions{Now: now, DeliveredRetention: 7 * day, DeadRetention: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	if want := (cursor.PruneResult{Delivered: 1, Dead: 1, Events: 3}); res != want {
		t.Errorf("prune = %+v, want %+v", res, want)
	}
	ds, err := s.Deliveries(ctx, cursor.DeliveryFilter{Destination: "a"})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, d := range ds {
		left = append(left, d.EventID)
	}
	if want := []string{"old-pending", "new-dead", "new-delivered"}; !reflect.DeepEqual(left, want) {
		t.Errorf("deliveries left = %v, want %v", left, want)
	}
	logs, err := s.Attempts(ctx, cursor.AttemptFilter{Destination: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 3 {
		t.Errorf("attempts left = %d, want 3 (those of the deliveries kept)", len(logs))
	}
	// The events of the pruned deliveries and the unqueued one go; those
	// with a delivery, behind a destination, or recent stay.
	got := eventIDs(allEvents(t, s, cursor.EventFilter{}))
	if want := []string{"new-delivered", "new-dead", "old-pending", "behind-b", "recent"}; !reflect.DeepEqual(got, want) {
		t.Errorf("outbox after prune = %v, want %v (first seq %d)", got, want, old[0].Seq)
	}
	// Zero retentions prune nothing.
	if res, err := s.Prune(ctx, cursor.PruneOptions{Now: now.Add(1000 * day)}); err != nil || res != (cursor.PruneResult{}) {
		t.Errorf("prune with no retention = %+v, %v; want nothing", res, err)
	}
}

// testPruneManyInChunks prunes more rows than a backend deletes at once
// (SQLite: 1000 a transaction).
func testPruneManyInChunks(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	const n = 1010
	evs := make([]cursor.Event, n)
	outcomes := make([]cursor.Outcome, n)
	for i := range evs {
		evs[i] = event("contacts", fmt.Sprintf("e%05d", i), "contact.created")
		outcomes[i] = cursor.Outcome{Destination: "a", EventID: evs[i].ID, At: t0, Status: cursor.StatusDelivered, Counted: true}
	}
	addEvents(t, s, t0, evs...)
	fanout(t, s, "a", t0)
	record(t, s, "a", outcomes...)
	res, err := s.Prune(ctx, cursor.PruneOptions{Now: t0.Add(time.Hour), DeliveredRetention: time.Minute, DeadRetention: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != n || res.Events != n {
		t.Fatalf("prune = %+v, want %d deliveries and events", res, n)
	}
	if last, _ := s.LastSeq(ctx); last != 0 {
		t.Fatalf("outbox ends at seq %d after pruning everything, want empty", last)
	}
}

// testDeleteDestinationUnblocksPrune: a destination nothing delivers to
// any more holds back outbox pruning (its pending deliveries and its
// frozen position) until DeleteDestination removes it, its deliveries and
// their attempts, more of them than a backend deletes at once; the other
// destination keeps its own.
func testDeleteDestinationUnblocksPrune(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	ensure(t, s, "gone", time.Time{})
	const n = 1010
	evs := make([]cursor.Event, n)
	for i := range evs {
		evs[i] = event("contacts", fmt.Sprintf("e%05d", i), "contact.created")
	}
	addEvents(t, s, t0, evs...)
	fanout(t, s, "a", t0)
	fanout(t, s, "gone", t0)
	// Later events that gone never fans out: its position stays behind them.
	later := addEvents(t, s, t0, event("contacts", "late-1", "contact.created"), event("contacts", "late-2", "contact.created"))
	fanout(t, s, "a", t0)
	var delivered, failing []cursor.Outcome
	for _, e := range append(evs, later...) {
		delivered = append(delivered, cursor.Outcome{Destination: "a", EventID: e.ID, At: t0, Status: cursor.StatusDelivered, Counted: true})
	}
	for _, e := range evs[:5] {
		failing = append(failing, cursor.Outcome{Destination: "gone", EventID: e.ID, At: t0, HTTPStatus: 503,
			Error: "503", Status: cursor.StatusPending, Counted: true, NextAt: t0.Add(time.Minute)})
	}
	record(t, s, "a", delivered...)
	record(t, s, "gone", failing...)
	// a keeps one pending delivery of its own.
	mine := addEvents(t, s, t0, event("contacts", "mine", "contact.created"))
	fanout(t, s, "a", t0)

	opts := cursor.PruneOptions{Now: t0.Add(time.Hour), DeliveredRetention: time.Minute, DeadRetention: time.Minute}
	res, err := s.Prune(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != n+2 || res.Events != 0 {
		t.Fatalf("prune with gone in the store = %+v, want a's %d deliveries pruned and no event", res, n+2)
	}

	if err := s.DeleteDestination(ctx, "gone", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Destination(ctx, "gone"); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("Destination(gone) after delete: %v, want ErrUnknownDestination", err)
	}
	if ds, err := s.Deliveries(ctx, cursor.DeliveryFilter{Destination: "gone", Limit: cursor.MaxListLimit}); err != nil || len(ds) != 0 {
		t.Errorf("gone's deliveries after delete: %d (%v), want none", len(ds), err)
	}
	if as, err := s.Attempts(ctx, cursor.AttemptFilter{Destination: "gone"}); err != nil || len(as) != 0 {
		t.Errorf("gone's attempts after delete: %d (%v), want none", len(as), err)
	}
	if got := pendingIDs(t, s, cursor.PendingQuery{Destination: "a", Limit: 10}); !reflect.DeepEqual(got, eventIDs(mine)) {
		t.Errorf("a's pending deliveries after deleting gone = %v, want %v", got, eventIDs(mine))
	}

	res, err = s.Prune(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != n+2 {
		t.Fatalf("prune after delete = %+v, want the %d events no one needs", res, n+2)
	}
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{})); !reflect.DeepEqual(got, eventIDs(mine)) {
		t.Errorf("outbox after prune = %v, want only %v (pending for a)", got, eventIDs(mine))
	}
	if err := s.DeleteDestination(ctx, "gone", t0); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("deleting gone again: %v, want ErrUnknownDestination", err)
	}
}

// testDeletedDestinationComesBack: a destination deleted, then created
// again with a since before its deletion (a process whose config still
// names it, since its start), resumes from the deletion: it gets the
// events detected after it, not those it had before. Created again with a
// later since (the config names it again), it starts from there.
func testDeletedDestinationComesBack(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "d", t0)
	before := addEvents(t, s, t0.Add(time.Minute), event("contacts", "b1", "contact.created"), event("contacts", "b2", "contact.created"))
	fanout(t, s, "d", t0.Add(time.Minute))
	deleted := t0.Add(2 * time.Minute)
	if err := s.DeleteDestination(ctx, "d", deleted); err != nil {
		t.Fatal(err)
	}
	after := addEvents(t, s, t0.Add(3*time.Minute), event("contacts", "a1", "contact.created"))
	ensure(t, s, "d", t0) // since its start, before the deletion
	fanout(t, s, "d", t0.Add(3*time.Minute))
	if got := pendingIDs(t, s, cursor.PendingQuery{Destination: "d", Limit: 10}); !reflect.DeepEqual(got, eventIDs(after)) {
		t.Errorf("d, deleted and back, has %v pending; want only %v, detected after its deletion (not %v)", got, eventIDs(after), eventIDs(before))
	}

	if err := s.DeleteDestination(ctx, "d", t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	addEvents(t, s, t0.Add(5*time.Minute), event("contacts", "gap", "contact.created"))
	later := addEvents(t, s, t0.Add(6*time.Minute), event("contacts", "l1", "contact.created"))
	ensure(t, s, "d", t0.Add(6*time.Minute)) // named in the config again, later
	fanout(t, s, "d", t0.Add(6*time.Minute))
	if got := pendingIDs(t, s, cursor.PendingQuery{Destination: "d", Limit: 10}); len(got) != 1 || got[0] != later[0].ID {
		t.Errorf("d, added back after its deletion, has %v pending; want %v: what was detected from its return", got, eventIDs(later))
	}
}

func testDeliverySummary(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	const dest = "hook:k"

	if d, err := s.DeliverySummary(ctx, dest); err != nil || d != (cursor.DeliverySummary{}) {
		t.Errorf("never attempted: %+v, %v; want zero", d, err)
	}

	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1,
		Events: []cursor.Event{event("contacts", "e1", "contact.created"), event("contacts", "e2", "contact.created")}})
	ensure(t, s, dest, t0.Add(-time.Hour))
	if _, err := s.Fanout(ctx, dest, func(cursor.Event) bool { return true }, t0); err != nil {
		t.Fatal(err)
	}
	ok, failed := t0.Add(time.Minute), t0.Add(2*time.Minute)
	record(t, s, dest,
		cursor.Outcome{Destination: dest, EventID: "e1", At: ok, HTTPStatus: 204, Status: cursor.StatusDelivered, Counted: true},
		cursor.Outcome{Destination: dest, EventID: "e2", At: failed, HTTPStatus: 503, Status: cursor.StatusPending, Counted: true, NextAt: failed.Add(time.Minute)},
	)
	d, err := s.DeliverySummary(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	want := cursor.DeliverySummary{LastAt: failed, LastStatus: 503, LastSuccess: ok}
	if d != want {
		t.Errorf("summary = %+v, want %+v", d, want)
	}
	if d, _ := s.DeliverySummary(ctx, "hook:other"); d != (cursor.DeliverySummary{}) {
		t.Errorf("other destination: %+v, want zero", d)
	}
}

// testDeliveriesInPages lists one destination's pending and dead
// deliveries, newest event first, a page at a time.
func testDeliveriesInPages(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	ensure(t, s, "b", time.Time{})
	var evs []cursor.Event
	for i := range 25 {
		evs = append(evs, event("contacts", fmt.Sprintf("e%02d", i), "contact.created"))
	}
	evs = addEvents(t, s, t0, evs...)
	fanout(t, s, "a", t0)
	fanout(t, s, "b", t0)
	// Every third event of a is dead, every fifth delivered; b's are all
	// dead.
	var outs, bOuts []cursor.Outcome
	var dead, pending []string
	for i := len(evs) - 1; i >= 0; i-- {
		o := cursor.Outcome{Destination: "a", EventID: evs[i].ID, At: t0, Counted: true}
		switch {
		case i%3 == 0:
			o.Status = cursor.StatusDead
			dead = append(dead, evs[i].ID)
		case i%5 == 0:
			o.Status = cursor.StatusDelivered
		default:
			o.Status, o.NextAt = cursor.StatusPending, t0.Add(time.Minute)
			pending = append(pending, evs[i].ID)
		}
		outs = append(outs, o)
		bOuts = append(bOuts, cursor.Outcome{Destination: "b", EventID: evs[i].ID, At: t0, Status: cursor.StatusDead, Counted: true})
	}
	record(t, s, "a", outs...)
	record(t, s, "b", bOuts...)
	for _, tt := range []struct {
		status cursor.DeliveryStatus
		want   []string
	}{{cursor.StatusPending, pending}, {cursor.StatusDead, dead}} {
		var got []string
		before := int64(0)
		for range 100 {
			ds, err := s.Deliveries(ctx, cursor.DeliveryFilter{Destination: "a", Status: tt.status, BeforeSeq: before, Limit: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 0 {
				break
			}
			for _, d := range ds {
				if d.Destination != "a" || d.Status != tt.status {
					t.Errorf("%s page: delivery %+v", tt.status, d)
				}
				got = append(got, d.EventID)
			}
			before = ds[len(ds)-1].Seq
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s deliveries in pages of 4 = %v, want %v (newest first)", tt.status, got, tt.want)
		}
	}
}
