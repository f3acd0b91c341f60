package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// resourceTests: cycles and pages, watermarks, the records seen, their
// revisions and tombstones, held deletes.
var resourceTests = []test{
	{"CommitPageUpsertsAndDedupesEvents", testCommitPageUpsertsAndDedupesEvents},
	{"CommitPageTouchesOnlyExisting", testCommitPageTouchesOnlyExisting},
	{"FinishCycleSnapshotDeletes", testFinishCycleSnapshotDeletes},
	{"SnapshotDeleteNeedsTwoMisses", testSnapshotDeleteNeedsTwoMisses},
	{"SnapshotSightingClearsMiss", testSnapshotSightingClearsMiss},
	{"SnapshotDeleteLookedUp", testSnapshotDeleteLookedUp},
	{"Missing", testMissing},
	{"MissingCountsEachRecordOnce", testMissingCountsEachRecordOnce},
	{"WatchFrom", testWatchFrom},
	{"HeldDeletesClearOnNextCycle", testHeldDeletesClearOnNextCycle},
	{"Watermark", testWatermark},
	{"BeginCycleCounts", testBeginCycleCounts},
	{"BeginCycleCountsAfterReopen", testBeginCycleCountsAfterReopen},
	{"ReopenKeepsData", testReopenKeepsData},
	{"FailedTransactionWritesNothing", testFailedTransactionWritesNothing},
	{"SeenManyIDs", testSeenManyIDs},
	{"ConcurrentWriters", testConcurrentWriters},
}

func testCommitPageUpsertsAndDedupesEvents(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	commit(t, s, cursor.Page{
		Resource: "contacts", Cycle: 1,
		Records: []cursor.SeenRecord{rec("1", t0), rec("2", t0)},
		Events:  []cursor.Event{event("contacts", "a", "contact.created"), event("contacts", "b", "contact.created")},
	})
	changed := event("contacts", "a", "contact.updated")
	changed.Data = json.RawMessage(`{"changed":true}`)
	commit(t, s, cursor.Page{
		Resource: "contacts", Cycle: 2,
		Records: []cursor.SeenRecord{{ID: "1", Seen: cursor.Seen{Updated: t0.Add(time.Hour), Hash: "new"}}},
		Events:  []cursor.Event{event("contacts", "c", "contact.updated"), changed, event("contacts", "c", "contact.updated")},
	})

	seen, err := s.Seen(ctx, "contacts", []string{"1", "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cursor.Seen{"1": {Updated: t0.Add(time.Hour), Hash: "new"}, "2": {Updated: t0, Hash: "h-2"}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("seen = %v, want %v", seen, want)
	}
	evs := allEvents(t, s, cursor.EventFilter{})
	if got := eventIDs(evs); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("outbox = %v, want a, b, c once each", got)
	}
	if evs[0].Seq != 1 || evs[0].Type != "contact.created" || string(evs[0].Data) != `{"id":"a"}` {
		t.Errorf("first event = %+v, want seq 1 as first inserted", evs[0])
	}
	if evs[0].Seq >= evs[1].Seq || evs[1].Seq >= evs[2].Seq {
		t.Errorf("seqs not increasing: %d %d %d", evs[0].Seq, evs[1].Seq, evs[2].Seq)
	}
	want0 := event("contacts", "a", "contact.created")
	want0.Seq = evs[0].Seq
	if !reflect.DeepEqual(evs[0], want0) {
		t.Errorf("event round trip = %+v, want %+v", evs[0], want0)
	}
	last, err := s.LastSeq(ctx)
	if err != nil || last != evs[2].Seq {
		t.Errorf("LastSeq = %d, %v; want %d", last, err, evs[2].Seq)
	}
	if st := state(t, s, "contacts"); st.Known != 2 || !st.Watermark.IsZero() {
		t.Errorf("state = %+v, want 2 known and no watermark: pages do not move it", st)
	}
}

