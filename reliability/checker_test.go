package reliability

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// ev builds an event of resource r as pollhook would deliver it.
func ev(r, id, verb string, oid, rev int, updated time.Time, detected int) Event {
	data := json.RawMessage("null")
	if verb != Deleted {
		data = json.RawMessage(fmt.Sprintf(`{"id":%d,"rev":%d,"updated":%q}`, oid, rev, updated.Format(DateLayout)))
	}
	return Event{ID: id, Type: "item." + verb, Resource: r, ObjectID: fmt.Sprint(oid), Data: data,
		DetectedAt: DefaultStart.Add(time.Duration(detected) * time.Second)}
}

// occurred sets e's occurred_at.
func occurred(e Event, at time.Time) Event {
	e.OccurredAt = at
	return e
}

func TestCheck(t *testing.T) {
	t1, t2, t3 := DefaultStart.Add(time.Second), DefaultStart.Add(2*time.Second), DefaultStart.Add(3*time.Second)
	truth := func() map[int]*Object {
		return map[int]*Object{
			1: {ID: 1, Versions: []Version{{1, t1}, {2, t2}, {3, t3}}},
			2: {ID: 2, Versions: []Version{{1, t1}}, Deleted: true},
			3: {ID: 3, Versions: []Version{{1, t2}}, Deleted: true}, // never seen
			4: {ID: 4, Versions: []Version{{1, t1}}},
		}
	}
	clean := []Event{
		ev("s", "e1", Created, 1, 1, t1, 1),
		ev("s", "e2", Updated, 1, 3, t3, 3), // rev 2 collapsed
		ev("s", "e3", Created, 2, 1, t1, 1),
		ev("s", "e4", Deleted, 2, 0, t1, 2),
		ev("s", "e5", Created, 4, 1, t1, 1),
		ev("other", "x1", Created, 9, 1, t1, 1), // another resource: ignored
	}
	deliver := func(events ...Event) []Delivery {
		var out []Delivery
		for _, e := range events {
			out = append(out, Delivery{WebhookID: e.ID, Events: []Event{e}})
		}
		return out
	}
	tests := []struct {
		name   string
		events []Event
		opts   CheckOptions
		// want is the counts: lost, duplicates, spurious, not converged,
		// redeliveries.
		want [5]int
	}{
		{"clean", clean, CheckOptions{Resource: "s", Deletes: true}, [5]int{}},
		{"redelivered under the same id", append(clean, clean[1]), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 0, 0, 1}},
		{"final version lost", []Event{clean[0], clean[2], clean[3], clean[4]}, CheckOptions{Resource: "s", Deletes: true}, [5]int{1, 0, 0, 1, 0}},
		{"delete lost", append(clean[:3:3], clean[4]), CheckOptions{Resource: "s", Deletes: true}, [5]int{1, 0, 0, 1, 0}},
		{"delete not expected without Deletes", append(clean[:3:3], clean[4]), CheckOptions{Resource: "s"}, [5]int{}},
		{"same version, new id", append(clean, ev("s", "e9", Updated, 1, 3, t3, 4)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 1, 0, 0, 0}},
		{"created twice", append(clean, ev("s", "e9", Created, 1, 2, t2, 2)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 1, 0, 0, 0}},
		{"version never existed", append(clean, ev("s", "e9", Updated, 1, 7, t3, 4)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 0, 0}},
		{"wrong date for a version", append(clean, ev("s", "e9", Updated, 1, 2, t3, 2)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 0, 0}},
		{"unknown object", append(clean, ev("s", "e9", Created, 77, 1, t1, 1)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 0, 0}},
		{"live object deleted, then told live", append(clean, ev("s", "e9", Deleted, 1, 0, t1, 2)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 0, 0}},
		{"live object deleted last", append(clean, ev("s", "e9", Deleted, 1, 0, t1, 5)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 1, 0}},
		{"delete in a resource without deletes", clean, CheckOptions{Resource: "s"}, [5]int{0, 0, 1, 0, 0}},
		{"deleted twice", append(clean, ev("s", "e9", Deleted, 2, 0, t1, 3)), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 1, 0, 0, 0}},
		{"left out, deleted, back under a new id", append(clean, ev("s", "e8", Deleted, 4, 0, t1, 2), ev("s", "e9", Created, 4, 1, t1, 3)),
			CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 0, 0}},
		{"left out, deleted, never back", append(clean, ev("s", "e8", Deleted, 4, 0, t1, 2)),
			CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 1, 1, 0}},
		// One cycle read record 1 twice, edited between two pages: both
		// versions are reported, detected at the same time; the later
		// version (occurred later) is the receiver's.
		{"a creation reported as an update", append(clean[1:4:4], ev("s", "e7", Updated, 1, 1, t1, 1), clean[4]),
			CheckOptions{Resource: "s", Deletes: true, Created: true}, [5]int{1, 0, 0, 0, 0}},
		{"created first", clean, CheckOptions{Resource: "s", Deletes: true, Created: true}, [5]int{}},
		{"two versions of one cycle", append(clean[:1:1], append(clean[2:], occurred(ev("s", "e6", Updated, 1, 2, t2, 3), t2),
			occurred(clean[1], t3))...), CheckOptions{Resource: "s", Deletes: true}, [5]int{}},
		{"two versions of one cycle, the older last", append(clean[:1:1], append(clean[2:], occurred(ev("s", "e6", Updated, 1, 2, t2, 3), t3),
			occurred(clean[1], t2))...), CheckOptions{Resource: "s", Deletes: true}, [5]int{0, 0, 0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Check(truth(), deliver(tt.events...), tt.opts)
			got := [5]int{len(r.Lost), len(r.Duplicates), len(r.Spurious), len(r.NotConverged), r.Redeliveries}
			if got != tt.want {
				t.Errorf("lost, duplicates, spurious, not converged, redeliveries = %v, want %v\n%s", got, tt.want, r)
			}
			if r.OK() != (got[0]+got[1]+got[2]+got[3] == 0) {
				t.Errorf("OK() = %v with %v", r.OK(), got)
			}
		})
	}
	r := Check(truth(), deliver(clean...), CheckOptions{Resource: "s", Deletes: true})
	if r.Collapsed != 1 || r.Unobserved != 1 || r.Objects != 4 || r.Changes != 8 || r.Events != 5 {
		t.Errorf("collapsed %d, unobserved %d, objects %d, changes %d, events %d; want 1, 1, 4, 8, 5", r.Collapsed, r.Unobserved, r.Objects, r.Changes, r.Events)
	}
}

