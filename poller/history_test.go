package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// docs is an upstream of free-form records, listed whole at every
// request: {"items": [...]}.
type docs struct {
	mu    sync.Mutex
	items map[string]map[string]any
}

func (d *docs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	list := []map[string]any{}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range d.items {
			if !yield(id) {
				return
			}
		}
	}) {
		list = append(list, d.items[id])
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"items": list})
}

// set puts a record, given as JSON.
func (d *docs) set(rec string) {
	var m map[string]any
	if err := json.Unmarshal([]byte(rec), &m); err != nil {
		panic(err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items[fmt.Sprint(m["id"])] = m
}

func (d *docs) del(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.items, id)
}

// historyRig polls a docs upstream in snapshot mode (start: now, so the
// first cycle records what exists) into a real store.
type historyRig struct {
	t     *testing.T
	up    *docs
	url   string
	store *cursor.SQLite
	extra string
	now   time.Time
}

func newHistoryRig(t *testing.T, extra string) *historyRig {
	t.Helper()
	up := &docs{items: map[string]map[string]any{}}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	store, err := cursor.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &historyRig{t: t, up: up, url: srv.URL, store: store, extra: extra, now: t0}
}

func (r *historyRig) resource() (*config.Resource, *config.Source) {
	r.t.Helper()
	yml := fmt.Sprintf(`
sources:
  - name: crm
    base_url: %s
resources:
  - name: things
    object: thing
    url: /things
    items: .items
    deletes: snapshot
    delete_guard: 1
%s`, r.url, r.extra)
	cfg, err := config.Parse("test.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		r.t.Fatalf("config: %v", err)
	}
	return &cfg.Resources[0], &cfg.Sources[0]
}

// cycle runs one cycle, a minute after the last, and returns its events.
func (r *historyRig) cycle() (CycleResult, []cursor.Event) {
	r.t.Helper()
	r.now = r.now.Add(time.Minute)
	res, src := r.resource()
	cr, evs, err := runCycle(r.t, r.store, res, src, Options{Now: func() time.Time { return r.now }})
	if err != nil {
		r.t.Fatalf("cycle: %v", err)
	}
	return cr, evs
}

// expect runs a cycle and checks its events: each "type id" with the
// previous and changed fields it must carry ("" previous: none).
func (r *historyRig) expect(step string, want ...wantEvent) []cursor.Event {
	r.t.Helper()
	_, evs := r.cycle()
	if len(evs) != len(want) {
		r.t.Fatalf("%s: %d events %v, want %d", step, len(evs), kinds(evs), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if e.Type+" "+e.ObjectID != w.what {
			r.t.Errorf("%s: event %d is %s %s, want %s", step, i, e.Type, e.ObjectID, w.what)
		}
		if string(e.Previous) != w.previous {
			r.t.Errorf("%s: %s previous = %s, want %s", step, w.what, e.Previous, w.previous)
		}
		if !reflect.DeepEqual(e.ChangedFields, w.changed) {
			r.t.Errorf("%s: %s changed_fields = %#v, want %#v", step, w.what, e.ChangedFields, w.changed)
		}
	}
	return evs
}

type wantEvent struct {
	what     string
	previous string
	changed  []string
}

func ev(what, previous string, changed ...string) wantEvent {
	w := wantEvent{what: what, previous: previous}
	if previous != "" && strings.HasPrefix(what, "thing.updated") {
		w.changed = append([]string{}, changed...)
	}
	return w
}

// dated is the extra config of a resource with an updated date.
const dated = `
    dates: { updated_field: updated_at, updated_format: rfc3339 }`

// withDates runs f for a resource with and without an updated date.
func withDates(t *testing.T, f func(t *testing.T, dates string, at func(int) string)) {
	for _, c := range []struct{ name, dates string }{{"no dates", ""}, {"updated date", dated}} {
		t.Run(c.name, func(t *testing.T) {
			at := func(n int) string { return t0.Add(time.Duration(n) * time.Second).Format(time.RFC3339) }
			f(t, c.dates, at)
		})
	}
}

func TestHistoryPreviousAndChangedFields(t *testing.T) {
	withDates(t, func(t *testing.T, dates string, at func(int) string) {
		r := newHistoryRig(t, dates)
		r.up.set(`{"id":1,"name":"Ada","stage":1,"updated_at":"` + at(1) + `"}`)
		r.up.set(`{"id":2,"name":"Bob","stage":1,"updated_at":"` + at(1) + `"}`)
		r.expect("first cycle")

		v1 := `{"id":1,"name":"Ada","stage":1,"updated_at":"` + at(1) + `"}`
		r.up.set(`{"id":1,"name":"Ada","stage":2,"updated_at":"` + at(2) + `","new":true}`)
		r.expect("a change", ev("thing.updated 1", v1, "new", "stage", "updated_at"))

		v2 := `{"id":1,"name":"Ada","new":true,"stage":2,"updated_at":"` + at(2) + `"}`
		r.up.set(`{"id":1,"name":"Ada","stage":3,"updated_at":"` + at(3) + `"}`)
		r.expect("the next change reports the last as previous", ev("thing.updated 1", v2, "new", "stage", "updated_at"))
		r.expect("nothing changed")

		last2 := `{"id":2,"name":"Bob","stage":1,"updated_at":"` + at(1) + `"}`
		r.up.del("2")
		r.expect("first miss, not yet confirmed")
		evs := r.expect("a delete carries the last version", ev("thing.deleted 2", last2))
		if string(evs[0].Data) != "null" {
			t.Errorf("delete data = %s, want null", evs[0].Data)
		}
		r.up.set(`{"id":2,"name":"Bob again","updated_at":"` + at(4) + `"}`)
		r.expect("back after its delete: new, no previous", ev("thing.created 2", ""))
		r.up.set(`{"id":2,"name":"Bob again","x":1,"updated_at":"` + at(5) + `"}`)
		r.expect("and its history starts over",
			ev("thing.updated 2", `{"id":2,"name":"Bob again","updated_at":"`+at(4)+`"}`, "updated_at", "x"))
	})
}

func TestHistoryIgnoreFields(t *testing.T) {
	withDates(t, func(t *testing.T, dates string, at func(int) string) {
		r := newHistoryRig(t, dates+`
    ignore_fields: [views, meta.seen_at, ".tags[].seen"]`)
		// Without a date configured, updated_at is a field like any other:
		// it stays put here, so that only the ignored fields change.
		rec := func(n int, name string, views int, seen, src string, tagSeen int) string {
			if dates == "" {
				n = 0
			}
			return fmt.Sprintf(`{"id":1,"meta":{"seen_at":%q,"src":%q},"name":%q,"tags":[{"k":"a","seen":%d}],"updated_at":%q,"views":%d}`,
				seen, src, name, tagSeen, at(n), views)
		}
		changed := func(fields ...string) []string {
			if dates != "" {
				fields = append(fields, "updated_at")
			}
			slices.Sort(fields)
			return fields
		}
		r.up.set(rec(1, "Ada", 1, "x", "web", 1))
		r.expect("first cycle")
		original := rec(1, "Ada", 1, "x", "web", 1)

		r.up.set(rec(2, "Ada", 2, "y", "web", 2))
		r.expect("only ignored fields changed (and the updated date with them)")
		r.up.set(rec(3, "Ada", 3, "z", "web", 3))
		r.expect("again only ignored fields")

		r.up.set(rec(4, "Ada L.", 4, "z", "web", 3))
		r.expect("a real change reports the version before the ignored ones as previous",
			ev("thing.updated 1", original, changed("meta", "name", "tags", "views")...))
		r.expect("the same change is not reported twice")
		r.up.set(rec(5, "Ada L.", 5, "z", "web", 3))
		r.expect("ignored again")

		r.up.set(rec(6, "Ada L.", 5, "z", "app", 3))
		r.expect("a field beside an ignored one is a change",
			ev("thing.updated 1", rec(4, "Ada L.", 4, "z", "web", 3), changed("meta", "views")...))
	})
}

func TestHistoryWatchFields(t *testing.T) {
	withDates(t, func(t *testing.T, dates string, at func(int) string) {
		r := newHistoryRig(t, dates+`
    watch_fields: [stage, ".owner.id"]`)
		rec := func(n int, name string, stage, owner int) string {
			return fmt.Sprintf(`{"id":1,"name":%q,"owner":{"id":%d,"seen":%d},"stage":%d,"updated_at":%q}`, name, owner, n, stage, at(n))
		}
		r.up.set(rec(1, "a", 1, 7))
		r.expect("first cycle")
		r.up.set(rec(2, "b", 1, 7))
		r.expect("a field not watched")
		r.up.set(rec(3, "b", 2, 7))
		r.expect("a watched field", ev("thing.updated 1", rec(1, "a", 1, 7), "name", "owner", "stage", "updated_at"))
		r.up.set(rec(4, "b", 2, 8))
		r.expect("a watched nested field", ev("thing.updated 1", rec(3, "b", 2, 7), "owner", "updated_at"))
	})
}

// TestHistoryIgnoreFieldsAddedLater: fields ignored from some cycle on
// change how records are compared, not what they are: the first cycle
// under the new rules reports nothing for the records whose content,
// as kept, compares equal, even where the ignored fields changed meanwhile.
// Without a content kept, a record whose hash changed is reported.
func TestHistoryIgnoreFieldsAddedLater(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep_content %v", keep), func(t *testing.T) {
			r := newHistoryRig(t, fmt.Sprintf("\n    keep_content: %v", keep))
			r.up.set(`{"id":1,"name":"a","views":1}`)
			r.up.set(`{"id":2,"name":"b","views":1}`)
			r.expect("first cycle")
			r.extra += "\n    ignore_fields: [views]"
			r.up.set(`{"id":1,"name":"a","views":2}`)
			if !keep {
				r.expect("hashes made by other rules, nothing to compare them with",
					ev("thing.updated 1", ""), ev("thing.updated 2", ""))
				return
			}
			r.expect("fields ignored from now on")
			r.up.set(`{"id":2,"name":"c","views":1}`)
			r.expect("and a real change after", ev("thing.updated 2", `{"id":2,"name":"b","views":1}`, "name"))
		})
	}
}