func testCommitPageTouchesOnlyExisting(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	cycle(t, s, "contacts", []string{"1", "2"}, cursor.Finish{})
	n, err := s.BeginCycle(ctx, "contacts", hold(t, s, cursor.ResourceLease("contacts")))
	if err != nil {
		t.Fatal(err)
	}
	// "1" was skipped (bad date) but seen; "9" was never stored. Two
	// such cycles: the second confirms that "2" is gone.
	var res cursor.FinishResult
	for i := range 2 {
		commit(t, s, cursor.Page{Resource: "contacts", Cycle: n + int64(i), Touch: []string{"1", "9"}})
		res = finish(t, s, cursor.Finish{
			Resource: "contacts", Cycle: n + int64(i), Snapshot: true, DeleteGuard: 1,
			Deleted: func(id string, _ cursor.Seen) cursor.Event { return event("contacts", "del-"+id, "contact.deleted") },
		})
	}
	if res != (cursor.FinishResult{Known: 2, Missing: 1, Deleted: 1}) {
		t.Errorf("result = %+v, want only the untouched record deleted", res)
	}
	seen, _ := s.Seen(ctx, "contacts", []string{"1", "2", "9"})
	if r, ok := seen["1"]; !ok || r.Deleted || len(seen) != 2 || !seen["2"].Deleted {
		t.Errorf("seen = %v, want the touched record kept, the other a tombstone, and no record made for 9", seen)
	}
}

// testFinishCycleSnapshotDeletes: a record a snapshot cycle misses is
// deleted when the next complete snapshot cycle misses it too — unless
// the misses are over the guard. The larger cases delete more records than
// a backend would read at once (SQLite reads 500 at a time).
func testFinishCycleSnapshotDeletes(t *testing.T, b Backend) {
	tests := []struct {
		name     string
		before   []string
		now      []string
		guard    float64
		wantGone []string
		wantHeld int64
	}{
		{"some gone", []string{"a", "b", "c", "d", "e"}, []string{"a", "c", "e"}, 0.5, []string{"b", "d"}, 0},
		{"exactly the guard", []string{"a", "b", "c", "d"}, []string{"a", "b"}, 0.5, []string{"c", "d"}, 0},
		{"over the guard", []string{"a", "b", "c", "d"}, []string{"a"}, 0.5, nil, 3},
		{"empty list held", []string{"a", "b"}, nil, 0.5, nil, 2},
		{"guard 1 allows all", []string{"a", "b"}, nil, 1, []string{"a", "b"}, 0},
		{"nothing gone", []string{"a"}, []string{"a"}, 0, nil, 0},
		{"many chunks", ids("x", 1203), ids("x", 1)[:1], 1, ids("x", 1203)[1:], 0},
		{"kept and gone interleaved over chunks", ids("y", 1500), every(ids("y", 1500), 0), 1, every(ids("y", 1500), 1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.Open(t)
			cycle(t, s, "contacts", tt.before, cursor.Finish{Snapshot: true, DeleteGuard: 1})
			// Another resource's records are never touched.
			cycle(t, s, "deals", []string{"a", "b"}, cursor.Finish{Snapshot: true, DeleteGuard: 1})

			calls := map[string]int{}
			snapshot := cursor.Finish{
				Snapshot: true, DeleteGuard: tt.guard,
				Deleted: func(id string, last cursor.Seen) cursor.Event {
					calls[id]++
					if last != (cursor.Seen{Updated: t0, Hash: "h-" + id}) {
						t.Errorf("Deleted(%q) got last %+v", id, last)
					}
					return event("contacts", "del-"+id, "contact.deleted")
				},
			}
			missing := int64(len(tt.before) - len(tt.now))
			// The first cycle to miss them deletes nothing.
			first := cursor.FinishResult{Known: int64(len(tt.before)), Missing: missing, HeldBack: tt.wantHeld}
			if res := cycle(t, s, "contacts", tt.now, snapshot); res != first {
				t.Errorf("first cycle to miss them: %+v, want %+v", res, first)
			}
			if len(calls) > 0 {
				t.Fatalf("the first cycle to miss records deleted %v", calls)
			}
			// The second confirms.
			res := cycle(t, s, "contacts", tt.now, snapshot)
			want := cursor.FinishResult{Known: int64(len(tt.before)), Missing: missing, Deleted: int64(len(tt.wantGone)), HeldBack: tt.wantHeld}
			if res != want {
				t.Errorf("second cycle to miss them: %+v, want %+v", res, want)
			}
			for _, id := range tt.wantGone {
				if calls[id] != 1 {
					t.Errorf("Deleted(%q) called %d times, want 1", id, calls[id])
				}
			}
			if len(calls) != len(tt.wantGone) {
				t.Errorf("Deleted called for %d ids, want %d", len(calls), len(tt.wantGone))
			}
			evs := allEvents(t, s, cursor.EventFilter{Type: "*.deleted"})
			wantIDs := []string{}
			for _, id := range tt.wantGone {
				wantIDs = append(wantIDs, "del-"+id)
			}
			if got := eventIDs(evs); !reflect.DeepEqual(got, wantIDs) {
				t.Errorf("delete events = %d %.5v, want %d %.5v", len(got), got, len(wantIDs), wantIDs)
			}
			st := state(t, s, "contacts")
			if st.Known != int64(len(tt.before)-len(tt.wantGone)) || st.HeldDeletes != tt.wantHeld {
				t.Errorf("state = %+v, want %d known, %d held", st, len(tt.before)-len(tt.wantGone), tt.wantHeld)
			}
			// Deleted records stay as tombstones, one revision on.
			seen, _ := s.Seen(ctx, "contacts", tt.wantGone)
			for id, r := range seen {
				if !r.Deleted || r.Rev != 1 {
					t.Errorf("deleted record %s = %+v, want a tombstone at rev 1", id, r)
					break
				}
			}
			if len(seen) != len(tt.wantGone) {
				t.Errorf("%d tombstones, want %d", len(seen), len(tt.wantGone))
			}
			if st := state(t, s, "deals"); st.Known != 2 {
				t.Errorf("other resource known = %d, want 2", st.Known)
			}
		})
	}
}

