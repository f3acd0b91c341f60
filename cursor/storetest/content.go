package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// contentTests: the content the store keeps of each record (the previous
// version of its next change) and the history events carry.
var contentTests = []test{
	{"ContentKeptWithVersion", testContentKeptWithVersion},
	{"DeletedGetsLastContent", testDeletedGetsLastContent},
	{"DropContent", testDropContent},
	{"FailedPageWritesNoContent", testFailedPageWritesNoContent},
	{"EventHistoryRoundTrip", testEventHistoryRoundTrip},
}

// withContent is rec with a content.
func withContent(id string, updated time.Time, content string) cursor.SeenRecord {
	r := rec(id, updated)
	r.Content = content
	return r
}

// seenOf returns the versions of ids in resource, each with the content
// Contents gives (Seen reads versions only).
func seenOf(t *testing.T, s cursor.Store, resource string, ids ...string) map[string]cursor.Seen {
	t.Helper()
	ctx := context.Background()
	seen, err := s.Seen(ctx, resource, ids)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := s.Contents(ctx, resource, ids)
	if err != nil {
		t.Fatal(err)
	}
	for id, c := range contents {
		v, ok := seen[id]
		if !ok {
			t.Fatalf("Contents gave %s a content, and Seen has no version of it", id)
		}
		v.Content = c
		seen[id] = v
	}
	return seen
}

// testContentKeptWithVersion: a record written with a content reads back
// with it (Contents), exactly; a version written without one keeps the
// content it had (a change in ignored fields); a new content replaces it.
// Contents are per resource, and asked by id like versions.
func testContentKeptWithVersion(t *testing.T, b Backend) {
	s := b.Open(t)
	big := `{"id":"2","notes":"` + strings.Repeat("ünïcødé ✓ ", 10000) + `"}`
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1, Records: []cursor.SeenRecord{
		withContent("1", t0, `{"id":"1","stage":"lead"}`),
		withContent("2", t0, big),
		rec("3", t0), // none kept
	}})
	commit(t, s, cursor.Page{Resource: "deals", Cycle: 1, Records: []cursor.SeenRecord{
		withContent("1", t0, `{"id":"1","amount":5}`),
	}})
	want := map[string]cursor.Seen{
		"1": {Updated: t0, Hash: "h-1", Content: `{"id":"1","stage":"lead"}`},
		"2": {Updated: t0, Hash: "h-2", Content: big},
		"3": {Updated: t0, Hash: "h-3"},
	}
	if got := seenOf(t, s, "contacts", "1", "2", "3", "4"); !reflect.DeepEqual(got, want) {
		t.Fatalf("seen = %.200v, want %.200v", got, want)
	}
	many := append(ids("x", 1500), "1", `quote"d`, "")
	if got, err := s.Contents(context.Background(), "contacts", many); err != nil || len(got) != 1 || got["1"] != want["1"].Content {
		t.Fatalf("Contents of 1503 ids = %.100v, %v; want the one of 1", got, err)
	}

	// 1 changes only in a field the resource ignores: a new version, the
	// same content. 2 changes for real: a new content.
	moved := rec("1", t0.Add(time.Hour))
	moved.Hash, moved.Rev = "h-1b", 0
	changed := withContent("2", t0.Add(time.Hour), `{"id":"2","notes":"short"}`)
	changed.Rev = 1
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 2, Records: []cursor.SeenRecord{moved, changed}})
	want["1"] = cursor.Seen{Updated: t0.Add(time.Hour), Hash: "h-1b", Content: `{"id":"1","stage":"lead"}`}
	want["2"] = cursor.Seen{Updated: t0.Add(time.Hour), Hash: "h-2", Rev: 1, Content: `{"id":"2","notes":"short"}`}
	if got := seenOf(t, s, "contacts", "1", "2", "3"); !reflect.DeepEqual(got, want) {
		t.Fatalf("seen after a second page = %v, want %v", got, want)
	}
	// A snapshot touch moves nothing of a content either.
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 3, Touch: []string{"1", "2"}})
	if got := seenOf(t, s, "contacts", "1", "2", "3"); !reflect.DeepEqual(got, want) {
		t.Fatalf("seen after a touch = %v, want %v", got, want)
	}
	if got := seenOf(t, s, "deals", "1"); got["1"].Content != `{"id":"1","amount":5}` {
		t.Errorf("deals 1 = %+v: another resource's content changed", got["1"])
	}

	if b.Reopen == nil {
		return
	}
	s.Close()
	s = b.Reopen(t, s)
	if got := seenOf(t, s, "contacts", "1", "2", "3"); !reflect.DeepEqual(got, want) {
		t.Errorf("seen after reopen = %v, want %v", got, want)
	}
}