func TestHistoryKeepContentOff(t *testing.T) {
	r := newHistoryRig(t, "")
	r.up.set(`{"id":1,"name":"a"}`)
	r.up.set(`{"id":2,"name":"b"}`)
	r.expect("first cycle, content kept")
	kept, err := r.store.Contents(context.Background(), "things", []string{"1", "2"})
	if err != nil || kept["1"] != `{"id":1,"name":"a"}` {
		t.Fatalf("contents = %v, %v; want the content kept", kept, err)
	}

	r.extra = "\n    keep_content: false"
	r.up.set(`{"id":1,"name":"a2"}`)
	r.expect("no previous once keep_content is off", ev("thing.updated 1", ""))
	if kept, err = r.store.Contents(context.Background(), "things", []string{"1", "2"}); err != nil || len(kept) != 0 {
		t.Fatalf("contents = %v, %v; want no content kept of any record", kept, err)
	}
	r.up.del("2")
	r.expect("first miss, not yet confirmed")
	r.expect("nor on a delete", ev("thing.deleted 2", ""))
	r.up.set(`{"id":1,"name":"a3"}`)
	r.expect("nor on the next update", ev("thing.updated 1", ""))
}

func TestHistoryTransform(t *testing.T) {
	r := newHistoryRig(t, `
    id_field: id
    transform: '{id, email: (.email | ascii_downcase), plan}'`)
	r.up.set(`{"id":1,"email":"Ada@Example.com","ssn":"123","plan":"free"}`)
	r.up.set(`{"id":2,"email":"bob@example.com","ssn":"456","plan":"free"}`)
	r.expect("first cycle")

	r.up.set(`{"id":1,"email":"ADA@example.com","ssn":"999","plan":"free"}`)
	r.expect("a change the transform takes out is no change")

	r.up.set(`{"id":1,"email":"ada@example.com","ssn":"999","plan":"pro"}`)
	evs := r.expect("the transformed record is emitted and kept",
		ev("thing.updated 1", `{"email":"ada@example.com","id":1,"plan":"free"}`, "plan"))
	if string(evs[0].Data) != `{"email":"ada@example.com","id":1,"plan":"pro"}` {
		t.Errorf("data = %s, want the transform's output", evs[0].Data)
	}

	// A record the transform fails on is skipped and reported, like a bad
	// date, and is not taken for deleted.
	r.up.set(`{"id":2,"email":5,"plan":"pro"}`)
	res, evs := r.cycle()
	if len(evs) != 0 || res.Skipped != 1 {
		t.Fatalf("cycle = %+v, %v; want record 2 skipped and no event", res, kinds(evs))
	}
	r.up.set(`{"id":2,"email":"bob@example.com","plan":"pro"}`)
	r.expect("once it reads again, its change is reported",
		ev("thing.updated 2", `{"email":"bob@example.com","id":2,"plan":"free"}`, "plan"))
}

