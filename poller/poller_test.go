package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// upstream is a small CRM for cycle tests: contacts with created and
// updated dates, listed oldest change first, filtered by ?since= and paged
// by offset and limit.
type upstream struct {
	mu       sync.Mutex
	records  map[int]upRecord
	failPage int  // page number (1-based) of a walk answered with 500, 0 = none
	truncate bool // cut every body in half
	empty    bool // answer every page with an empty list
	byID     bool // list by id, not by updated date
	// date, when set, is the Date header: the API's clock.
	date     time.Time
	requests int
	// hide leaves records out of the listing (a walk that missed them);
	// GET /contacts/{id} still finds them.
	hide map[int]bool
	// itemStatus, when set, answers every GET /contacts/{id}.
	itemStatus int
	lookups    int
}

type upRecord struct {
	ID      int       `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"date_created"`
	Updated time.Time `json:"last_updated"`
}

func newUpstream() *upstream { return &upstream{records: map[int]upRecord{}, hide: map[int]bool{}} }

func (u *upstream) put(id int, name string, created, updated time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.records[id] = upRecord{ID: id, Name: name, Created: created, Updated: updated}
}

func (u *upstream) del(id int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.records, id)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if id, ok := strings.CutPrefix(r.URL.Path, "/contacts/"); ok {
		u.lookups++
		n, _ := strconv.Atoi(id)
		rec, found := u.records[n]
		switch {
		case u.itemStatus != 0:
			http.Error(w, "item answer", u.itemStatus)
		case !found:
			http.Error(w, `{"error":"no such contact"}`, http.StatusNotFound)
		default:
			json.NewEncoder(w).Encode(map[string]any{"contact": rec})
		}
		return
	}
	u.requests++
	q := r.URL.Query()
	offset, _ := strconv.Atoi(q.Get("offset"))
	limit, _ := strconv.Atoi(q.Get("limit"))
	if limit == 0 {
		limit = 1000
	}
	// Pages after the first start at the last record of the one before.
	if u.failPage > 0 && offset == (u.failPage-1)*(limit-1) {
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
		return
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, s); err != nil {
			http.Error(w, "bad since: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	list := []upRecord{}
	for _, rec := range u.records {
		if !rec.Updated.Before(since) && !u.hide[rec.ID] {
			list = append(list, rec)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !u.byID && !list[i].Updated.Equal(list[j].Updated) {
			return list[i].Updated.Before(list[j].Updated)
		}
		return list[i].ID < list[j].ID
	})
	if offset > len(list) {
		offset = len(list)
	}
	end := min(offset+limit, len(list))
	page := list[offset:end]
	if u.empty {
		page = nil
	}
	b, _ := json.Marshal(map[string]any{"contacts": append([]upRecord{}, page...), "count": len(list)})
	if u.truncate {
		b = b[:len(b)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	if !u.date.IsZero() {
		w.Header().Set("Date", u.date.UTC().Format(http.TimeFormat))
	}
	w.Write(b)
}

// testResource loads a config for the upstream at url with extra resource
// keys.
func testResource(t *testing.T, url, extra string) (*config.Resource, *config.Source) {
	t.Helper()
	yml := fmt.Sprintf(`
sources:
  - name: crm
    base_url: %s
    retry: { attempts: 1 }
resources:
  - name: contacts
    source: crm
    object: contact
    url: /contacts%s
    items: .contacts
    id_field: id
    dates:
      updated_field: last_updated
      updated_format: rfc3339
      created_field: date_created
      created_format: rfc3339
    pagination: { type: offset, limit: 2 }
%s`, url, "?since=${gmtDate:yyyy-MM-dd'T'HH:mm:ss.SSSXXX}", extra)
	if strings.Contains(extra, "deletes: snapshot") {
		yml = strings.Replace(yml, "?since=${gmtDate:yyyy-MM-dd'T'HH:mm:ss.SSSXXX}", "", 1)
	}
	cfg, err := config.Parse("test.yaml", []byte(yml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &cfg.Resources[0], &cfg.Sources[0]
}

// holdLease takes the lease of resource for the tests' process, for a
// year, and returns it.
func holdLease(t testing.TB, s cursor.Store, resource string) cursor.Lease {
	t.Helper()
	ls, err := s.AcquireLeases(context.Background(), "test", []string{cursor.ResourceLease(resource)}, 365*24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Holder != "test" {
		t.Fatalf("lease of %s: %+v, want it held by the test", resource, ls)
	}
	return ls[0]
}

// allLeases holds every lease: the scheduler's tests own every resource.
type allLeases struct{}

func (allLeases) Lease(name string) (cursor.Lease, bool) {
	return cursor.Lease{Name: name, Holder: "test", Fence: 1}, true
}

type cycleRig struct {
	t     *testing.T
	up    *upstream
	srv   *httptest.Server
	store *cursor.SQLite
	res   *config.Resource
	src   *config.Source
	now   time.Time
}

func newRig(t *testing.T, extra string) *cycleRig {
	t.Helper()
	up := newUpstream()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	store, err := cursor.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	res, src := testResource(t, srv.URL, extra)
	return &cycleRig{t: t, up: up, srv: srv, store: store, res: res, src: src, now: t0.Add(time.Hour)}
}

// cycle runs one cycle; after, when set, runs after each page.
func (r *cycleRig) cycle(after func(int) error) (CycleResult, []cursor.Event, error) {
	r.t.Helper()
	return runCycle(r.t, r.store, r.res, r.src, Options{Now: func() time.Time { return r.now }, AfterPage: after})
}

// runCycle runs one cycle of res into store and returns the events it
// wrote.
func runCycle(t *testing.T, store *cursor.SQLite, res *config.Resource, src *config.Source, opts Options) (CycleResult, []cursor.Event, error) {
	t.Helper()
	p, err := New(res, src, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, err := store.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cr, cerr := p.Cycle(context.Background(), holdLease(t, store, res.Name))
	var evs []cursor.Event
	err = store.EachEvent(context.Background(), cursor.EventFilter{AfterSeq: before}, func(e cursor.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cr, evs, cerr
}

func (r *cycleRig) mustCycle() (CycleResult, []cursor.Event) {
	r.t.Helper()
	res, evs, err := r.cycle(nil)
	if err != nil {
		r.t.Fatalf("cycle: %v", err)
	}
	return res, evs
}

func kinds(evs []cursor.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+":"+e.ObjectID)
	}
	sort.Strings(out)
	return out
}

func TestCycleStartNowThenChanges(t *testing.T) {
	r := newRig(t, "")
	for i := 1; i <= 5; i++ {
		r.up.put(i, "old", t0, t0.Add(time.Duration(i)*time.Second))
	}
	res, evs := r.mustCycle()
	// Pages of 2 records: each after the first repeats the last one.
	if !res.Silent || len(evs) != 0 || res.Records != 5 || res.Pages != 5 {
		t.Fatalf("first cycle: %+v, events %v; want silent, 5 records in 5 pages, no events", res, kinds(evs))
	}
	r.up.put(2, "edited", t0, t1)
	r.up.put(9, "new", t2, t2)
	r.up.del(3) // deletes: none, so this is not reported
	_, evs = r.mustCycle()
	if got, want := strings.Join(kinds(evs), " "), "contact.created:9 contact.updated:2"; got != want {
		t.Fatalf("second cycle events = %s, want %s", got, want)
	}
	var data map[string]any
	json.Unmarshal(evs[0].Data, &data)
	if data["name"] == nil {
		t.Errorf("event data %s lacks the record", evs[0].Data)
	}
	_, evs = r.mustCycle()
	if len(evs) != 0 {
		t.Fatalf("an unchanged upstream gave events %v", kinds(evs))
	}
}

// TestCycleWatermarkCappedAtAPIDate: the API's clock runs an hour behind
// pollhook's. A record on a page already read changes during the walk,
// and later pages hold changes more than the lookback newer: the
// watermark stops at the first page's Date header, so the next cycle
// reads the change.
func TestCycleWatermarkCappedAtAPIDate(t *testing.T) {
	r := newRig(t, "")
	r.up.byID = true // record 1 stays on page 1 when it changes
	for i := 1; i <= 4; i++ {
		r.up.put(i, "old", t0, t0.Add(time.Duration(i)*time.Second))
	}
	r.up.date = t0.Add(5 * time.Second)
	r.mustCycle()

	r.up.date = t0.Add(10 * time.Second)
	_, evs, err := r.cycle(func(page int) error {
		if page == 1 {
			r.up.put(1, "edited during the walk", t0, t0.Add(20*time.Second))
			r.up.put(4, "edited after", t0, t0.Add(300*time.Second))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(kinds(evs), " "); got != "contact.updated:4" {
		t.Fatalf("cycle during the edits gave %s, want contact.updated:4", got)
	}
	st, _ := r.store.ResourceState(context.Background(), "contacts")
	if want := r.up.date; !st.Watermark.Equal(want) {
		t.Errorf("watermark = %s, want the first page's Date %s, not the 5-minute date read after it", st.Watermark, want)
	}
	_, evs = r.mustCycle()
	if got := strings.Join(kinds(evs), " "); got != "contact.updated:1" {
		t.Fatalf("next cycle gave %q, want contact.updated:1, the change made during the walk", got)
	}
}

// TestCycleDateOnceInFuture: a record dated years ahead (a clock gone
// wrong) is put right later, with new content: its date goes back, and
// it is reported all the same — as are the changes after it, judged
// against the date put right rather than the one in the future.
func TestCycleDateOnceInFuture(t *testing.T) {
	r := newRig(t, "    start: beginning\n")
	r.up.put(1, "a", t0, t0.AddDate(4, 0, 0))
	r.up.put(2, "x", t0, t0)
	res, evs := r.mustCycle()
	if got := strings.Join(kinds(evs), " "); got != "contact.created:1 contact.created:2" || res.Future != 1 {
		t.Fatalf("first cycle: %s, %d in the future; want both created, one in the future", got, res.Future)
	}
	for i, name := range []string{"put right", "edited"} {
		r.now = r.now.Add(time.Minute)
		r.up.put(1, name, t0, r.now.Add(-time.Second))
		res, evs = r.mustCycle()
		if got := strings.Join(kinds(evs), " "); got != "contact.updated:1" {
			t.Fatalf("record 1 %s: events %q, want contact.updated:1", name, got)
		}
		if want := 1 - i; res.Backwards != want {
			t.Errorf("record 1 %s: %d dates gone back, want %d", name, res.Backwards, want)
		}
	}
}

func TestCycleSharedTimestampAcrossPageBoundary(t *testing.T) {
	r := newRig(t, "    start: beginning\n")
	// Five records share one timestamp and straddle pages of 2.
	for i := 1; i <= 5; i++ {
		r.up.put(i, "x", t1, t1)
	}
	_, evs := r.mustCycle()
	if len(evs) != 5 {
		t.Fatalf("backfill gave %v, want 5 created", kinds(evs))
	}
	// A sixth arrives later with the same timestamp, behind the watermark.
	r.up.put(6, "late", t1, t1)
	_, evs = r.mustCycle()
	if got := kinds(evs); len(got) != 1 || got[0] != "contact.created:6" {
		t.Fatalf("late record with a shared timestamp gave %v, want contact.created:6", got)
	}
}

func TestCycleFailureKeepsCursor(t *testing.T) {
	for _, fault := range []string{"truncated body", "500 on page 2"} {
		t.Run(fault, func(t *testing.T) {
			r := newRig(t, "    start: beginning\n")
			for i := 1; i <= 5; i++ {
				r.up.put(i, "x", t0, t0.Add(time.Duration(i)*time.Second))
			}
			r.mustCycle()
			st0, _ := r.store.ResourceState(context.Background(), "contacts")
			for i := 1; i <= 5; i++ {
				r.up.put(i, "y", t0, t2.Add(time.Duration(i)*time.Second))
			}
			if fault == "truncated body" {
				r.up.truncate = true
			} else {
				r.up.failPage = 2
			}
			_, _, err := r.cycle(nil)
			if err == nil {
				t.Fatal("cycle over a faulty upstream succeeded")
			}
			if fault == "truncated body" && !strings.Contains(err.Error(), "page 1") {
				t.Errorf("error %q does not name the page", err)
			}
			st1, _ := r.store.ResourceState(context.Background(), "contacts")
			if !st1.Watermark.Equal(st0.Watermark) || st1.Completed != st0.Completed {
				t.Fatalf("failed cycle moved the cursor: %+v → %+v", st0, st1)
			}
			r.up.truncate, r.up.failPage = false, 0
			_, evs := r.mustCycle()
			if len(kinds(evs)) > 5 {
				t.Fatalf("recovery gave %v", kinds(evs))
			}
		})
	}
}

func TestCycleSnapshotDeletes(t *testing.T) {
	r := newRig(t, "    deletes: snapshot\n    start: beginning\n")
	for i := 1; i <= 6; i++ {
		r.up.put(i, "x", t0, t0)
	}
	r.mustCycle()
	r.up.del(4)
	// The first listing without it makes it a suspect; the second
	// confirms.
	res, evs := r.mustCycle()
	if len(evs) != 0 || res.Missing != 1 || res.Suspected != 1 {
		t.Fatalf("first snapshot without 4: %v, %d missing, %d suspected; want no event, 1 suspected", kinds(evs), res.Missing, res.Suspected)
	}
	_, evs = r.mustCycle()
	if got := kinds(evs); len(got) != 1 || got[0] != "contact.deleted:4" {
		t.Fatalf("second snapshot without 4 gave %v", got)
	}

	t.Run("a cycle failing on page 3 confirms no deletes", func(t *testing.T) {
		r.up.del(1)
		r.mustCycle() // 1 is a suspect
		r.up.failPage = 3
		_, evs, err := r.cycle(nil)
		if err == nil || len(evs) != 0 {
			t.Fatalf("failed snapshot cycle: err %v, events %v", err, kinds(evs))
		}
		r.up.failPage = 0
		_, evs = r.mustCycle()
		if got := kinds(evs); len(got) != 1 || got[0] != "contact.deleted:1" {
			t.Fatalf("next complete cycle gave %v, want contact.deleted:1", got)
		}
	})

	t.Run("a record one listing missed is kept", func(t *testing.T) {
		r.up.hide[2] = true
		r.mustCycle()
		delete(r.up.hide, 2)
		if _, evs := r.mustCycle(); len(evs) != 0 {
			t.Fatalf("a record missed once, then listed again: %v, want nothing", kinds(evs))
		}
		if _, evs := r.mustCycle(); len(evs) != 0 {
			t.Fatalf("and the cycle after: %v", kinds(evs))
		}
	})

	t.Run("an empty list for a large set is held back", func(t *testing.T) {
		r.up.empty = true
		res, evs := r.mustCycle()
		if len(evs) != 0 || res.HeldBack != 4 {
			t.Fatalf("empty upstream: events %v, held back %d; want none and 4", kinds(evs), res.HeldBack)
		}
		st, _ := r.store.ResourceState(context.Background(), "contacts")
		if st.HeldDeletes != 4 || st.Known != 4 {
			t.Fatalf("state after a held-back cycle: %+v", st)
		}
		r.up.empty = false
		_, evs = r.mustCycle()
		if len(evs) != 0 {
			t.Fatalf("after the glitch: %v", kinds(evs))
		}
	})
}

// TestCycleSnapshotLookups: with item_url, a record missing from a
// complete listing is looked up: gone (404) is deleted in that cycle;
// found, it is kept, and reported if it changed; a lookup that fails
// confirms nothing, and is made again by the next cycle; and when item_url
// does not find a record the listing holds, no lookup confirms anything.
func TestCycleSnapshotLookups(t *testing.T) {
	r := newRig(t, "    deletes: snapshot\n    start: beginning\n    item_url: /contacts/${id}\n    item_record: .contact\n")
	for i := 1; i <= 6; i++ {
		r.up.put(i, "x", t0, t0)
	}
	r.mustCycle()
	// step runs a cycle and checks its events and lookups; previous is
	// the previous its one event must carry.
	step := func(what, want string, lookups Lookups, previous ...string) {
		t.Helper()
		res, evs := r.mustCycle()
		if got := strings.Join(kinds(evs), " "); got != want || res.Lookups != lookups {
			t.Fatalf("%s: events %q, lookups %+v; want %q, %+v", what, got, res.Lookups, want, lookups)
		}
		for i, p := range previous {
			if string(evs[i].Previous) != p {
				t.Errorf("%s: %s previous = %s, want %s", what, kinds(evs)[i], evs[i].Previous, p)
			}
		}
	}
	content := func(id int, name string, updated time.Time) string {
		b, _ := json.Marshal(map[string]any{"id": id, "name": name, "date_created": t0, "last_updated": updated})
		return string(b)
	}
	r.up.del(4)
	step("4 deleted", "contact.deleted:4", Lookups{Gone: 1}, content(4, "x", t0))
	r.up.hide[5] = true // a walk that missed it
	step("5 missed by the listing", "", Lookups{Found: 1})
	r.up.put(5, "edited", t0, t1)
	step("5 missed, and changed", "contact.updated:5", Lookups{Found: 1}, content(5, "x", t0))
	delete(r.up.hide, 5)
	step("5 listed again", "", Lookups{})
	r.up.put(5, "edited again", t0, t2)
	step("5 changed again: the version its lookup found is its previous", "contact.updated:5", Lookups{}, content(5, "edited", t1))

	r.up.del(6)
	r.up.itemStatus = http.StatusInternalServerError
	step("6 deleted, item_url failing", "", Lookups{Failed: 1})
	r.up.itemStatus = http.StatusNotFound
	step("item_url answering 404 for everything", "", Lookups{Failed: 1})
	r.up.itemStatus = 0
	step("item_url back", "contact.deleted:6", Lookups{Gone: 1}, content(6, "x", t0))
	if r.up.lookups == 0 {
		t.Fatal("no lookup reached the upstream")
	}
}

// TestCycleCreatedAfterWatchBegan: a record that a walk missed when it
// was created (a listing shifting under the walk) is still reported
// created when a later walk lists it, however far the watermark has
// moved meanwhile.
func TestCycleCreatedAfterWatchBegan(t *testing.T) {
	r := newRig(t, "")
	for i := 1; i <= 4; i++ {
		r.up.put(i, "old", t0, t0.Add(time.Duration(i)*time.Second))
	}
	if res, evs := r.mustCycle(); !res.Silent || len(evs) != 0 {
		t.Fatalf("first cycle: %+v %v", res, kinds(evs))
	}
	r.up.put(9, "new", t2, t2)
	r.up.hide[9] = true // the walk misses it
	r.up.put(1, "edited", t0, t3)
	r.now = r.now.Add(time.Hour)
	r.up.put(2, "edited later", t0, r.now.Add(-time.Minute))
	_, evs := r.mustCycle()
	if got := strings.Join(kinds(evs), " "); got != "contact.updated:1 contact.updated:2" {
		t.Fatalf("second cycle: %q, want 1 and 2 updated", got)
	}
	delete(r.up.hide, 9)
	r.up.put(9, "new, edited", t2, r.now.Add(time.Second))
	r.now = r.now.Add(time.Minute)
	_, evs = r.mustCycle()
	if got := strings.Join(kinds(evs), " "); got != "contact.created:9" {
		t.Fatalf("third cycle: %q, want 9 created (after the watch began), not updated", got)
	}
}

// TestCycleFirstWalkMissed: a record that the first walk of start: now
// missed, unchanged since, is recorded without an event when a later
// walk lists it: it existed, as it is, when the watch began. One that
// changed since is reported. A record told deleted and back is reported,
// however old its date.
func TestCycleFirstWalkMissed(t *testing.T) {
	r := newRig(t, "    deletes: snapshot\n")
	for i := 1; i <= 4; i++ {
		r.up.put(i, "old", t0.Add(-2*time.Hour), t0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	r.up.put(5, "recent", t0, t0)
	r.up.hide[2], r.up.hide[3] = true, true // the first walk misses them
	if res, evs := r.mustCycle(); !res.Silent || len(evs) != 0 {
		t.Fatalf("first cycle: %+v %v", res, kinds(evs))
	}
	delete(r.up.hide, 2)
	delete(r.up.hide, 3)
	r.up.put(3, "edited", t0.Add(-2*time.Hour), t1)
	if _, evs := r.mustCycle(); strings.Join(kinds(evs), " ") != "contact.updated:3" {
		t.Fatalf("second cycle: %v, want 3 updated and 2 (unchanged since before the watch) nothing", kinds(evs))
	}
	r.up.del(4)
	r.mustCycle()
	if _, evs := r.mustCycle(); strings.Join(kinds(evs), " ") != "contact.deleted:4" {
		t.Fatalf("4 gone: %v", kinds(evs))
	}
	r.up.put(4, "old", t0.Add(-2*time.Hour), t0.Add(-time.Hour+4*time.Second))
	if _, evs := r.mustCycle(); strings.Join(kinds(evs), " ") != "contact.updated:4" {
		t.Fatalf("4 back as it was: %v, want it reported", kinds(evs))
	}
}

func TestCycleCrashAfterEachPageYieldsEveryEventOnce(t *testing.T) {
	stopped := errors.New("crash")
	for k := 1; k <= 3; k++ {
		t.Run(fmt.Sprintf("after page %d", k), func(t *testing.T) {
			r := newRig(t, "    start: beginning\n")
			for i := 1; i <= 6; i++ {
				r.up.put(i, "x", t0, t0.Add(time.Duration(i)*time.Second))
			}
			_, evs1, err := r.cycle(func(page int) error {
				if page == k {
					return stopped
				}
				return nil
			})
			if !errors.Is(err, stopped) {
				t.Fatalf("cycle error = %v, want the crash", err)
			}
			_, evs2 := r.mustCycle()
			ids := map[string]int{}
			for _, e := range append(evs1, evs2...) {
				ids[e.ID]++
			}
			if len(ids) != 6 {
				t.Fatalf("crash then rerun gave %d distinct events (%v + %v), want 6", len(ids), kinds(evs1), kinds(evs2))
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("event %s stored %d times", id, n)
				}
			}
		})
	}
}

func TestCycleCancelledCommitsThePageInHand(t *testing.T) {
	r := newRig(t, "    start: beginning\n")
	for i := 1; i <= 6; i++ {
		r.up.put(i, "x", t0, t0.Add(time.Duration(i)*time.Second))
	}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := New(r.res, r.src, r.store, Options{Now: func() time.Time { return r.now }, AfterPage: func(page int) error {
		if page == 1 {
			cancel()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Cycle(ctx, holdLease(t, r.store, r.res.Name)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled cycle error = %v", err)
	}
	st, _ := r.store.ResourceState(context.Background(), "contacts")
	if st.Known != 2 || st.Completed != 0 {
		t.Fatalf("after a stop during page 2: %+v, want page 1's 2 records and no completed cycle", st)
	}
	_, evs := r.mustCycle()
	if len(evs) != 4 {
		t.Fatalf("rerun gave %v, want the 4 records of pages 2 and 3", kinds(evs))
	}
}

func TestCycleFilterDoesNotEndPaging(t *testing.T) {
	r := newRig(t, "    start: beginning\n    filter: .name != \"hidden\"\n")
	r.up.put(1, "hidden", t0, t0.Add(1*time.Second))
	r.up.put(2, "hidden", t0, t0.Add(2*time.Second))
	r.up.put(3, "shown", t0, t0.Add(3*time.Second))
	res, evs := r.mustCycle()
	if got := kinds(evs); len(got) != 1 || got[0] != "contact.created:3" {
		t.Fatalf("a page the filter emptied ended the walk: events %v, %d pages", got, res.Pages)
	}
}

func TestCycleRecordBackAfterDeleteAndDeletedAgain(t *testing.T) {
	r := newRig(t, "    deletes: snapshot\n    start: beginning\n")
	for i := 1; i <= 4; i++ {
		r.up.put(i, "x", t0, t0)
	}
	r.mustCycle()
	ids := map[string]bool{}
	expect := func(want string) {
		t.Helper()
		_, evs := r.mustCycle()
		if got := kinds(evs); len(got) != 1 || got[0] != want {
			t.Fatalf("events %v, want %s", got, want)
		}
		if ids[evs[0].ID] {
			t.Fatalf("%s reuses event id %s", want, evs[0].ID)
		}
		ids[evs[0].ID] = true
	}
	r.up.del(2)
	r.mustCycle() // missed once: a suspect
	expect("contact.deleted:2")
	// Back unchanged (an undelete), then gone again: each is an event of
	// its own.
	r.up.put(2, "x", t0, t0)
	expect("contact.created:2")
	r.up.del(2)
	r.mustCycle()
	expect("contact.deleted:2")
	st, _ := r.store.ResourceState(context.Background(), "contacts")
	if st.Known != 3 {
		t.Errorf("known = %d, want 3 (tombstones are not known records)", st.Known)
	}
}

func TestCycleFutureDateDoesNotBlindTheResource(t *testing.T) {
	r := newRig(t, "")
	r.up.put(1, "x", t0, t0)
	r.mustCycle()
	r.up.put(2, "from the future", t0, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	res, _ := r.mustCycle()
	if res.Future != 1 || !res.Watermark.Equal(r.now) {
		t.Fatalf("cycle with a 2099 date: future %d, watermark %v; want 1 and the cycle start %v", res.Future, res.Watermark, r.now)
	}
	// A real change after it is still fetched.
	r.up.put(3, "real", r.now.Add(time.Minute), r.now.Add(time.Minute))
	r.now = r.now.Add(2 * time.Minute)
	_, evs := r.mustCycle()
	if got := kinds(evs); len(got) != 1 || got[0] != "contact.created:3" {
		t.Fatalf("after the future date: %v, want contact.created:3", got)
	}
}

// TestCycleFirstCycleThatSkipsEverything: a misspelt id_field skips every
// record. The result counts them and names the first few, with why; as
// the first cycle of start: now it recorded nothing, so it fails and does
// not count: once id_field is fixed, the next cycle is the (silent) first,
// not one that reports every record as created. A later cycle that skips
// everything completes, as a cycle with skips does.
func TestCycleFirstCycleThatSkipsEverything(t *testing.T) {
	r := newRig(t, "")
	r.res.IDField = "idd"
	for i := 1; i <= 5; i++ {
		r.up.put(i, "x", t0, t0.Add(time.Duration(i)*time.Second))
	}
	res, evs, err := r.cycle(nil)
	var all *SkippedAllError
	if !errors.As(err, &all) || all.Skipped != res.Skipped || !strings.Contains(err.Error(), `(`+strconv.Itoa(res.Skipped)+`: no id at "idd")`) {
		t.Fatalf("first cycle with a misspelt id_field: %v; want a SkippedAllError naming why", err)
	}
	if res.Records != 0 || res.Skipped < 5 || len(evs) != 0 {
		t.Fatalf("cycle with a misspelt id_field: %+v, events %v; want no records, every one skipped", res, kinds(evs))
	}
	if len(res.FirstSkips) != MaxFirstSkips {
		t.Fatalf("FirstSkips = %+v, want the first %d", res.FirstSkips, MaxFirstSkips)
	}
	for _, s := range res.FirstSkips {
		if s.Reason != `no id at "idd"` {
			t.Errorf("skip %+v: want the reason no id at \"idd\"", s)
		}
	}

	r.res.IDField = "id"
	if res, evs := r.mustCycle(); !res.Silent || len(evs) != 0 || res.Records != 5 {
		t.Fatalf("the cycle after the fix: %+v, events %v; want the silent first cycle, recording 5 records", res, kinds(evs))
	}
	r.res.IDField = "idd"
	if res, evs := r.mustCycle(); res.Silent || res.Records != 0 || len(evs) != 0 {
		t.Fatalf("a later cycle that skips everything: %+v, events %v; want it to complete, with nothing", res, kinds(evs))
	}
}

// TestCycleRecordsHistory: every cycle that began is in the store's
// history when it ends — a complete one with its counts, the records
// known and the watermark, a failed one with its error and the events of
// the pages it committed.
func TestCycleRecordsHistory(t *testing.T) {
	r := newRig(t, "    deletes: snapshot\n    start: beginning\n")
	r.up.byID = true // record 1, edited, is on page 1
	for i := 1; i <= 5; i++ {
		r.up.put(i, "x", t0, t0.Add(time.Duration(i)*time.Second))
	}
	first, _ := r.mustCycle()
	r.up.del(5)
	r.up.put(6, "new", t2, t2)
	r.up.put(1, "edited", t0, t2.Add(time.Second))
	r.up.failPage = 3
	_, _, err := r.cycle(nil)
	if err == nil {
		t.Fatal("cycle over a failing page 3 succeeded")
	}
	cs, lerr := r.store.Cycles(context.Background(), cursor.CycleFilter{Resource: "contacts"})
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(cs) != 2 {
		t.Fatalf("history has %d cycles, want 2: %+v", len(cs), cs)
	}
	failed, done := cs[0], cs[1]
	want := cursor.CycleRecord{
		Resource: "contacts", Cycle: 1, Started: r.now, Ended: r.now,
		Pages: int64(first.Pages), Records: 5, Created: 5, Known: 5, Watermark: t0.Add(5 * time.Second),
	}
	if done != want {
		t.Errorf("complete cycle recorded as %+v, want %+v", done, want)
	}
	if failed.Cycle != 2 || failed.Known != -1 || failed.Pages != 2 || failed.Error != err.Error() ||
		!failed.Watermark.Equal(want.Watermark) || failed.Deleted != 0 {
		t.Errorf("failed cycle recorded as %+v, want cycle 2, 2 pages, error %q, the watermark unchanged", failed, err)
	}
	if failed.Updated != 1 || failed.Events() != 1 {
		t.Errorf("failed cycle recorded %+v, want the update of record 1 its first page committed", failed)
	}
	hours, herr := r.store.EventsPerHour(context.Background(), r.now.Add(-time.Hour))
	if herr != nil || len(hours) != 1 || hours[0].Cycles != 2 || hours[0].Failed != 1 || hours[0].Events != 5+failed.Events() {
		t.Errorf("events per hour = %+v, %v; want 2 cycles, 1 failed, %d events", hours, herr, 5+failed.Events())
	}
}

// TestCycleEditDuringTheWalkIsNotFuture: a record changed during the walk
// is dated after the cycle began but not after its page was served: it
// is no date in the future (seen from outside as the warning and
// pollhook_records_future_total firing in normal operation), though the
// watermark still stops at the cycle's start.
func TestCycleEditDuringTheWalkIsNotFuture(t *testing.T) {
	r := newRig(t, "")
	r.up.put(1, "x", t0, t0)
	r.mustCycle()
	start := r.now
	r.up.put(1, "edited during the walk", t0, start.Add(300*time.Millisecond))
	res, evs := r.mustCycle()
	if res.Future != 0 || len(evs) != 1 {
		t.Errorf("an edit 300 ms after the cycle began: %d in the future, events %v; want none in the future, one update", res.Future, kinds(evs))
	}
	if !res.Watermark.Equal(start) {
		t.Errorf("watermark %v, want the cycle's start %v", res.Watermark, start)
	}
}