// testDeletedGetsLastContent: a snapshot's delete is built from the last
// version and content of the record; the tombstone keeps no content, and
// a record that comes back starts with its new one.
func testDeletedGetsLastContent(t *testing.T, b Backend) {
	s := b.Open(t)
	lease := hold(t, s, cursor.ResourceLease("contacts"))
	n, err := s.BeginCycle(context.Background(), "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	// More than a backend reads at once (SQLite: 500), some without content.
	all := ids("c", 1200)
	p := cursor.Page{Resource: "contacts", Cycle: n}
	for i, id := range all {
		r := rec(id, t0)
		if i%5 != 0 {
			r.Content = `{"id":"` + id + `"}`
		}
		p.Records = append(p.Records, r)
	}
	commit(t, s, p)
	finish(t, s, cursor.Finish{Resource: "contacts", Cycle: n, Snapshot: true, DeleteGuard: 1})
	// A snapshot cycle misses all[100:]; the next one confirms the misses.
	if res := cycle(t, s, "contacts", all[:100], cursor.Finish{Snapshot: true, DeleteGuard: 1}); res.Deleted != 0 || res.Missing != 1100 {
		t.Fatalf("first miss = %+v, want 1100 missing and none deleted", res)
	}

	got := map[string]string{}
	res := cycle(t, s, "contacts", all[:100], cursor.Finish{
		Snapshot: true, DeleteGuard: 1,
		Deleted: func(id string, last cursor.Seen) cursor.Event {
			got[id] = last.Content
			e := event("contacts", "del-"+id, "contact.deleted")
			e.Data, e.Previous = json.RawMessage("null"), json.RawMessage(last.Content)
			return e
		},
	})
	if res.Deleted != 1100 || len(got) != 1100 {
		t.Fatalf("deleted %d (%d calls), want 1100", res.Deleted, len(got))
	}
	for i, id := range all[100:] {
		want := `{"id":"` + id + `"}`
		if (100+i)%5 == 0 {
			want = ""
		}
		if got[id] != want {
			t.Fatalf("Deleted(%s) got content %q, want %q", id, got[id], want)
		}
	}
	seen := seenOf(t, s, "contacts", all[99], all[101])
	if r := seen[all[101]]; !r.Deleted || r.Content != "" {
		t.Errorf("tombstone %s = %+v, want deleted and no content", all[101], r)
	}
	if r := seen[all[99]]; r.Deleted || r.Content != `{"id":"`+all[99]+`"}` {
		t.Errorf("record %s seen in the cycle = %+v, want it kept with its content", all[99], r)
	}
	evs := allEvents(t, s, cursor.EventFilter{Type: "*.deleted", Limit: 2})
	if len(evs) != 2 || string(evs[1].Previous) != `{"id":"`+all[101]+`"}` {
		t.Errorf("delete events = %+v, want the last content as previous", evs)
	}

	back := withContent(all[101], t0.Add(time.Hour), `{"id":"back"}`)
	back.Rev = 2
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 9, Records: []cursor.SeenRecord{back}})
	if r := seenOf(t, s, "contacts", all[101])[all[101]]; r.Deleted || r.Content != `{"id":"back"}` || r.Rev != 2 {
		t.Errorf("record back after its delete = %+v, want live with its new content", r)
	}
}

