// Package storetest is the conformance suite of pollhook's state store:
// the behaviour every backend of [cursor.Store] must have, whatever holds
// its data. The poller, the delivery engine and the CLI rely on this
// behaviour, so a backend that passes the suite can take the place of
// another. A backend's own tests run it:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Backend{
//			Open:   func(t *testing.T) cursor.Store { /* a fresh, empty store */ },
//			Reopen: func(t *testing.T, s cursor.Store) cursor.Store { /* s's data, opened again */ },
//		})
//	}
//
// [Run] runs one subtest per behaviour, grouped by what they test
// (Resources, Outbox, Content, Deliveries, Subscriptions, Leases,
// Health, History); each opens the stores it needs and runs in parallel
// with the others. Time is passed to the store explicitly (a lease's now,
// a delivery's due time): nothing sleeps but the test of WatchOutbox,
// which watches commits as they happen.
//
// [Backend.Open] is all a backend must give. [Backend.Reopen] adds the
// tests of data surviving a restart (Resources/ReopenKeepsData,
// Resources/BeginCycleCountsAfterReopen, Subscriptions/SurviveReopen) and
// of two processes, each with its own store, sharing one lease
// (Leases/TwoHoldersRace/two_stores; Leases/TwoHoldersAlternate then
// runs its second process on the second store too). Without it they are
// skipped.
//
// What the suite does not test is each backend's own: how it opens and
// migrates, how it reports a full disk or a lost connection, its backup.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// Backend opens the stores of one backend for the suite.
type Backend struct {
	// Open returns a fresh, empty store, for t alone: no other call of
	// Open shares its data. The suite may close it; the backend closes it
	// (again) and removes its data when t ends (t.Cleanup).
	Open func(t *testing.T) cursor.Store
	// Reopen opens the data of s once more and returns the new store, as
	// another process, or the same one restarted, would open it. s may
	// still be open: two processes then share one store. The backend
	// closes the new store when t ends. A nil Reopen skips the tests that
	// need one (see the package comment).
	Reopen func(t *testing.T, s cursor.Store) cursor.Store
}

// test is one conformance test.
type test struct {
	name string
	run  func(t *testing.T, b Backend)
}

// Run runs the conformance suite against b: one subtest per behaviour,
// in parallel.
func Run(t *testing.T, b Backend) {
	if b.Open == nil {
		t.Fatal("storetest: Backend.Open is nil")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"Resources", resourceTests},
		{"Outbox", outboxTests},
		{"Content", contentTests},
		{"Deliveries", deliveryTests},
		{"Subscriptions", subscriptionTests},
		{"Leases", leaseTests},
		{"Health", healthTests},
		{"History", historyTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.run(t, b)
				})
			}
		})
	}
}

// reopen opens s again with b.Reopen, or skips t when the backend cannot.
func (b Backend) reopen(t *testing.T, s cursor.Store) cursor.Store {
	t.Helper()
	if b.Reopen == nil {
		t.Skip("the backend has no Reopen")
	}
	return b.Reopen(t, s)
}

// t0 is the suite's now; every time it passes is t0 or relative to it.
var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// holder holds the leases the suite's writes are made under, for
// leaseTTL from t0: long enough for any test.
const (
	holder   = "storetest"
	leaseTTL = 24 * time.Hour
)

// hold acquires lease name for holder at t0 (or renews it: its fence is
// kept) and returns it.
func hold(t testing.TB, s cursor.Store, name string) cursor.Lease {
	t.Helper()
	ls, err := s.AcquireLeases(context.Background(), holder, []string{name}, leaseTTL, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Holder != holder || ls[0].Name != name {
		t.Fatalf("acquire lease %s: %+v, want it held by %s", name, ls, holder)
	}
	return ls[0]
}

// commit commits p under the lease of its resource.
func commit(t testing.TB, s cursor.Store, p cursor.Page) {
	t.Helper()
	p.Lease = hold(t, s, cursor.ResourceLease(p.Resource))
	if err := s.CommitPage(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// finish finishes f.Cycle under the lease of its resource.
func finish(t testing.TB, s cursor.Store, f cursor.Finish) cursor.FinishResult {
	t.Helper()
	f.Lease = hold(t, s, cursor.ResourceLease(f.Resource))
	res, err := s.FinishCycle(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func event(resource, id, typ string) cursor.Event {
	return cursor.Event{
		ID: id, Type: typ, Resource: resource, Source: "keap", Object: "contact",
		ObjectID: id, OccurredAt: t0, DetectedAt: t0.Add(time.Minute),
		Data: json.RawMessage(`{"id":"` + id + `"}`),
	}
}

func rec(id string, updated time.Time) cursor.SeenRecord {
	return cursor.SeenRecord{ID: id, Seen: cursor.Seen{Updated: updated, Hash: "h-" + id}}
}

// cycle runs one complete cycle that sees ids, as the poller does, under
// the resource's lease.
func cycle(t testing.TB, s cursor.Store, resource string, ids []string, f cursor.Finish) cursor.FinishResult {
	t.Helper()
	lease := hold(t, s, cursor.ResourceLease(resource))
	n, err := s.BeginCycle(context.Background(), resource, lease)
	if err != nil {
		t.Fatal(err)
	}
	p := cursor.Page{Resource: resource, Cycle: n}
	for _, id := range ids {
		p.Records = append(p.Records, rec(id, t0))
	}
	commit(t, s, p)
	f.Resource, f.Cycle = resource, n
	if f.Deleted == nil {
		f.Deleted = func(id string, _ cursor.Seen) cursor.Event { return event(resource, "del-"+id, "contact.deleted") }
	}
	return finish(t, s, f)
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

func allEvents(t testing.TB, s cursor.Store, f cursor.EventFilter) []cursor.Event {
	t.Helper()
	var out []cursor.Event
	if err := s.EachEvent(context.Background(), f, func(e cursor.Event) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func eventIDs(evs []cursor.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func state(t testing.TB, s cursor.Store, resource string) cursor.ResourceState {
	t.Helper()
	st, err := s.ResourceState(context.Background(), resource)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
