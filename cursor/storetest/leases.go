package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// leaseTests: leases, their fences, and the writes they guard.
var leaseTests = []test{
	{"AcquireAndRenew", testLeaseAcquireAndRenew},
	{"HeldByAnother", testLeaseHeldByAnother},
	{"TakenAfterExpiry", testLeaseTakenAfterExpiry},
	{"LostLeaseWritesNothing", testLostLeaseWritesNothing},
	{"ReleaseFreesAtOnce", testLeaseReleaseFreesAtOnce},
	{"WrongLeaseRefused", testWrongLeaseRefused},
	{"List", testLeasesList},
	{"PruneForgetsGoneMembers", testPruneForgetsGoneMembers},
	{"TwoHoldersAlternate", testTwoHoldersAlternate},
	{"TwoHoldersRace", testTwoHoldersRace},
}

// ttl is how long the leases of these tests last.
const ttl = time.Minute

// acquire acquires names for who at now, for ttl.
func acquire(t testing.TB, s cursor.Store, who string, now time.Time, names ...string) []cursor.Lease {
	t.Helper()
	ls, err := s.AcquireLeases(context.Background(), who, names, ttl, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(names) {
		t.Fatalf("AcquireLeases(%s, %v) returned %d leases, want one a name", who, names, len(ls))
	}
	return ls
}

// leaseStrings formats leases for comparison: times compare by instant,
// whatever their location.
func leaseStrings(ls []cursor.Lease) []string {
	out := []string{}
	for _, l := range ls {
		exp := "released"
		if !l.Expires.IsZero() {
			exp = "until " + l.Expires.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, fmt.Sprintf("%s held by %q, fence %d, %s", l.Name, l.Holder, l.Fence, exp))
	}
	return out
}

func checkLeases(t *testing.T, what string, got, want []cursor.Lease) {
	t.Helper()
	if g, w := leaseStrings(got), leaseStrings(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %q\nwant %q", what, g, w)
	}
}

func listLeases(t *testing.T, s cursor.Store) []cursor.Lease {
	t.Helper()
	ls, err := s.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// checkLost checks that err refuses a write because lease name is held
// by holder with fence now ("" when nobody holds it).
func checkLost(t *testing.T, what string, err error, name, holder string, fence int64) {
	t.Helper()
	if !errors.Is(err, cursor.ErrLeaseLost) {
		t.Errorf("%s under a lost lease: %v, want ErrLeaseLost", what, err)
		return
	}
	var le *cursor.LeaseError
	if !errors.As(err, &le) {
		t.Errorf("%s under a lost lease: %v, want a *cursor.LeaseError", what, err)
		return
	}
	if le.Name != name || le.Holder != holder || (holder != "" && le.Fence != fence) {
		t.Errorf("%s under a lost lease: %+v, want lease %s held by %q with fence %d", what, le, name, holder, fence)
	}
	if holder != "" && !strings.Contains(err.Error(), holder) {
		t.Errorf("%s under a lost lease: %q does not name the holder %s", what, err, holder)
	}
}

// checkBeginRefused checks that BeginCycle of contacts under l is refused,
// naming holder and fence as those that hold l.Name now, and begins no
// cycle.
func checkBeginRefused(t *testing.T, s cursor.Store, what string, l cursor.Lease, holder string, fence int64) {
	t.Helper()
	before := state(t, s, "contacts")
	_, err := s.BeginCycle(context.Background(), "contacts", l)
	checkLost(t, what, err, l.Name, holder, fence)
	if after := state(t, s, "contacts"); after != before {
		t.Errorf("%s refused, yet the state went from %+v to %+v", what, before, after)
	}
}

func testLeaseAcquireAndRenew(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	res, dest := cursor.ResourceLease("contacts"), cursor.DestinationLease("crm")

	got := acquire(t, s, "a", t0, res, dest)
	checkLeases(t, "free leases", got, []cursor.Lease{
		{Name: res, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
		{Name: dest, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
	})
	if !got[0].Held(t0) || got[0].Held(t0.Add(ttl)) {
		t.Errorf("lease until %v: Held(now) %v, Held(expiry) %v; want held until its expiry, not at it",
			got[0].Expires, got[0].Held(t0), got[0].Held(t0.Add(ttl)))
	}

	// Renewal keeps the fence and extends the expiry; a lease not asked
	// for is left as it was.
	later := t0.Add(ttl / 2)
	checkLeases(t, "renewed", acquire(t, s, "a", later, res), []cursor.Lease{
		{Name: res, Holder: "a", Fence: 1, Expires: later.Add(ttl)},
	})
	checkLeases(t, "leases after renewal", listLeases(t, s), []cursor.Lease{
		{Name: dest, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
		{Name: res, Holder: "a", Fence: 1, Expires: later.Add(ttl)},
	})
	// Writes under the renewed lease go through.
	if _, err := s.BeginCycle(ctx, "contacts", got[0]); err != nil {
		t.Errorf("BeginCycle under a renewed lease: %v", err)
	}

	if _, err := s.AcquireLeases(ctx, "", []string{res}, ttl, t0); err == nil {
		t.Error("a lease was acquired for an empty holder")
	}
}

func testLeaseHeldByAnother(t *testing.T, b Backend) {
	s := b.Open(t)
	res, dest := cursor.ResourceLease("contacts"), cursor.DestinationLease("crm")
	acquire(t, s, "a", t0, res)

	// b gets what is free, and sees who holds the rest.
	now := t0.Add(ttl / 2)
	got := acquire(t, s, "b", now, res, dest)
	checkLeases(t, "b's leases", got, []cursor.Lease{
		{Name: res, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
		{Name: dest, Holder: "b", Fence: 1, Expires: now.Add(ttl)},
	})
	if !got[0].Held(now) {
		t.Errorf("a's lease %+v is not held at %v", got[0], now)
	}
	checkLeases(t, "leases", listLeases(t, s), []cursor.Lease{
		{Name: dest, Holder: "b", Fence: 1, Expires: now.Add(ttl)},
		{Name: res, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
	})

	// A write that claims a's lease for b is refused, naming a.
	checkBeginRefused(t, s, "BeginCycle by b", cursor.Lease{Name: res, Holder: "b", Fence: 1, Expires: now.Add(ttl)}, "a", 1)
}

func testLeaseTakenAfterExpiry(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	res := cursor.ResourceLease("contacts")
	first := acquire(t, s, "a", t0, res)[0]

	checkLeases(t, "b just before a's expiry", acquire(t, s, "b", t0.Add(ttl-time.Second), res), []cursor.Lease{
		{Name: res, Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
	})
	// At its expiry the lease is free: b takes it with a greater fence.
	checkLeases(t, "b at a's expiry", acquire(t, s, "b", t0.Add(ttl), res), []cursor.Lease{
		{Name: res, Holder: "b", Fence: 2, Expires: t0.Add(2 * ttl)},
	})
	// a, back from a pause, does not get it back while b holds it.
	checkLeases(t, "a renewing late", acquire(t, s, "a", t0.Add(ttl+time.Second), res), []cursor.Lease{
		{Name: res, Holder: "b", Fence: 2, Expires: t0.Add(2 * ttl)},
	})
	// Once b's lease expires in turn, a takes it again, with a third fence.
	third := acquire(t, s, "a", t0.Add(3*ttl), res)
	checkLeases(t, "a after b's expiry", third, []cursor.Lease{
		{Name: res, Holder: "a", Fence: 3, Expires: t0.Add(4 * ttl)},
	})
	// A write of a's first term is refused all the same: the fence, not
	// the holder, tells the terms apart.
	checkBeginRefused(t, s, "BeginCycle under a's first fence", first, "a", 3)
	if n, err := s.BeginCycle(ctx, "contacts", third[0]); err != nil || n != 1 {
		t.Errorf("BeginCycle under a's third fence = %d, %v; want cycle 1", n, err)
	}
}

// storeState is what a user sees of a store: the state of resource
// contacts, its records, the outbox, the deliveries and the attempt log.
type storeState struct {
	State      cursor.ResourceState
	Seen       map[string]cursor.Seen
	Events     []string
	Deliveries []cursor.Delivery
	Attempts   []cursor.AttemptLog
}

func snapshot(t *testing.T, s cursor.Store, ids ...string) storeState {
	t.Helper()
	ctx := context.Background()
	seen, err := s.Seen(ctx, "contacts", ids)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := s.Deliveries(ctx, cursor.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := s.Attempts(ctx, cursor.AttemptFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return storeState{
		State: state(t, s, "contacts"), Seen: seen, Events: eventIDs(allEvents(t, s, cursor.EventFilter{})),
		Deliveries: ds, Attempts: as,
	}
}

// testLostLeaseWritesNothing: a holds the leases of resource contacts and
// destination crm, pauses past their expiry, and b takes them. Each write
// a makes under its old fence is refused and writes nothing; the same
// write under b's lease goes through.
func testLostLeaseWritesNothing(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	res, dest := cursor.ResourceLease("contacts"), cursor.DestinationLease("crm")
	old := acquire(t, s, "a", t0, res, dest)

	// Under a: a complete cycle, a destination with a pending delivery,
	// and a second cycle begun.
	n, err := s.BeginCycle(ctx, "contacts", old[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: n, Lease: old[0],
		Records: []cursor.SeenRecord{rec("1", t0), rec("2", t0)},
		Events:  []cursor.Event{event("contacts", "e1", "contact.created")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: n, Lease: old[0], Watermark: t0, Now: t0}); err != nil {
		t.Fatal(err)
	}
	ensure(t, s, "crm", time.Time{})
	fanout(t, s, "crm", t0)
	if n, err = s.BeginCycle(ctx, "contacts", old[0]); err != nil {
		t.Fatal(err)
	}

	cur := acquire(t, s, "b", t0.Add(2*ttl), res, dest)
	if cur[0].Holder != "b" || cur[0].Fence != 2 || cur[1].Holder != "b" || cur[1].Fence != 2 {
		t.Fatalf("b after a's expiry got %q, want both leases with fence 2", leaseStrings(cur))
	}
	writes := []struct {
		name string
		do   func(res, dest cursor.Lease) error
	}{
		{"BeginCycle", func(res, _ cursor.Lease) error {
			_, err := s.BeginCycle(ctx, "contacts", res)
			return err
		}},
		{"CommitPage", func(res, _ cursor.Lease) error {
			return s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: n, Lease: res,
				Records: []cursor.SeenRecord{rec("3", t0)}, Touch: []string{"1"},
				Events: []cursor.Event{event("contacts", "e3", "contact.created")}})
		}},
		{"FinishCycle", func(res, _ cursor.Lease) error {
			_, err := s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: n, Lease: res,
				Watermark: t0.Add(time.Hour), Snapshot: true, DeleteGuard: 1, Now: t0.Add(time.Hour),
				Deleted: func(id string, _ cursor.Seen) cursor.Event { return event("contacts", "del-"+id, "contact.deleted") }})
			return err
		}},
		{"RecordOutcomes", func(_, dest cursor.Lease) error {
			return s.RecordOutcomes(ctx, dest, []cursor.Outcome{{Destination: "crm", EventID: "e1", At: t0,
				HTTPStatus: 200, Status: cursor.StatusDelivered, Counted: true}})
		}},
	}
	// In order, on one store: each write under b's lease changes what the
	// next is checked against.
	for _, w := range writes {
		before := snapshot(t, s, "1", "2", "3")
		err := w.do(old[0], old[1])
		name := res
		if w.name == "RecordOutcomes" {
			name = dest
		}
		checkLost(t, w.name, err, name, "b", 2)
		if after := snapshot(t, s, "1", "2", "3"); !reflect.DeepEqual(after, before) {
			t.Errorf("%s under a lost lease wrote:\n got %+v\nwant %+v", w.name, after, before)
		}
		if err := w.do(cur[0], cur[1]); err != nil {
			t.Errorf("%s under the current lease: %v", w.name, err)
		}
	}
}

func testLeaseReleaseFreesAtOnce(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	res := cursor.ResourceLease("contacts")
	held := acquire(t, s, "a", t0, res)[0]

	// Only the holder releases a lease.
	if err := s.ReleaseLeases(ctx, "b", []string{res}); err != nil {
		t.Fatal(err)
	}
	checkLeases(t, "after b released a's lease", listLeases(t, s), []cursor.Lease{held})

	if err := s.ReleaseLeases(ctx, "a", []string{res}); err != nil {
		t.Fatal(err)
	}
	released := listLeases(t, s)
	checkLeases(t, "after a released it", released, []cursor.Lease{{Name: res, Holder: "a", Fence: 1}})
	if len(released) == 1 && released[0].Held(t0) {
		t.Errorf("released lease %+v is held", released[0])
	}
	checkBeginRefused(t, s, "BeginCycle after release", held, "", 0)

	// b need not wait for the expiry a's lease had.
	checkLeases(t, "b after the release", acquire(t, s, "b", t0.Add(time.Second), res), []cursor.Lease{
		{Name: res, Holder: "b", Fence: 2, Expires: t0.Add(time.Second + ttl)},
	})
	checkBeginRefused(t, s, "BeginCycle by a after b took the lease", held, "b", 2)
}

// testWrongLeaseRefused: a write is made under the lease of what it
// writes, held; any other lease, even held, is refused.
func testWrongLeaseRefused(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ls := acquire(t, s, holder, t0, cursor.ResourceLease("deals"), cursor.DestinationLease("contacts"), cursor.DestinationLease("other"))
	deals, destContacts, other := ls[0], ls[1], ls[2]
	addEvents(t, s, t0, event("contacts", "e1", "contact.created"))
	ensure(t, s, "crm", time.Time{})
	fanout(t, s, "crm", t0)
	n, err := s.BeginCycle(ctx, "contacts", hold(t, s, cursor.ResourceLease("contacts")))
	if err != nil {
		t.Fatal(err)
	}

	page := func(l cursor.Lease) error {
		return s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: n, Lease: l, Records: []cursor.SeenRecord{rec("1", t0)}})
	}
	for _, tt := range []struct {
		name  string
		write func() error
	}{
		{"BeginCycle under another resource's lease", func() error { _, err := s.BeginCycle(ctx, "contacts", deals); return err }},
		{"BeginCycle under a destination's lease", func() error { _, err := s.BeginCycle(ctx, "contacts", destContacts); return err }},
		{"BeginCycle under no lease", func() error { _, err := s.BeginCycle(ctx, "contacts", cursor.Lease{}); return err }},
		{"CommitPage under another resource's lease", func() error { return page(deals) }},
		{"CommitPage under a lease never acquired", func() error {
			return s.CommitPage(ctx, cursor.Page{Resource: "leads", Cycle: 1, Records: []cursor.SeenRecord{rec("1", t0)},
				Lease: cursor.Lease{Name: cursor.ResourceLease("leads"), Holder: holder, Fence: 1}})
		}},
		{"FinishCycle under another resource's lease", func() error {
			_, err := s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: n, Lease: deals, Watermark: t0})
			return err
		}},
		{"RecordOutcomes under another destination's lease", func() error {
			return s.RecordOutcomes(ctx, other, []cursor.Outcome{{Destination: "crm", EventID: "e1", At: t0,
				HTTPStatus: 200, Status: cursor.StatusDelivered, Counted: true}})
		}},
	} {
		before := snapshot(t, s, "1")
		if err := tt.write(); err == nil {
			t.Errorf("%s succeeded", tt.name)
		}
		if after := snapshot(t, s, "1"); !reflect.DeepEqual(after, before) {
			t.Errorf("%s wrote:\n got %+v\nwant %+v", tt.name, after, before)
		}
	}
	if st := state(t, s, "leads"); st != (cursor.ResourceState{Resource: "leads"}) {
		t.Errorf("state of a resource whose lease was never acquired = %+v, want nothing written", st)
	}
}

func testLeasesList(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	if ls := listLeases(t, s); len(ls) != 0 {
		t.Errorf("leases of an empty store = %q, want none", leaseStrings(ls))
	}
	acquire(t, s, "a", t0, cursor.ResourceLease("contacts"), cursor.DestinationLease("crm"))
	acquire(t, s, "b", t0.Add(time.Second), cursor.ResourceLease("deals"))
	if err := s.ReleaseLeases(ctx, "a", []string{cursor.DestinationLease("crm")}); err != nil {
		t.Fatal(err)
	}
	checkLeases(t, "Leases, sorted by name", listLeases(t, s), []cursor.Lease{
		{Name: cursor.DestinationLease("crm"), Holder: "a", Fence: 1},
		{Name: cursor.ResourceLease("contacts"), Holder: "a", Fence: 1, Expires: t0.Add(ttl)},
		{Name: cursor.ResourceLease("deals"), Holder: "b", Fence: 1, Expires: t0.Add(time.Second + ttl)},
	})
}

// testPruneForgetsGoneMembers: Prune deletes the member leases of
// processes gone for longer than MemberLeaseRetention, and nothing else.
func testPruneForgetsGoneMembers(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	acquire(t, s, "old", t0, cursor.MemberLease("old"), cursor.ResourceLease("contacts"))
	acquire(t, s, "new", t0.Add(cursor.MemberLeaseRetention), cursor.MemberLease("new"))
	if err := s.ReleaseLeases(ctx, "gone", []string{cursor.MemberLease("gone")}); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(cursor.MemberLeaseRetention + 2*ttl)
	if _, err := s.Prune(ctx, cursor.PruneOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	checkLeases(t, "leases after a prune", listLeases(t, s), []cursor.Lease{
		{Name: cursor.MemberLease("new"), Holder: "new", Fence: 1, Expires: t0.Add(cursor.MemberLeaseRetention + ttl)},
		{Name: cursor.ResourceLease("contacts"), Holder: "old", Fence: 1, Expires: t0.Add(ttl)},
	})
}

// secondProcess is the store a second process uses: s opened again when
// the backend can, s itself otherwise.
func secondProcess(t *testing.T, b Backend, s cursor.Store) cursor.Store {
	if b.Reopen == nil {
		return s
	}
	return b.Reopen(t, s)
}

// fenceLog notes, for each fence, which process wrote under it: a write
// that succeeds under a fence another process wrote under is an error.
type fenceLog struct {
	t     *testing.T
	mu    sync.Mutex
	wrote map[int64]string
}

func (f *fenceLog) note(who string, fence int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.wrote == nil {
		f.wrote = map[int64]string{}
	}
	if w, ok := f.wrote[fence]; ok && w != who {
		f.t.Errorf("%s and %s both wrote under fence %d", w, who, fence)
	}
	f.wrote[fence] = who
}

// checkOnly checks that of the pages tried, only those kept wrote their
// record.
func checkOnly(t *testing.T, s cursor.Store, tried, kept []string) {
	t.Helper()
	seen, err := s.Seen(context.Background(), "contacts", tried)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for id := range seen {
		got = append(got, id)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(kept))
	if !slices.Equal(got, want) {
		t.Errorf("records written = %v, want those of the pages committed, %v", got, want)
	}
}

// raise makes n at least v.
func raise(n *atomic.Int64, v int64) {
	for cur := n.Load(); v > cur; cur = n.Load() {
		if n.CompareAndSwap(cur, v) {
			return
		}
	}
}

// process is one pollhook process polling resource contacts.
type process struct {
	name  string
	s     cursor.Store
	lease cursor.Lease
	cycle int64
}

// testTwoHoldersAlternate: two processes take the lease of one resource
// in turn, each after the other's expired. The one that lost it was
// paused mid-cycle: its page and the end of its cycle are refused, and
// write nothing, while the new holder's cycle goes through. No two
// processes write under one fence.
func testTwoHoldersAlternate(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	procs := []*process{{name: "p1", s: s}, {name: "p2", s: secondProcess(t, b, s)}}
	name := cursor.ResourceLease("contacts")
	log := &fenceLog{t: t}
	var tried, kept, events []string
	// page commits a page with one record and one event in p's cycle.
	page := func(p *process, id string) error {
		tried = append(tried, id)
		err := p.s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: p.cycle, Lease: p.lease,
			Records: []cursor.SeenRecord{rec(id, t0)}, Events: []cursor.Event{event("contacts", "e-"+id, "contact.updated")}})
		if err == nil {
			kept, events = append(kept, id), append(events, "e-"+id)
		}
		return err
	}
	// must fails the test unless err is nil; it notes the fence written under.
	must := func(p *process, what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s by %s, the holder: %v", what, p.name, err)
		}
		log.note(p.name, p.lease.Fence)
	}

	const rounds = 6
	now, last := t0, int64(0)
	far := t0.Add(1000 * time.Hour)
	for r := range rounds {
		h, o := procs[r%2], procs[(r+1)%2]
		now = now.Add(2 * ttl) // the last holder's lease has expired
		h.lease = acquire(t, h.s, h.name, now, name)[0]
		if h.lease.Holder != h.name || h.lease.Fence <= last {
			t.Fatalf("round %d: %s got %q, want the lease with a fence above %d", r, h.name, leaseStrings([]cursor.Lease{h.lease}), last)
		}
		last = h.lease.Fence

		// o was paused mid-cycle: what it writes now is refused.
		if o.cycle != 0 {
			checkLost(t, "CommitPage by "+o.name, page(o, fmt.Sprintf("%s-late-%d", o.name, r)), name, h.name, h.lease.Fence)
			_, err := o.s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: o.cycle, Lease: o.lease, Watermark: far, Now: now})
			checkLost(t, "FinishCycle by "+o.name, err, name, h.name, h.lease.Fence)
			_, err = o.s.BeginCycle(ctx, "contacts", o.lease)
			checkLost(t, "BeginCycle by "+o.name, err, name, h.name, h.lease.Fence)
		}

		// h runs a cycle to its end, and begins the next one.
		var err error
		h.cycle, err = h.s.BeginCycle(ctx, "contacts", h.lease)
		must(h, "BeginCycle", err)
		must(h, "CommitPage", page(h, fmt.Sprintf("%s-%d", h.name, r)))
		_, err = h.s.FinishCycle(ctx, cursor.Finish{Resource: "contacts", Cycle: h.cycle, Lease: h.lease, Watermark: t0.Add(time.Duration(r) * time.Hour), Now: now})
		must(h, "FinishCycle", err)
		h.cycle, err = h.s.BeginCycle(ctx, "contacts", h.lease)
		must(h, "BeginCycle", err)
		must(h, "CommitPage", page(h, fmt.Sprintf("%s-%d-next", h.name, r)))
	}

	checkOnly(t, s, tried, kept)
	if got := eventIDs(allEvents(t, s, cursor.EventFilter{})); !reflect.DeepEqual(got, events) {
		t.Errorf("outbox = %v, want the events of the pages committed, %v", got, events)
	}
	st := state(t, s, "contacts")
	if st.Completed != rounds || st.Cycle != 2*rounds || !st.Watermark.Equal(t0.Add((rounds-1)*time.Hour)) {
		t.Errorf("state = %+v, want %d cycles completed of %d begun, watermark %v: only the holders' writes count",
			st, rounds, 2*rounds, t0.Add((rounds-1)*time.Hour))
	}
}