// testSnapshotDeleteNeedsTwoMisses: a record missed by one snapshot
// cycle and seen by the next is kept; a cycle that is not a snapshot
// between two misses neither confirms nor clears them; the first snapshot
// cycle of a resource confirms nothing.
func testSnapshotDeleteNeedsTwoMisses(t *testing.T, b Backend) {
	s := b.Open(t)
	snap := cursor.Finish{Snapshot: true, DeleteGuard: 1}
	cycle(t, s, "contacts", []string{"a", "b", "c"}, cursor.Finish{})
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Deleted != 0 || res.Missing != 2 {
		t.Fatalf("first snapshot cycle, after a cycle that was not one: %+v, want 2 missing, none deleted", res)
	}
	if res := cycle(t, s, "contacts", []string{"a", "b"}, snap); res.Deleted != 1 || res.Missing != 1 {
		t.Fatalf("b back, c missed again: %+v, want c deleted", res)
	}
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Deleted != 0 || res.Missing != 1 {
		t.Fatalf("b missed once: %+v, want it kept", res)
	}
	cycle(t, s, "contacts", nil, cursor.Finish{}) // not a snapshot: no verdict
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Deleted != 1 {
		t.Fatalf("b missed by two snapshot cycles: %+v, want it deleted", res)
	}
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{Type: "*.deleted"})); !reflect.DeepEqual(got, []string{"del-c", "del-b"}) {
		t.Errorf("delete events %v, want del-c then del-b", got)
	}
}

// testSnapshotSightingClearsMiss: a record missed by a complete
// snapshot cycle and then listed unchanged (a touch) — by a complete
// cycle, or by one that failed part-way and never finished — is not
// deleted by the next complete cycle that misses it: only two complete
// snapshot cycles that miss it with no sighting between confirm a delete.
// A touch leaves the records it does not name missing.
func testSnapshotSightingClearsMiss(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	snap := cursor.Finish{Snapshot: true, DeleteGuard: 1}
	cycle(t, s, "contacts", []string{"a", "b", "c", "d"}, snap)
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Missing != 3 || res.Deleted != 0 {
		t.Fatalf("b, c, d missed once: %+v, want 3 missing, none deleted", res)
	}
	lease := hold(t, s, cursor.ResourceLease("contacts"))
	// A cycle that touches b and fails before its finish.
	n, err := s.BeginCycle(ctx, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: n, Touch: []string{"a", "b"}})
	// A complete one that touches c, and misses b and d.
	n, err = s.BeginCycle(ctx, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: n, Touch: []string{"a", "c"}})
	if m, err := s.Missing(ctx, "contacts", n, "", 10); err != nil || m.Missing != 2 || len(m.Records) != 2 ||
		m.Records[0].ID != "b" || m.Records[1].ID != "d" {
		t.Fatalf("Missing after touching a and c = %+v, %v; want b and d", m, err)
	}
	snap.Resource, snap.Cycle = "contacts", n
	snap.Deleted = func(id string, _ cursor.Seen) cursor.Event { return event("contacts", "del-"+id, "contact.deleted") }
	if res := finish(t, s, snap); res.Missing != 2 || res.Deleted != 1 {
		t.Fatalf("b seen by a failed cycle, c by this one, d missed again: %+v, want d alone deleted", res)
	}
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Missing != 2 || res.Deleted != 1 {
		t.Fatalf("b missed twice since its sighting, c once: %+v, want b alone deleted", res)
	}
	if res := cycle(t, s, "contacts", []string{"a"}, snap); res.Missing != 1 || res.Deleted != 1 {
		t.Fatalf("c missed twice: %+v, want it deleted", res)
	}
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{Type: "*.deleted"})); !reflect.DeepEqual(got, []string{"del-d", "del-b", "del-c"}) {
		t.Errorf("delete events %v, want d, then b and c", got)
	}
}