func TestUpstreamListing(t *testing.T) {
	u := NewUpstream(UpstreamOptions{Seed: 1, Initial: 5})
	srv := httptest.NewServer(u)
	defer srv.Close()
	list := func(query string) wirePage {
		t.Helper()
		resp, err := http.Get(srv.URL + "/x/items?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p wirePage
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v: %s", query, err, b)
		}
		return p
	}
	ids := func(p wirePage) string {
		var s []string
		for _, r := range p.Items {
			s = append(s, fmt.Sprint(r.ID))
		}
		return strings.Join(s, ",")
	}
	u.Delete(2)
	u.Update(1)
	since := DefaultStart.Add(5 * time.Second).Format(DateLayout) // record 5's date
	for _, tt := range []struct{ query, want string }{
		{"", "1,3,4,5"},
		{"limit=2", "1,3"},
		{"limit=2&offset=2", "4,5"},
		{"limit=2&cursor=3", "4,5"},
		{"since=" + since, "1,5"},
		{"since=" + since + "&include_deleted=true", "1,2,5"},
	} {
		if got := ids(list(tt.query)); got != tt.want {
			t.Errorf("%q: ids %s, want %s", tt.query, got, tt.want)
		}
	}
	if p := list("limit=2"); p.Next == nil || *p.Next != "3" {
		t.Errorf("next of a full page: %v", p.Next)
	}
	if p := list("limit=2&cursor=3"); p.Next != nil {
		t.Errorf("next of the last page: %v", *p.Next)
	}
	// Page paging, and the next page named in the body and the Link
	// header; by updated date, record 1 (edited last) comes last.
	for _, tt := range []struct{ query, want, next string }{
		{"limit=2&page=1", "1,3", "/x/items?limit=2&page=2"},
		{"limit=2&page=2", "4,5", ""},
		{"limit=2&page=1&order=updated", "3,4", "/x/items?limit=2&order=updated&page=2"},
		{"limit=2&page=2&order=updated", "5,1", ""},
	} {
		resp, err := http.Get(srv.URL + "/x/items?" + tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var p wirePage
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		link, next := resp.Header.Get("Link"), ""
		if p.NextURL != nil {
			next = *p.NextURL
		}
		wantLink := ""
		if tt.next != "" {
			wantLink = "<" + tt.next + `>; rel="next"`
		}
		if ids(p) != tt.want || next != tt.next || link != wantLink {
			t.Errorf("%q: ids %s, next_url %q, Link %q; want %s, %q, %q", tt.query, ids(p), next, link, tt.want, tt.next, wantLink)
		}
	}
	// One record alone; 404 for a deleted or unknown one.
	for _, tt := range []struct {
		path   string
		status int
	}{{"/x/items/3", 200}, {"/x/items/2", 404}, {"/x/items/99", 404}, {"/x/items/abc", 404}} {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var r wireRecord
		json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != tt.status || (tt.status == 200 && r.ID != 3) {
			t.Errorf("GET %s: %d %+v, want %d", tt.path, resp.StatusCode, r, tt.status)
		}
	}
	if n := u.Stats().Lookups; n != 4 {
		t.Errorf("%d lookups counted, want 4", n)
	}

	u.SetFault(FaultSpec{Kind: Fault5xx, Count: 1})
	u.SetFault(FaultSpec{Kind: FaultRepeat, Count: 1})
	if resp, err := http.Get(srv.URL + "/x/items"); err != nil || resp.StatusCode/100 != 5 {
		t.Errorf("5xx fault: %v %v", resp, err)
	}
	if p := list("limit=2"); ids(p) != "1,3" {
		t.Errorf("after the 5xx fault: %s", ids(p))
	}
	if p := list("limit=2&cursor=1"); p.Next == nil || *p.Next != "1" {
		t.Errorf("a repeating cursor: next %v, want 1", p.Next)
	}
	if got := u.Stats().Faults; got[Fault5xx] != 1 || got[FaultRepeat] != 1 {
		t.Errorf("faults counted %v", got)
	}
	truth := u.Truth()
	if o := truth[1]; len(o.Versions) != 2 || o.Deleted {
		t.Errorf("truth of 1: %+v", o)
	}
	if o := truth[2]; !o.Deleted {
		t.Errorf("truth of 2: %+v", o)
	}
}

// TestUpstreamZone: with a Zone, dates are local times without an
// offset, so the two passes of a DST fold's repeated hour read alike.
func TestUpstreamZone(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	// The records are written an hour apart from 2026-11-01 05:30 UTC,
	// 01:30 EDT: the second at 01:30 EST.
	start := time.Date(2026, 11, 1, 4, 30, 0, 0, time.UTC)
	u := NewUpstream(UpstreamOptions{Start: start, Step: time.Hour, Zone: ny, Initial: 2})
	truth := u.Truth()
	a, b := u.DateText(truth[1].Final().Updated), u.DateText(truth[2].Final().Updated)
	if a != "2026-11-01T01:30:00.000" || a != b {
		t.Errorf("dates an hour apart across the fold read %q and %q, want both 2026-11-01T01:30:00.000", a, b)
	}
	if c, ok := u.UpdateAt(1, start.AddDate(1, 0, 0)); !ok || !c.Updated.Equal(start.AddDate(1, 0, 0)) {
		t.Errorf("UpdateAt: %+v %v", c, ok)
	}
}

func TestCheckHistory(t *testing.T) {
	t1, t2, t3 := DefaultStart.Add(time.Second), DefaultStart.Add(2*time.Second), DefaultStart.Add(3*time.Second)
	truth := map[int]*Object{
		1: {ID: 1, Versions: []Version{{1, t1}, {2, t3}}, Names: map[int]string{1: "a", 2: "b"},
			Touched: map[int][]time.Time{1: {t2}}},
		2: {ID: 2, Versions: []Version{{1, t1}}, Deleted: true, Names: map[int]string{1: "c"}},
	}
	rec := func(id, rev int, name string, updated time.Time, views int) string {
		return fmt.Sprintf(`{"id":%d,"name":%q,"rev":%d,"updated":%q,"views":%d}`, id, name, rev, updated.Format(DateLayout), views)
	}
	event := func(id, verb string, oid, detected int, data, previous string, changed ...string) Event {
		e := Event{ID: id, Type: "item." + verb, Resource: "s", ObjectID: fmt.Sprint(oid),
			DetectedAt: DefaultStart.Add(time.Duration(detected) * time.Second), Data: json.RawMessage(data)}
		if previous != "" {
			e.Previous = json.RawMessage(previous)
			e.ChangedFields = changed
		}
		return e
	}
	a1, b2 := rec(1, 1, "a", t1, 0), rec(1, 2, "b", t3, 1)
	c1 := rec(2, 1, "c", t1, 0)
	clean := []Event{
		event("e1", Created, 1, 1, a1, ""),
		// The touch at t2 (views 1) was ignored: previous is still a1.
		event("e2", Updated, 1, 4, b2, a1, "name", "rev", "updated", "views"),
		event("e3", Created, 2, 1, c1, ""),
		event("e4", Deleted, 2, 2, "null", c1),
	}
	deliver := func(events ...Event) []Delivery {
		var out []Delivery
		for _, e := range events {
			out = append(out, Delivery{Events: []Event{e}})
		}
		return out
	}
	upper := func(o *Object, rev int, rec map[string]json.RawMessage) string {
		if string(rec["name"]) != fmt.Sprintf("%q", o.Names[rev]) {
			return "name " + string(rec["name"])
		}
		return ""
	}
	with := func(i int, e Event) []Event {
		out := append([]Event{}, clean...)
		out[i] = e
		return out
	}
	tests := []struct {
		name   string
		events []Event
		want   string // a problem's text; "" for none
	}{
		{"clean", clean, ""},
		{"clean, redelivered", append(clean, clean[1]), ""},
		{"previous moved by the ignored touch", with(1, event("e2", Updated, 1, 4, b2, rec(1, 1, "a", t2, 1), "name", "rev", "updated", "views")), "is not the record's last data"},
		{"changed fields wrong", with(1, event("e2", Updated, 1, 4, b2, a1, "name", "rev")), `changed_fields ["name" "rev"]`},
		{"changed fields missing", with(1, event("e2", Updated, 1, 4, b2, a1)), "changed_fields []"},
		{"an ignored change reported", append(clean[:1:1], event("e9", Updated, 1, 2, rec(1, 1, "a", t2, 1), a1, "updated", "views")), "ignored fields only"},
		{"created with a previous", with(0, event("e1", Created, 1, 1, a1, a1)), "has a previous"},
		{"delete without its last version", with(3, event("e4", Deleted, 2, 2, "null", "")), "is not the record's last data"},
		{"a version that never was", with(1, event("e2", Updated, 1, 4, rec(1, 2, "b", t2, 1), a1, "rev", "updated", "views")), "never had rev 2"},
		{"not what the resource makes of the truth", with(2, event("e3", Created, 2, 1, rec(2, 1, "C", t1, 0), "")), "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckHistory(truth, deliver(tt.events...), HistoryOptions{Resource: "s", Ignored: []string{"updated", "views"}, Record: upper})
			if tt.want == "" {
				if !r.OK() {
					t.Errorf("problems: %q", r.Problems)
				}
				if r.Updates != 1 || r.Deletes != 1 || r.Touches != 1 {
					t.Errorf("counts %s", r.Summary())
				}
				return
			}
			if !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("problems %q, want one with %q", r.Problems, tt.want)
			}
		})
	}
}
