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
}

type upRecord struct {
	ID      int       `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"date_created"`
	Updated time.Time `json:"last_updated"`
}

func newUpstream() *upstream { return &upstream{records: map[int]upRecord{}} }

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
		if !rec.Updated.Before(since) {
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
	_, evs := r.mustCycle()
	if got := kinds(evs); len(got) != 1 || got[0] != "contact.deleted:4" {
		t.Fatalf("snapshot after deleting 4 gave %v", got)
	}

	t.Run("a cycle failing on page 3 emits no deletes", func(t *testing.T) {
		r.up.del(1)
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
	expect("contact.deleted:2")
	// Back unchanged (a listing that skipped it, or an undelete), then
	// gone again: each is an event of its own.
	r.up.put(2, "x", t0, t0)
	expect("contact.created:2")
	r.up.del(2)
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