// testSnapshotDeleteLookedUp: with LookedUp, a missing record is deleted
// in the cycle that misses it when Gone names it, and only then; a Gone id
// that the cycle saw, or that is already a tombstone, is not deleted.
func testSnapshotDeleteLookedUp(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	cycle(t, s, "contacts", []string{"a", "b", "c", "d", "e"}, cursor.Finish{Snapshot: true, DeleteGuard: 1})
	res := cycle(t, s, "contacts", []string{"a", "d"}, cursor.Finish{Snapshot: true, DeleteGuard: 1, LookedUp: true, Gone: []string{"b", "d", "zz"}})
	if res != (cursor.FinishResult{Known: 5, Missing: 3, Deleted: 1}) {
		t.Errorf("looked up: %+v, want b alone deleted of 3 missing", res)
	}
	// c was missed twice but never found gone: a lookup decides.
	res = cycle(t, s, "contacts", []string{"a", "d"}, cursor.Finish{Snapshot: true, DeleteGuard: 1, LookedUp: true})
	if res.Deleted != 0 || res.Missing != 2 {
		t.Errorf("missed twice, not found gone: %+v, want nothing deleted", res)
	}
	res = cycle(t, s, "contacts", []string{"a", "d"}, cursor.Finish{Snapshot: true, DeleteGuard: 1, LookedUp: true, Gone: []string{"b", "c", "e"}})
	if res.Deleted != 2 {
		t.Errorf("c and e found gone, b a tombstone already: %+v, want 2 deleted", res)
	}
	// Over the guard, nothing is deleted, whatever Gone says.
	res = cycle(t, s, "contacts", nil, cursor.Finish{Snapshot: true, DeleteGuard: 0.5, LookedUp: true, Gone: []string{"a", "d"}})
	if res != (cursor.FinishResult{Known: 2, Missing: 2, HeldBack: 2}) {
		t.Errorf("over the guard: %+v, want both held back", res)
	}
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{Type: "*.deleted"})); !reflect.DeepEqual(got, []string{"del-b", "del-c", "del-e"}) {
		t.Errorf("delete events %v, want b, c, e once each", got)
	}
	seen, _ := s.Seen(ctx, "contacts", []string{"a", "d"})
	if seen["a"].Deleted || seen["d"].Deleted {
		t.Errorf("a or d deleted: %v", seen)
	}
}