// testDropContent: a finish with DropContent keeps no content of the
// resource's records any more (keep_content: false), and keeps their
// versions; other resources keep theirs.
func testDropContent(t *testing.T, b Backend) {
	s := b.Open(t)
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1, Records: []cursor.SeenRecord{
		withContent("1", t0, `{"id":"1"}`), withContent("2", t0, `{"id":"2"}`),
	}})
	commit(t, s, cursor.Page{Resource: "deals", Cycle: 1, Records: []cursor.SeenRecord{withContent("1", t0, `{"deal":1}`)}})
	finish(t, s, cursor.Finish{Resource: "contacts", Cycle: 1, Watermark: t0, DropContent: true})
	want := map[string]cursor.Seen{"1": {Updated: t0, Hash: "h-1"}, "2": {Updated: t0, Hash: "h-2"}}
	if got := seenOf(t, s, "contacts", "1", "2"); !reflect.DeepEqual(got, want) {
		t.Errorf("seen after DropContent = %v, want %v", got, want)
	}
	if got := seenOf(t, s, "deals", "1"); got["1"].Content != `{"deal":1}` {
		t.Errorf("deals 1 = %+v, want its content kept", got["1"])
	}
	if st := state(t, s, "contacts"); st.Known != 2 || st.Completed != 1 {
		t.Errorf("state = %+v, want 2 known, 1 completed", st)
	}
}

// testFailedPageWritesNoContent: a page that fails writes no content.
func testFailedPageWritesNoContent(t *testing.T, b Backend) {
	s := b.Open(t)
	commit(t, s, cursor.Page{Resource: "contacts", Cycle: 1, Records: []cursor.SeenRecord{withContent("1", t0, `{"v":1}`)}})
	err := s.CommitPage(context.Background(), cursor.Page{
		Resource: "contacts", Cycle: 2, Lease: hold(t, s, cursor.ResourceLease("contacts")),
		Records: []cursor.SeenRecord{withContent("1", t0.Add(time.Hour), `{"v":2}`), withContent("2", t0, `{"v":1}`)},
		Events:  []cursor.Event{event("contacts", "", "contact.updated")},
	})
	if err == nil {
		t.Fatal("a page with an event without id committed")
	}
	want := map[string]cursor.Seen{"1": {Updated: t0, Hash: "h-1", Content: `{"v":1}`}}
	if got := seenOf(t, s, "contacts", "1", "2"); !reflect.DeepEqual(got, want) {
		t.Errorf("seen after a failed page = %v, want %v", got, want)
	}
}

// testEventHistoryRoundTrip: Previous and ChangedFields read back as
// written, from EachEvent, Pending and Fanout's match alike: an unknown
// previous and unknown changed fields (nil) stay unknown, and an update
// that changed no top-level key keeps its empty list.
func testEventHistoryRoundTrip(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	created := event("contacts", "created", "contact.created")
	updated := event("contacts", "updated", "contact.updated")
	updated.Previous = json.RawMessage(`{"id":"updated","stage":"lead","tags":["a"]}`)
	updated.ChangedFields = []string{"stage", "tags"}
	touched := event("contacts", "touched", "contact.updated")
	touched.Previous = json.RawMessage(`{"id":"touched"}`)
	touched.ChangedFields = []string{}
	unknown := event("contacts", "unknown", "contact.updated")
	deleted := event("contacts", "deleted", "contact.deleted")
	deleted.Data, deleted.Previous = json.RawMessage("null"), json.RawMessage(`{"id":"deleted","ü":"✓"}`)
	want := addEvents(t, s, t0, created, updated, touched, unknown, deleted)

	if got := allEvents(t, s, cursor.EventFilter{}); !reflect.DeepEqual(got, want) {
		t.Errorf("EachEvent = %+v\nwant %+v", got, want)
	}
	var matched []cursor.Event
	if _, err := s.Fanout(ctx, "a", func(e cursor.Event) bool { matched = append(matched, e); return true }, t0); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(matched, want) {
		t.Errorf("Fanout's match got %+v\nwant %+v", matched, want)
	}
	pending, err := s.Pending(ctx, cursor.PendingQuery{Destination: "a", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []cursor.Event
	for _, p := range pending {
		got = append(got, p.Event)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Pending = %+v\nwant %+v", got, want)
	}
}