// testTwoHoldersRace: two processes race for the lease of one resource,
// each acquiring it at a later now than the last acquisition (so it has
// always expired) and committing pages under it until it is lost. A page
// commits only under the newest fence: once a greater fence was taken, a
// write under an older one is refused; and no fence is written under by
// both.
//
// The processes share one store, then, if the backend can reopen it, each
// has its own, as two processes on one file or database do.
func testTwoHoldersRace(t *testing.T, b Backend) {
	t.Run("one store", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		race(t, s, s)
	})
	t.Run("two stores", func(t *testing.T) {
		t.Parallel()
		s := b.Open(t)
		race(t, s, b.reopen(t, s))
	})
}

// race runs the processes of testTwoHoldersRace on stores, one each.
func race(t *testing.T, stores ...cursor.Store) {
	ctx := context.Background()
	s := stores[0]
	name := cursor.ResourceLease("contacts")
	var clock atomic.Int64  // acquisitions so far: now moves 2*ttl each
	var newest atomic.Int64 // the greatest fence acquired so far
	log := &fenceLog{t: t}
	var mu sync.Mutex
	var tried, kept []string
	const terms, pages = 20, 5
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, st := range stores {
		who := fmt.Sprintf("p%d", i+1)
		wg.Go(func() {
			<-start
			for r := range terms {
				now := t0.Add(time.Duration(clock.Add(1)) * 2 * ttl)
				ls, err := st.AcquireLeases(ctx, who, []string{name}, ttl, now)
				if err != nil {
					t.Error(err)
					return
				}
				l := ls[0]
				if l.Holder != who {
					continue // the other took it at a later now
				}
				raise(&newest, l.Fence)
				for p := range pages {
					runtime.Gosched()      // let the other process in
					floor := newest.Load() // taken before the write begins
					id := fmt.Sprintf("%s-%d-%d", who, r, p)
					err = st.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: 1, Lease: l, Records: []cursor.SeenRecord{rec(id, t0)}})
					mu.Lock()
					tried = append(tried, id)
					switch {
					case err == nil:
						if l.Fence < floor {
							t.Errorf("%s committed under fence %d after fence %d was taken", who, l.Fence, floor)
						}
						log.note(who, l.Fence)
						kept = append(kept, id)
					case !errors.Is(err, cursor.ErrLeaseLost):
						t.Errorf("CommitPage by %s: %v", who, err)
					}
					mu.Unlock()
					if err != nil {
						break // lost: acquire again
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	t.Logf("%d of %d pages committed; the others' lease was lost", len(kept), len(tried))
	checkOnly(t, s, tried, kept)
}