func TestTransformReasons(t *testing.T) {
	tests := []struct {
		transform, want string
	}{
		{`.email | ascii_downcase`, `transform: ascii_downcase cannot be applied to: number (5)`},
		{`empty`, `transform gave no value, want one record`},
		{`., .`, `transform gave more than one value, want one record`},
		{`error("no")`, `transform: error: no`},
	}
	for _, tt := range tests {
		x := newExtractor(t, &config.Resource{Items: ".", IDField: "id", Transform: tt.transform})
		recs, skips, err := extract(t, x, `[{"id":1,"email":5}]`)
		if err != nil || len(recs) != 0 || len(skips) != 1 {
			t.Fatalf("%s: %v, %v, %v; want one skip", tt.transform, recs, skips, err)
		}
		if skips[0].ID != "1" || !strings.Contains(skips[0].Reason, tt.want) {
			t.Errorf("%s: skip %+v, want id 1 and %q", tt.transform, skips[0], tt.want)
		}
	}
}

// TestProjectionPaths: a path of keys is followed in Go, any other jq path
// expression by jq; both take the same fields out of a record, and leave
// a record without them as it is.
func TestProjectionPaths(t *testing.T) {
	rec := `{"id":1,"a":{"b":1,"c":2},"list":[{"x":1,"y":2}],"s":"str","name":"n"}`
	tests := []struct {
		name   string
		ignore []string
		watch  []string
		native bool
		want   string // "" is the record unchanged
	}{
		{"dotted", []string{"a.b", "name"}, nil, true, `{"a":{"c":2},"id":1,"list":[{"x":1,"y":2}],"s":"str"}`},
		{"jq keys", []string{".a.b", ".name"}, nil, true, `{"a":{"c":2},"id":1,"list":[{"x":1,"y":2}],"s":"str"}`},
		{"jq path", []string{".a.b", `.["name"]`}, nil, false, `{"a":{"c":2},"id":1,"list":[{"x":1,"y":2}],"s":"str"}`},
		{"array items", []string{".list[].x"}, nil, false, `{"a":{"b":1,"c":2},"id":1,"list":[{"y":2}],"name":"n","s":"str"}`},
		{"missing and mistyped paths", []string{"nope.deeper", "s.t"}, nil, true, ""},
		{"missing and mistyped jq paths", []string{".nope.deeper", ".s.t", ".list[].x.z"}, nil, false, ""},
		{"watch dotted", nil, []string{"a.b", "name", "nope"}, true, `{"a":{"b":1},"name":"n","nope":null}`},
		{"watch jq", nil, []string{".a.b", `.["name"]`, ".nope"}, false, `{"a":{"b":1},"name":"n","nope":null}`},
		{"watch array items", nil, []string{".list[].y"}, false, `{"list":[{"y":2}]}`},
		{"watch nothing there", nil, []string{"s.t"}, true, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &config.Resource{Name: "r", IgnoreFields: tt.ignore, WatchFields: tt.watch}
			p, err := newProjector(r)
			if err != nil {
				t.Fatal(err)
			}
			if (p.code == nil) != tt.native {
				t.Errorf("native = %v, want %v", p.code == nil, tt.native)
			}
			x := &Extractor{}
			v, err := x.Decode([]byte(rec))
			if err != nil {
				t.Fatal(err)
			}
			before, _ := appendCanonical(nil, v)
			out, err := p.apply(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendCanonical(nil, out)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = string(before)
			}
			if string(got) != want {
				t.Errorf("kept %s, want %s", got, want)
			}
			if after, _ := appendCanonical(nil, v); string(after) != string(before) {
				t.Errorf("the record changed: %s", after)
			}
		})
	}
}