// testMissing: the records a cycle has not seen, by keyset pages, with
// the counts, as a snapshot cycle reads them to look them up.
// testMissingCountsEachRecordOnce: a record a cycle both writes and
// touches, or touches on two pages, counts once as seen; a touch of an id
// the store does not hold, of a tombstone, or of another resource's record
// (in a cycle of its own open at the same time) makes no record of this
// resource seen, and a tombstone is not missing.
func testMissingCountsEachRecordOnce(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	snap := cursor.Finish{Snapshot: true, DeleteGuard: 1, LookedUp: true, Gone: []string{"t", "u"}}
	cycle(t, s, "contacts", []string{"a", "b", "c", "d", "e", "t", "u"}, cursor.Finish{Snapshot: true, DeleteGuard: 1})
	cycle(t, s, "contacts", []string{"a", "b", "c", "d", "e"}, snap)
	cycle(t, s, "deals", []string{"d", "e", "x"}, cursor.Finish{})
	n, err := s.BeginCycle(ctx, "contacts", hold(t, s, cursor.ResourceLease("contacts")))
	if err != nil {
		t.Fatal(err)
	}
	deals, err := s.BeginCycle(ctx, "deals", hold(t, s, cursor.ResourceLease("deals")))
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: n, Records: []cursor.SeenRecord{rec("a", t0)}, Touch: []string{"a", "b", "t", "zz"}})
	commit(t, s, cursor.Page{Resource: "deals", Cycle: deals, Touch: []string{"d", "e", "x"}})
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: n, Touch: []string{"b", "c"}})
	m, err := s.Missing(ctx, "contacts", n, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if m.Known != 5 || m.Missing != 2 || len(m.Records) != 2 || m.Records[0].ID != "d" || m.Records[1].ID != "e" {
		t.Fatalf("Missing = %+v, want 5 known, d and e missing", m)
	}
	snap.Resource, snap.Cycle, snap.Gone = "contacts", n, nil
	snap.Deleted = func(id string, _ cursor.Seen) cursor.Event { return event("contacts", "del-"+id, "contact.deleted") }
	if res := finish(t, s, snap); res != (cursor.FinishResult{Known: 5, Missing: 2}) {
		t.Errorf("finish = %+v, want 5 known, 2 missing", res)
	}
	if m, err := s.Missing(ctx, "deals", deals, "", 10); err != nil || m.Known != 3 || m.Missing != 0 {
		t.Errorf("Missing of deals = %+v, %v; want 3 known, none missing", m, err)
	}
}

