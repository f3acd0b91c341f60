package cursor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"modernc.org/sqlite"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func event(resource, id, typ string) Event {
	return Event{
		ID: id, Type: typ, Resource: resource, Source: "keap", Object: "contact",
		ObjectID: id, OccurredAt: t0, DetectedAt: t0.Add(time.Minute),
		Data: json.RawMessage(`{"id":"` + id + `"}`),
	}
}

func rec(id string, updated time.Time) SeenRecord {
	return SeenRecord{ID: id, Seen: Seen{Updated: updated, Hash: "h-" + id}}
}

// cycle runs one complete cycle that sees ids, as the poller does.
func cycle(t testing.TB, s *SQLite, resource string, ids []string, f Finish) FinishResult {
	t.Helper()
	ctx := context.Background()
	n, err := s.BeginCycle(ctx, resource)
	if err != nil {
		t.Fatal(err)
	}
	p := Page{Resource: resource, Cycle: n}
	for _, id := range ids {
		p.Records = append(p.Records, rec(id, t0))
	}
	if err := s.CommitPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	f.Resource, f.Cycle = resource, n
	if f.Deleted == nil {
		f.Deleted = func(id string, _ Seen) Event { return event(resource, "del-"+id, "contact.deleted") }
	}
	res, err := s.FinishCycle(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

func allEvents(t testing.TB, s *SQLite, f EventFilter) []Event {
	t.Helper()
	var out []Event
	if err := s.EachEvent(context.Background(), f, func(e Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func eventIDs(evs []Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func state(t testing.TB, s *SQLite, resource string) ResourceState {
	t.Helper()
	st, err := s.ResourceState(context.Background(), resource)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOpenReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	cycle(t, s, "contacts", []string{"1", "2"}, Finish{Watermark: t0, Now: t0.Add(time.Hour)})
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: 1, Events: []Event{event("contacts", "e1", "contact.created")}}); err != nil {
		t.Fatal(err)
	}
	want := state(t, s, "contacts")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for range 2 { // reopening applies no migration twice
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if got := state(t, s, "contacts"); got != want {
			t.Errorf("state after reopen = %+v, want %+v", got, want)
		}
		seen, err := s.Seen(ctx, "contacts", []string{"1", "2", "3"})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || seen["1"] != (Seen{Updated: t0, Hash: "h-1"}) {
			t.Errorf("seen after reopen = %v", seen)
		}
		if got := eventIDs(allEvents(t, s, EventFilter{})); !reflect.DeepEqual(got, []string{"e1"}) {
			t.Errorf("events after reopen = %v", got)
		}
		if err := s.Ping(ctx); err != nil {
			t.Error(err)
		}
		s.Close()
	}
	if want.Watermark != t0 || want.Completed != 1 || want.Cycle != 1 || want.Known != 2 || !want.LastComplete.Equal(t0.Add(time.Hour)) {
		t.Errorf("state = %+v", want)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
		is      error
	}{
		{
			name: "newer schema",
			prepare: func(t *testing.T, path string) {
				s, err := Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				rawExec(t, path, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1))
			},
			want: fmt.Sprintf("file has schema version %d, this pollhook knows up to %d", len(migrations)+1, len(migrations)),
			is:   ErrSchemaTooNew,
		},
		{
			name:    "another application's database",
			prepare: func(t *testing.T, path string) { rawExec(t, path, "CREATE TABLE users (id INTEGER)") },
			want:    "not a pollhook state store",
		},
		{
			name: "not a database",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 100)), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "file is not a database",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.prepare(t, path)
			s, err := Open(ctx, path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "open state store "+path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to name the file and say %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func rawExec(t *testing.T, path, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

func TestCommitPageUpsertsAndDedupesEvents(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	err := s.CommitPage(ctx, Page{
		Resource: "contacts", Cycle: 1,
		Records: []SeenRecord{rec("1", t0), rec("2", t0)},
		Events:  []Event{event("contacts", "a", "contact.created"), event("contacts", "b", "contact.created")},
	})
	if err != nil {
		t.Fatal(err)
	}
	changed := event("contacts", "a", "contact.updated")
	changed.Data = json.RawMessage(`{"changed":true}`)
	err = s.CommitPage(ctx, Page{
		Resource: "contacts", Cycle: 2,
		Records: []SeenRecord{{ID: "1", Seen: Seen{Updated: t0.Add(time.Hour), Hash: "new"}}},
		Events:  []Event{event("contacts", "c", "contact.updated"), changed, event("contacts", "c", "contact.updated")},
	})
	if err != nil {
		t.Fatal(err)
	}

	seen, err := s.Seen(ctx, "contacts", []string{"1", "2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Seen{"1": {Updated: t0.Add(time.Hour), Hash: "new"}, "2": {Updated: t0, Hash: "h-2"}}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("seen = %v, want %v", seen, want)
	}
	evs := allEvents(t, s, EventFilter{})
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

func TestCommitPageTouchesOnlyExisting(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	cycle(t, s, "contacts", []string{"1", "2"}, Finish{})
	n, _ := s.BeginCycle(ctx, "contacts")
	// "1" was skipped (bad date) but seen; "9" was never stored.
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: n, Touch: []string{"1", "9"}}); err != nil {
		t.Fatal(err)
	}
	res, err := s.FinishCycle(ctx, Finish{
		Resource: "contacts", Cycle: n, Snapshot: true, DeleteGuard: 1,
		Deleted: func(id string, _ Seen) Event { return event("contacts", "del-"+id, "contact.deleted") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res != (FinishResult{Known: 2, Deleted: 1}) {
		t.Errorf("result = %+v, want only the untouched record deleted", res)
	}
	seen, _ := s.Seen(ctx, "contacts", []string{"1", "2", "9"})
	if r, ok := seen["1"]; !ok || r.Deleted || len(seen) != 2 || !seen["2"].Deleted {
		t.Errorf("seen = %v, want the touched record kept, the other a tombstone, and no record made for 9", seen)
	}
}

func TestFinishCycleSnapshotDeletes(t *testing.T) {
	tests := []struct {
		name      string
		before    []string
		now       []string
		guard     float64
		wantGone  []string
		wantHeld  int64
		otherKept bool
	}{
		{"some gone", []string{"a", "b", "c", "d", "e"}, []string{"a", "c", "e"}, 0.5, []string{"b", "d"}, 0, true},
		{"exactly the guard", []string{"a", "b", "c", "d"}, []string{"a", "b"}, 0.5, []string{"c", "d"}, 0, true},
		{"over the guard", []string{"a", "b", "c", "d"}, []string{"a"}, 0.5, nil, 3, true},
		{"empty list held", []string{"a", "b"}, nil, 0.5, nil, 2, true},
		{"guard 1 allows all", []string{"a", "b"}, nil, 1, []string{"a", "b"}, 0, true},
		{"nothing gone", []string{"a"}, []string{"a"}, 0, nil, 0, true},
		{"many chunks", ids("x", 1203), ids("x", 1)[:1], 1, ids("x", 1203)[1:], 0, true},
		{"kept and gone interleaved over chunks", ids("y", 1500), every(ids("y", 1500), 0), 1, every(ids("y", 1500), 1), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			cycle(t, s, "contacts", tt.before, Finish{})
			// Another resource's records are never touched.
			cycle(t, s, "deals", []string{"a", "b"}, Finish{})

			calls := map[string]int{}
			res := cycle(t, s, "contacts", tt.now, Finish{
				Snapshot: true, DeleteGuard: tt.guard,
				Deleted: func(id string, last Seen) Event {
					calls[id]++
					if last != (Seen{Updated: t0, Hash: "h-" + id}) {
						t.Errorf("Deleted(%q) got last %+v", id, last)
					}
					return event("contacts", "del-"+id, "contact.deleted")
				},
			})

			want := FinishResult{Known: int64(len(tt.before)), Deleted: int64(len(tt.wantGone)), HeldBack: tt.wantHeld}
			if res != want {
				t.Errorf("result = %+v, want %+v", res, want)
			}
			for _, id := range tt.wantGone {
				if calls[id] != 1 {
					t.Errorf("Deleted(%q) called %d times, want 1", id, calls[id])
				}
			}
			if len(calls) != len(tt.wantGone) {
				t.Errorf("Deleted called for %d ids, want %d", len(calls), len(tt.wantGone))
			}
			evs := allEvents(t, s, EventFilter{Type: "*.deleted"})
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

// every returns the even (from 0) or odd (from 1) elements of ids.
func every(ids []string, from int) []string {
	var out []string
	for i := from; i < len(ids); i += 2 {
		out = append(out, ids[i])
	}
	return out
}

func TestHeldDeletesClearOnNextCycle(t *testing.T) {
	s := openStore(t)
	all := ids("c", 10)
	cycle(t, s, "contacts", all, Finish{})
	res := cycle(t, s, "contacts", all[:4], Finish{Snapshot: true, DeleteGuard: 0.5})
	if res.HeldBack != 6 || res.Deleted != 0 {
		t.Fatalf("result = %+v, want 6 held back", res)
	}
	if st := state(t, s, "contacts"); st.HeldDeletes != 6 || st.Known != 10 {
		t.Errorf("state = %+v, want 6 held, 10 known", st)
	}
	if evs := allEvents(t, s, EventFilter{}); len(evs) != 0 {
		t.Errorf("held cycle wrote %d events", len(evs))
	}
	cycle(t, s, "contacts", all, Finish{Snapshot: true, DeleteGuard: 0.5})
	if st := state(t, s, "contacts"); st.HeldDeletes != 0 || st.Known != 10 || st.Completed != 3 {
		t.Errorf("state = %+v, want held cleared, 10 known, 3 completed", st)
	}
}

func TestWatermark(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	start := t0.Add(-24 * time.Hour)

	for range 2 {
		if err := s.InitResource(ctx, "contacts", start); err != nil {
			t.Fatal(err)
		}
	}
	if st := state(t, s, "contacts"); !st.Watermark.Equal(start) || st.Cycle != 0 {
		t.Fatalf("after init: %+v, want watermark %v", st, start)
	}
	steps := []struct {
		name string
		do   func() error
		want time.Time
	}{
		{"init again with another start", func() error { return s.InitResource(ctx, "contacts", t0) }, start},
		{"finish forward", func() error {
			_, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: 1, Watermark: t0})
			return err
		}, t0},
		{"init after a complete cycle", func() error { return s.InitResource(ctx, "contacts", start.Add(time.Hour)) }, t0},
		{"page does not move it", func() error {
			return s.CommitPage(ctx, Page{Resource: "contacts", Cycle: 2, Records: []SeenRecord{rec("1", t0.Add(time.Hour))}})
		}, t0},
		{"finish backwards", func() error {
			_, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: 2, Watermark: t0.Add(-time.Minute)})
			return err
		}, t0},
		{"finish with no watermark", func() error { _, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: 3}); return err }, t0},
		{"finish forward again", func() error {
			_, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: 4, Watermark: t0.Add(time.Second)})
			return err
		}, t0.Add(time.Second)},
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

func TestBeginCycleCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		if got, err := s.BeginCycle(ctx, "contacts"); err != nil || got != want {
			t.Fatalf("BeginCycle = %d, %v; want %d", got, err, want)
		}
	}
	if got, _ := s.BeginCycle(ctx, "deals"); got != 1 {
		t.Errorf("first cycle of another resource = %d, want 1", got)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, _ := s.BeginCycle(ctx, "contacts"); got != 4 {
		t.Errorf("cycle after reopen = %d, want 4", got)
	}
	if st := state(t, s, "contacts"); st.Cycle != 4 || st.Completed != 0 {
		t.Errorf("state = %+v", st)
	}
	rs, err := s.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Resource != "contacts" || rs[1].Resource != "deals" || rs[1].Cycle != 1 {
		t.Errorf("Resources = %+v", rs)
	}
	if st := state(t, s, "unknown"); st != (ResourceState{Resource: "unknown"}) {
		t.Errorf("state of an unknown resource = %+v, want zero", st)
	}
}

func TestFailedTransactionWritesNothing(t *testing.T) {
	ctx := context.Background()

	t.Run("bad event at the end of a page", func(t *testing.T) {
		s := openStore(t)
		err := s.CommitPage(ctx, Page{
			Resource: "contacts", Cycle: 1,
			Records: []SeenRecord{rec("1", t0), rec("2", t0)},
			Touch:   []string{"1"},
			Events:  []Event{event("contacts", "a", "contact.created"), event("contacts", "", "contact.created")},
		})
		if err == nil || !strings.Contains(err.Error(), "commit page of contacts") {
			t.Fatalf("error = %v, want a commit page error", err)
		}
		assertEmpty(t, s, "contacts")
		// The failed page consumed no seq.
		if err := s.CommitPage(ctx, Page{Resource: "contacts", Events: []Event{event("contacts", "b", "x.y")}}); err != nil {
			t.Fatal(err)
		}
		if last, _ := s.LastSeq(ctx); last != 1 {
			t.Errorf("LastSeq = %d, want 1", last)
		}
	})

	t.Run("canceled during snapshot deletes", func(t *testing.T) {
		s := openStore(t)
		cycle(t, s, "contacts", ids("c", 1200), Finish{Watermark: t0})
		before := state(t, s, "contacts")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		calls := 0
		_, err := s.FinishCycle(ctx, Finish{
			Resource: "contacts", Cycle: 2, Snapshot: true, DeleteGuard: 1, Watermark: t0.Add(time.Hour),
			Deleted: func(id string, _ Seen) Event {
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
		if evs := allEvents(t, s, EventFilter{}); len(evs) != 0 {
			t.Errorf("outbox holds %d events after a failed finish", len(evs))
		}
	})

	t.Run("canceled before commit", func(t *testing.T) {
		s := openStore(t)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: 1, Records: []SeenRecord{rec("1", t0)}, Events: []Event{event("contacts", "a", "x.y")}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
		assertEmpty(t, s, "contacts")
	})

	t.Run("closed store", func(t *testing.T) {
		s := openStore(t)
		s.Close()
		if err := s.CommitPage(ctx, Page{Resource: "contacts", Records: []SeenRecord{rec("1", t0)}}); err == nil {
			t.Error("CommitPage on a closed store succeeded")
		}
		if _, err := s.BeginCycle(ctx, "contacts"); err == nil {
			t.Error("BeginCycle on a closed store succeeded")
		}
	})
}

func assertEmpty(t *testing.T, s *SQLite, resource string) {
	t.Helper()
	if st := state(t, s, resource); st.Known != 0 {
		t.Errorf("%d records written by a failed transaction", st.Known)
	}
	if last, _ := s.LastSeq(context.Background()); last != 0 {
		t.Errorf("LastSeq = %d after a failed transaction, want 0", last)
	}
}

func TestSeenManyIDs(t *testing.T) {
	s := openStore(t)
	stored := ids("r", 3000)
	cycle(t, s, "contacts", stored[:2500], Finish{})
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

func TestEachEvent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	var page []Event
	add := func(resource, id, typ string, detected time.Time) {
		e := event(resource, id, typ)
		e.DetectedAt = detected
		page = append(page, e)
	}
	add("contacts", "1", "contact.created", t0)
	add("deals", "2", "deal.created", t0)
	add("contacts", "3", "contact.updated", t0.Add(time.Hour))
	add("contacts", "4", "contact.deleted", t0.Add(2*time.Hour))
	add("deals", "5", "deal.deleted", t0.Add(3*time.Hour))
	add("contacts", "6", "contactx.created", t0.Add(3*time.Hour))
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Events: page}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    EventFilter
		want []string
	}{
		{"all", EventFilter{}, []string{"1", "2", "3", "4", "5", "6"}},
		{"resource", EventFilter{Resource: "deals"}, []string{"2", "5"}},
		{"exact type", EventFilter{Type: "contact.created"}, []string{"1"}},
		{"noun glob", EventFilter{Type: "contact.*"}, []string{"1", "3", "4"}},
		{"verb glob", EventFilter{Type: "*.deleted"}, []string{"4", "5"}},
		{"everything glob", EventFilter{Type: "*.*"}, []string{"1", "2", "3", "4", "5", "6"}},
		{"class glob", EventFilter{Type: "contact.[cu]*"}, []string{"1", "3"}},
		{"since", EventFilter{Since: t0.Add(time.Hour)}, []string{"3", "4", "5", "6"}},
		{"after seq", EventFilter{AfterSeq: 4}, []string{"5", "6"}},
		{"limit", EventFilter{Limit: 2}, []string{"1", "2"}},
		{"glob with limit", EventFilter{Type: "*.deleted", Limit: 1}, []string{"4"}},
		{"combined", EventFilter{Resource: "contacts", Type: "contact.*", Since: t0.Add(time.Minute), AfterSeq: 3, Limit: 5}, []string{"4"}},
		{"none", EventFilter{Resource: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventIDs(allEvents(t, s, tt.f)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("bad glob", func(t *testing.T) {
		err := s.EachEvent(ctx, EventFilter{Type: "contact.[a"}, func(Event) error { return nil })
		if err == nil {
			t.Error("want an error for a malformed pattern")
		}
	})
	t.Run("stops at fn's error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.EachEvent(ctx, EventFilter{}, func(Event) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("err = %v after %d calls, want stop after 2", err, n)
		}
	})
}

func TestEachEventStreamsManyWhileWriting(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const n = 1000
	page := Page{Resource: "contacts"}
	want := ids("e", n)
	for _, id := range want {
		page.Events = append(page.Events, event("contacts", id, "contact.created"))
	}
	if err := s.CommitPage(ctx, page); err != nil {
		t.Fatal(err)
	}
	var last int64
	count := 0
	err := s.EachEvent(ctx, EventFilter{}, func(e Event) error {
		if e.Seq <= last {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
		if e.ID != want[count] {
			t.Fatalf("event %d is %s, want %s: the outbox keeps the page's order", count, e.ID, want[count])
		}
		count++
		// fn may use the store, reads and writes, without deadlock.
		if _, err := s.Seen(ctx, "contacts", []string{e.ObjectID}); err != nil {
			return err
		}
		if count%100 == 0 {
			return s.CommitPage(ctx, Page{Resource: "deals", Records: []SeenRecord{rec(e.ID, t0)}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("streamed %d events, want %d", count, n)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	cycle(t, s, "contacts", []string{"1", "2"}, Finish{Watermark: t0})
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Events: []Event{event("contacts", "a", "contact.created")}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup", "copy.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	// Writes after the backup do not reach the copy.
	cycle(t, s, "contacts", []string{"1", "2", "3"}, Finish{Watermark: t0.Add(time.Hour)})

	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st := state(t, c, "contacts"); st.Known != 2 || !st.Watermark.Equal(t0) || st.Completed != 1 {
		t.Errorf("copy state = %+v", st)
	}
	if got := eventIDs(allEvents(t, c, EventFilter{})); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("copy events = %v", got)
	}

	err = s.Backup(ctx, path)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("backup over an existing file: %v, want os.ErrExist", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const writers, pages, perPage = 8, 10, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers*2)
	for w := range writers {
		resource := fmt.Sprintf("r%d", w)
		wg.Go(func() {
			for range pages {
				n, err := s.BeginCycle(ctx, resource)
				if err != nil {
					errs <- err
					return
				}
				p := Page{Resource: resource, Cycle: n}
				for i := range perPage {
					id := fmt.Sprintf("%d-%d", n, i)
					p.Records = append(p.Records, rec(id, t0))
					p.Events = append(p.Events, event(resource, resource+"-"+id, "contact.created"))
				}
				if err := s.CommitPage(ctx, p); err != nil {
					errs <- err
					return
				}
				if _, err := s.FinishCycle(ctx, Finish{Resource: resource, Cycle: n, Watermark: t0}); err != nil {
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
				if err := s.EachEvent(ctx, EventFilter{Resource: resource}, func(Event) error { return nil }); err != nil {
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

func TestTimes(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		in, want time.Time
	}{
		{time.Time{}, time.Time{}},
		{t0, t0},
		{t0.In(paris), t0},
		{time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), maxTime},
		{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), minTime},
	}
	for _, tt := range tests {
		got := fromNanos(nanos(tt.in))
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("round trip of %v = %v, want %v in UTC", tt.in, got, tt.want)
		}
	}
	if !(nanos(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) > nanos(t0)) {
		t.Error("a far-future time does not sort after today")
	}
}

func TestPingWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatalf("PingWrite on a writable store: %v", err)
	}
	// Another process holds the write lock: reads still work, the write
	// probe fails (here at its deadline, before the busy timeout).
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Ping(short); err != nil {
		t.Fatalf("Ping (a read) while another holds the write lock: %v", err)
	}
	if err := s.PingWrite(short, t0); err == nil {
		t.Fatal("PingWrite succeeded while another process held the write lock")
	}
	conn.ExecContext(ctx, "ROLLBACK")
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatalf("PingWrite after the lock was released: %v", err)
	}
}

// TestWriteErrFullDisk: on a full disk the one-row probe still commits
// (its row exists already) while a page of records cannot; WriteErr says
// so until a page of that resource commits again. The disk is made full
// with max_page_count, which fails a growing write with SQLITE_FULL as a
// full file system does.
func TestWriteErrFullDisk(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatal(err)
	}
	cycle(t, s, "contacts", ids("c", 10), Finish{})
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr on a healthy store: %v", err)
	}
	restore := diskFull(t, s)
	big := Page{Resource: "contacts", Cycle: 2}
	for _, id := range ids("big", 2000) {
		r := rec(id, t0)
		r.Hash = strings.Repeat("h", 200)
		big.Records = append(big.Records, r)
	}
	if err := s.CommitPage(ctx, big); err == nil || !storageError(err) {
		t.Fatalf("CommitPage past max_page_count: %v, want SQLITE_FULL", err)
	}
	if err := s.PingWrite(ctx, t0.Add(time.Second)); err != nil {
		t.Fatalf("the probe failed too, so this test shows nothing: %v", err)
	}
	err := s.WriteErr()
	if err == nil || !strings.Contains(err.Error(), "commit of resource contacts failing since") || !strings.Contains(err.Error(), "full") {
		t.Fatalf("WriteErr after a failed page = %v, want the page's full-disk error", err)
	}
	// A small page of another resource commits: it says nothing of the
	// failed one.
	if err := s.CommitPage(ctx, Page{Resource: "contacts2", Cycle: 1, Records: []SeenRecord{rec("x", t0)}}); err != nil {
		t.Logf("a one-record page fails too: %v", err)
	}
	if s.WriteErr() == nil {
		t.Fatal("a page of another resource cleared the failure of contacts")
	}
	// An error that is not about storage leaves it as it was.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CommitPage(cancelled, big); err == nil {
		t.Fatal("CommitPage with a cancelled context succeeded")
	}
	if s.WriteErr() == nil {
		t.Fatal("a cancelled commit cleared the failure")
	}
	// Space returns: the next page of contacts commits and clears it.
	restore()
	if err := s.CommitPage(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr after the page committed: %v", err)
	}
}

// TestWriteErrForget: the failure of a resource taken out of the config,
// or of a deleted destination, would never clear; they are forgotten.
// And of two writes of one kind, the later commit counts, whatever order
// their outcomes are noted in.
func TestWriteErrForget(t *testing.T) {
	s := openStore(t)
	full := &sqlite.Error{}
	if !errors.As(fullErr(t, s), &full) {
		t.Fatal("no SQLite error")
	}
	h := &s.health
	res, dest := writeKind{writeCommit, "contacts"}, writeKind{writeFanout, "crm"}
	h.note(h.next(), full, res, dest)
	s.RetainResourceWrites([]string{"deals"})
	if err := s.WriteErr(); err == nil || strings.Contains(err.Error(), "contacts") || !strings.Contains(err.Error(), "fan-out to destination crm") {
		t.Fatalf("after the resource went: %v, want only the destination's failure", err)
	}
	if _, err := s.EnsureDestination(context.Background(), "crm", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDestination(context.Background(), "crm"); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("after the destination went: %v", err)
	}

	older, newer := h.next(), h.next()
	h.note(newer, full, res)
	h.note(older, nil, res) // committed first, noted last
	if s.WriteErr() == nil {
		t.Fatal("an older success cleared a newer failure")
	}
	h.note(h.next(), nil, res)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("a newer success left %v", err)
	}
}

// fullErr makes a real SQLITE_FULL: a page too large for max_page_count.
func fullErr(t *testing.T, s *SQLite) error {
	t.Helper()
	ctx := context.Background()
	defer diskFull(t, s)()
	big := Page{Resource: "scratch", Cycle: 1}
	for _, id := range ids("big", 2000) {
		big.Records = append(big.Records, rec(id, t0))
	}
	err := s.CommitPage(ctx, big)
	if !storageError(err) {
		t.Fatalf("CommitPage past max_page_count: %v, want SQLITE_FULL", err)
	}
	s.RetainResourceWrites(nil)
	return err
}

// diskFull makes the store's disk full: max_page_count at the current
// size fails a growing write with SQLITE_FULL, as a full file system
// does. The function returned gives the space back.
func diskFull(t *testing.T, s *SQLite) (restore func()) {
	t.Helper()
	ctx := context.Background()
	var pages int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := s.w.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
			t.Fatal(err)
		}
	}
}