func TestChangedFields(t *testing.T) {
	tests := []struct {
		prev, cur string
		want      []string
	}{
		{`{"a":1,"b":[1,2],"c":{"d":1}}`, `{"a":1,"b":[1,2],"c":{"d":1}}`, []string{}},
		{`{"a":1,"b":[1,2],"c":{"d":1}}`, `{"a":2,"b":[2,1],"c":{"d":1,"e":null}}`, []string{"a", "b", "c"}},
		{`{"gone":1,"same":true}`, `{"new":1,"same":true}`, []string{"gone", "new"}},
		{`{"a":null}`, `{}`, []string{"a"}},
		{`[1]`, `{"a":1}`, nil},
		{`{"a":1}`, `"text"`, nil},
	}
	for _, tt := range tests {
		if got := changedFields([]byte(tt.prev), []byte(tt.cur)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("changedFields(%s, %s) = %#v, want %#v", tt.prev, tt.cur, got, tt.want)
		}
	}
}

// TestHistoryNoFieldChanged: an update found by its updated date alone,
// on a resource whose transform leaves that date out of the record,
// carries the record as previous and an empty changed_fields: no field
// of the record changed. A nested change names its top-level field.
func TestHistoryNoFieldChanged(t *testing.T) {
	r := newHistoryRig(t, dated+`
    transform: 'del(.updated_at)'`)
	at := func(n int) string { return t0.Add(time.Duration(n) * time.Second).Format(time.RFC3339) }
	r.up.set(`{"id":1,"name":"Ada","meta":{"tier":1},"updated_at":"` + at(1) + `"}`)
	r.expect("first cycle")
	kept := `{"id":1,"meta":{"tier":1},"name":"Ada"}`
	r.up.set(`{"id":1,"name":"Ada","meta":{"tier":1},"updated_at":"` + at(2) + `"}`)
	r.expect("only the date moved", ev("thing.updated 1", kept))
	r.up.set(`{"id":1,"name":"Ada","meta":{"tier":2},"updated_at":"` + at(3) + `"}`)
	r.expect("a nested value changed", ev("thing.updated 1", kept, "meta"))
}