func testMissing(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	all := ids("m", 1100)
	cycle(t, s, "contacts", all, cursor.Finish{Snapshot: true, DeleteGuard: 1})
	cycle(t, s, "deals", all, cursor.Finish{Snapshot: true, DeleteGuard: 1})
	lease := hold(t, s, cursor.ResourceLease("contacts"))
	n, err := s.BeginCycle(ctx, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	kept := every(all, 0)
	p := cursor.Page{Resource: "contacts", Cycle: n}
	for _, id := range kept {
		p.Records = append(p.Records, rec(id, t0))
	}
	commit(t, s, p)
	var got []string
	after := ""
	for {
		m, err := s.Missing(ctx, "contacts", n, after, 300)
		if err != nil {
			t.Fatal(err)
		}
		if m.Known != 1100 || m.Missing != 550 {
			t.Fatalf("Missing counts %d known, %d missing; want 1100, 550", m.Known, m.Missing)
		}
		if len(m.Records) == 0 {
			break
		}
		if len(m.Records) > 300 {
			t.Fatalf("Missing gave %d records, limit 300", len(m.Records))
		}
		for _, r := range m.Records {
			if r.Seen != (cursor.Seen{Updated: t0, Hash: "h-" + r.ID}) {
				t.Errorf("missing %s = %+v, want the version stored", r.ID, r.Seen)
			}
			got = append(got, r.ID)
		}
		after = m.Records[len(m.Records)-1].ID
	}
	if want := every(all, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("missing ids: %d %.3v…, want %d %.3v…", len(got), got, len(want), want)
	}
	if m, err := s.Missing(ctx, "nothing", 1, "", 10); err != nil || m.Known != 0 || m.Missing != 0 || len(m.Records) != 0 {
		t.Errorf("Missing of an unknown resource: %+v, %v", m, err)
	}
}

// testWatchFrom: the first complete cycle sets the resource's WatchFrom;
// later ones do not move it.
func testWatchFrom(t *testing.T, b Backend) {
	s := b.Open(t)
	if st := state(t, s, "contacts"); st.Watching {
		t.Fatalf("a resource never completed is watching: %+v", st)
	}
	cycle(t, s, "contacts", []string{"a"}, cursor.Finish{WatchFrom: t0})
	cycle(t, s, "contacts", []string{"a"}, cursor.Finish{WatchFrom: t0.Add(time.Hour)})
	if st := state(t, s, "contacts"); !st.Watching || !st.WatchFrom.Equal(t0) {
		t.Errorf("state %+v, want watching from %v", st, t0)
	}
	cycle(t, s, "deals", nil, cursor.Finish{}) // from the beginning
	st := state(t, s, "deals")
	if !st.Watching || !st.WatchFrom.IsZero() {
		t.Errorf("state %+v, want watching from the beginning (the zero time)", st)
	}
	rs, err := s.Resources(context.Background())
	if err != nil || len(rs) != 2 || !rs[0].Watching || !rs[0].WatchFrom.Equal(t0) || !rs[1].Watching {
		t.Errorf("Resources = %+v, %v; want both watching, contacts from %v", rs, err, t0)
	}
}

// every returns the even (from 0) or odd (from 1) elements of ids.
func every(ids []string, from int) []string {
	var out []string
	for i := from; i < len(ids); i += 2 {
		out = append(out, ids[i])
	}
	return out
}

func testHeldDeletesClearOnNextCycle(t *testing.T, b Backend) {
	s := b.Open(t)
	all := ids("c", 10)
	cycle(t, s, "contacts", all, cursor.Finish{})
	res := cycle(t, s, "contacts", all[:4], cursor.Finish{Snapshot: true, DeleteGuard: 0.5})
	if res.HeldBack != 6 || res.Deleted != 0 {
		t.Fatalf("result = %+v, want 6 held back", res)
	}
	if st := state(t, s, "contacts"); st.HeldDeletes != 6 || st.Known != 10 {
		t.Errorf("state = %+v, want 6 held, 10 known", st)
	}
	if evs := allEvents(t, s, cursor.EventFilter{}); len(evs) != 0 {
		t.Errorf("held cycle wrote %d events", len(evs))
	}
	cycle(t, s, "contacts", all, cursor.Finish{Snapshot: true, DeleteGuard: 0.5})
	if st := state(t, s, "contacts"); st.HeldDeletes != 0 || st.Known != 10 || st.Completed != 3 {
		t.Errorf("state = %+v, want held cleared, 10 known, 3 completed", st)
	}
}

func testWatermark(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	start := t0.Add(-24 * time.Hour)
	lease := hold(t, s, cursor.ResourceLease("contacts"))

	for range 2 {
		if err := s.InitResource(ctx, "contacts", start); err != nil {
			t.Fatal(err)
		}
	}
	if st := state(t, s, "contacts"); !st.Watermark.Equal(start) || st.Cycle != 0 {
		t.Fatalf("after init: %+v, want watermark %v", st, start)
	}
	finishAt := func(cycle int64, wm time.Time) func() error {
		return func() error {
			_, err := s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: cycle, Lease: lease, Watermark: wm})
			return err
		}
	}
	steps := []struct {
		name string
		do   func() error
		want time.Time
	}{
		{"init again with another start", func() error { return s.InitResource(ctx, "contacts", t0) }, start},
		{"finish forward", finishAt(1, t0), t0},
		{"init after a complete cycle", func() error { return s.InitResource(ctx, "contacts", start.Add(time.Hour)) }, t0},
		{"page does not move it", func() error {
			return s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: 2, Lease: lease, Records: []cursor.SeenRecord{rec("1", t0.Add(time.Hour))}})
		}, t0},
		{"finish backwards", finishAt(2, t0.Add(-time.Minute)), t0},
		{"finish with no watermark", finishAt(3, time.Time{}), t0},
		{"finish forward again", finishAt(4, t0.Add(time.Second)), t0.Add(time.Second)},
		{"reset backwards", func() error { return s.ResetResource(ctx, "contacts", start) }, start},
		{"reset forgets", func() error { return s.ResetResource(ctx, "contacts", time.Time{}) }, time.Time{}},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := state(t, s, "contacts").Watermark; !got.Equal(step.want) {
			t.Errorf("%s: watermark = %v, want %v", step.name, got, step.want)
		}
	}
	if st := state(t, s, "contacts"); st.Known != 1 || st.Completed != 4 {
		t.Errorf("state = %+v, want reset to keep the record", st)
	}
}

// beginCycles begins n cycles of resource and checks they are numbered
// from first on.
func beginCycles(t *testing.T, s cursor.Store, resource string, first int64, n int) {
	t.Helper()
	lease := hold(t, s, cursor.ResourceLease(resource))
	for want := first; want < first+int64(n); want++ {
		if got, err := s.BeginCycle(context.Background(), resource, lease); err != nil || got != want {
			t.Fatalf("BeginCycle(%s) = %d, %v; want %d", resource, got, err, want)
		}
	}
}

func testBeginCycleCounts(t *testing.T, b Backend) {
	s := b.Open(t)
	beginCycles(t, s, "contacts", 1, 3)
	beginCycles(t, s, "deals", 1, 1)
	if st := state(t, s, "contacts"); st.Cycle != 3 || st.Completed != 0 {
		t.Errorf("state = %+v, want cycle 3, none completed", st)
	}
	rs, err := s.Resources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Resource != "contacts" || rs[1].Resource != "deals" || rs[1].Cycle != 1 {
		t.Errorf("Resources = %+v", rs)
	}
	if st := state(t, s, "unknown"); st != (cursor.ResourceState{Resource: "unknown"}) {
		t.Errorf("state of an unknown resource = %+v, want zero", st)
	}
}

// testBeginCycleCountsAfterReopen: no two cycles share a number, across
// restarts either.
func testBeginCycleCountsAfterReopen(t *testing.T, b Backend) {
	s := b.Open(t)
	beginCycles(t, s, "contacts", 1, 3)
	s.Close()
	s = b.reopen(t, s)
	beginCycles(t, s, "contacts", 4, 1)
	if st := state(t, s, "contacts"); st.Cycle != 4 || st.Completed != 0 {
		t.Errorf("state after reopen = %+v", st)
	}
}

func testReopenKeepsData(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	cycle(t, s, "contacts", []string{"1", "2"}, cursor.Finish{Watermark: t0, Now: t0.Add(time.Hour)})
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1, Events: []cursor.Event{event("contacts", "e1", "contact.created")}})
	want := state(t, s, "contacts")
	leases, err := s.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = b.reopen(t, s)
	if got := state(t, s, "contacts"); got != want {
		t.Errorf("state after reopen = %+v, want %+v", got, want)
	}
	seen, err := s.Seen(ctx, "contacts", []string{"1", "2", "3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen["1"] != (cursor.Seen{Updated: t0, Hash: "h-1"}) {
		t.Errorf("seen after reopen = %v", seen)
	}
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{})); !reflect.DeepEqual(got, []string{"e1"}) {
		t.Errorf("events after reopen = %v", got)
	}
	if got, err := s.Leases(ctx); err != nil || !reflect.DeepEqual(got, leases) {
		t.Errorf("leases after reopen = %+v, %v; want %+v", got, err, leases)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
	if want.Watermark != t0 || want.Completed != 1 || want.Cycle != 1 || want.Known != 2 || !want.LastComplete.Equal(t0.Add(time.Hour)) {
		t.Errorf("state = %+v", want)
	}
}

func testFailedTransactionWritesNothing(t *testing.T, b Backend) {
	ctx := context.Background()

	t.Run("bad event at the end of a page", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		err := s.CommitPage(ctx, cursor.Page{
			Resource: "contacts", Cycle: 1, Lease: hold(t, s, cursor.ResourceLease("contacts")),
			Records: []cursor.SeenRecord{rec("1", t0), rec("2", t0)},
			Touch:   []string{"1"},
			Events:  []cursor.Event{event("contacts", "a", "contact.created"), event("contacts", "", "contact.created")},
		})
		if err == nil || !strings.Contains(err.Error(), "commit page of contacts") {
			t.Fatalf("error = %v, want a commit page error", err)
		}
		assertEmpty(t, s, "contacts")
		// The failed page consumed no seq.
		commit(t, s, cursor.Page{Resource: "contacts", Events: []cursor.Event{event("contacts", "b", "x.y")}})
		if last, _ := s.LastSeq(ctx); last != 1 {
			t.Errorf("LastSeq = %d, want 1", last)
		}
	})

	t.Run("canceled during snapshot deletes", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		// Seen by cycle 1, missed by cycle 2: cycle 3 deletes them.
		cycle(t, s, "contacts", ids("c", 1200), cursor.Finish{Watermark: t0, Snapshot: true, DeleteGuard: 1})
		cycle(t, s, "contacts", nil, cursor.Finish{Watermark: t0, Snapshot: true, DeleteGuard: 1})
		before := state(t, s, "contacts")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		calls := 0
		_, err := s.FinishCycle(ctx, cursor.Finish{
			Resource: "contacts", Cycle: 3, Lease: hold(t, s, cursor.ResourceLease("contacts")),
			Snapshot: true, DeleteGuard: 1, Watermark: t0.Add(time.Hour),
			Deleted: func(id string, _ cursor.Seen) cursor.Event {
				if calls++; calls == 700 { // past the first chunk
					cancel()
				}
				return event("contacts", "del-"+id, "contact.deleted")
			},
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		if after := state(t, s, "contacts"); after != before {
			t.Errorf("state = %+v, want unchanged %+v", after, before)
		}
		if evs := allEvents(t, s, cursor.EventFilter{}); len(evs) != 0 {
			t.Errorf("outbox holds %d events after a failed finish", len(evs))
		}
	})

	t.Run("canceled before commit", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		lease := hold(t, s, cursor.ResourceLease("contacts"))
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: 1, Lease: lease,
			Records: []cursor.SeenRecord{rec("1", t0)}, Events: []cursor.Event{event("contacts", "a", "x.y")}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		assertEmpty(t, s, "contacts")
	})

	t.Run("closed store", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		lease := hold(t, s, cursor.ResourceLease("contacts"))
		s.Close()
		if err := s.CommitPage(ctx, cursor.Page{Resource: "contacts", Lease: lease, Records: []cursor.SeenRecord{rec("1", t0)}}); err == nil {
			t.Error("CommitPage on a closed store succeeded")
		}
		if _, err := s.BeginCycle(ctx, "contacts", lease); err == nil {
			t.Error("BeginCycle on a closed store succeeded")
		}
	})
}

func assertEmpty(t *testing.T, s cursor.Store, resource string) {
	t.Helper()
	if st := state(t, s, resource); st.Known != 0 {
		t.Errorf("%d records written by a failed transaction", st.Known)
	}
	if last, _ := s.LastSeq(context.Background()); last != 0 {
		t.Errorf("LastSeq = %d after a failed transaction, want 0", last)
	}
}

func testSeenManyIDs(t *testing.T, b Backend) {
	s := b.Open(t)
	stored := ids("r", 3000)
	cycle(t, s, "contacts", stored[:2500], cursor.Finish{})
	asked := append(append([]string{}, stored[1000:]...), "other", `quote"d`, "")
	seen, err := s.Seen(context.Background(), "contacts", asked)
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1500 {
		t.Errorf("got %d seen, want 1500", len(seen))
	}
	if _, ok := seen[stored[2499]]; !ok {
		t.Errorf("missing %s", stored[2499])
	}
	if _, ok := seen[stored[2500]]; ok {
		t.Errorf("unexpected %s", stored[2500])
	}
	if got, _ := s.Seen(context.Background(), "deals", stored[:10]); len(got) != 0 {
		t.Errorf("another resource sees %d", len(got))
	}
}

// testConcurrentWriters: resources polled at once, each under its own
// lease, with readers alongside, lose nothing.
func testConcurrentWriters(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	const writers, pages, perPage = 8, 10, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for w := range writers {
		resource := fmt.Sprintf("r%d", w)
		lease := hold(t, s, cursor.ResourceLease(resource))
		wg.Go(func() {
			for range pages {
				n, err := s.BeginCycle(ctx, resource, lease)
				if err != nil {
					errs <- err
					return
				}
				p := cursor.Page{Resource: resource, Cycle: n, Lease: lease}
				for i := range perPage {
					id := fmt.Sprintf("%d-%d", n, i)
					p.Records = append(p.Records, rec(id, t0))
					p.Events = append(p.Events, event(resource, resource+"-"+id, "contact.created"))
				}
				if err := s.CommitPage(ctx, p); err != nil {
					errs <- err
					return
				}
				if _, err := s.FinishCycle(ctx, cursor.Finish{Resource: resource, Cycle: n, Lease: lease, Watermark: t0}); err != nil {
					errs <- err
					return
				}
			}
		})
		wg.Go(func() { // a reader alongside
			for range pages {
				if _, err := s.Resources(ctx); err != nil {
					errs <- err
					return
				}
				if err := s.EachEvent(ctx, cursor.EventFilter{Resource: resource}, func(cursor.Event) error { return nil }); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if last, _ := s.LastSeq(ctx); last != writers*pages*perPage {
		t.Errorf("LastSeq = %d, want %d", last, writers*pages*perPage)
	}
	for w := range writers {
		if st := state(t, s, fmt.Sprintf("r%d", w)); st.Known != pages*perPage || st.Completed != pages {
			t.Errorf("r%d: %+v", w, st)
		}
	}
}
