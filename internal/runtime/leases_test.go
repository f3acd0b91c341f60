package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// TestPlanShares: with three live members, a keeper takes a third of each
// kind of work, keeps what it holds up to its share, gives back its
// surplus but for work in hand, and prefers the same free leases each
// time.
func TestPlanShares(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	live, dead := now.Add(10*time.Second), now.Add(-time.Second)
	k := newKeeper(nil, "me", 15*time.Second, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	var wanted []string
	for i := range 10 {
		wanted = append(wanted, cursor.ResourceLease(fmt.Sprint("r", i)))
	}
	wanted = append(wanted, cursor.DestinationLease("a"), cursor.DestinationLease("b"))
	slices.Sort(wanted)
	all := []cursor.Lease{
		{Name: cursor.MemberLease("x"), Holder: "x", Fence: 1, Expires: live},
		{Name: cursor.MemberLease("y"), Holder: "y", Fence: 1, Expires: live},
		{Name: cursor.MemberLease("gone"), Holder: "gone", Fence: 1, Expires: dead},
		{Name: cursor.ResourceLease("r0"), Holder: "x", Fence: 1, Expires: live},
		{Name: cursor.ResourceLease("r1"), Holder: "y", Fence: 1, Expires: live},
		{Name: cursor.ResourceLease("r2"), Holder: "gone", Fence: 3, Expires: dead},
	}
	ask, release := k.plan(wanted, all, now, nil)
	resources := 0
	for _, n := range ask {
		if strings.HasPrefix(n, cursor.ResourceLease("")) {
			resources++
			if n == cursor.ResourceLease("r0") || n == cursor.ResourceLease("r1") {
				t.Errorf("asked for %s, held by a live member", n)
			}
		}
	}
	// 10 resources, 3 members (the dead one does not count): 4 each at
	// most; 1 destination of 2.
	if resources != 4 || !slices.Contains(ask, cursor.MemberLease("me")) || len(release) != 0 {
		t.Fatalf("ask %v release %v; want 4 resources, 1 destination and the member lease", ask, release)
	}
	again, _ := k.plan(wanted, all, now, nil)
	if !slices.Equal(ask, again) {
		t.Errorf("a second plan asks %v, the first %v: want the same choice", again, ask)
	}

	// Holding 7, it gives 3 back, but not the one in hand.
	var mine []cursor.Lease
	for i := 3; i < 10; i++ {
		mine = append(mine, cursor.Lease{Name: cursor.ResourceLease(fmt.Sprint("r", i)), Holder: "me", Fence: 1, Expires: live})
	}
	busy := cursor.ResourceLease("r9")
	ask, release = k.plan(wanted, append(slices.Clone(all[:3]), mine...), now, func(n string) bool { return n == busy })
	if len(release) != 3 || slices.Contains(release, busy) {
		t.Errorf("holding 7 of 10 with 3 members: released %v, want 3, not the busy %s", release, busy)
	}
	for _, n := range release {
		if slices.Contains(ask, n) {
			t.Errorf("%s both renewed and released", n)
		}
	}
}

// TestLateRenewalRestartsWork: a lease renewed after it ran out here (the
// store was slow, the process paused) is handed to onTake like a lease
// just taken, so that the work that waited on it starts again at once.
func TestLateRenewalRestartsWork(t *testing.T) {
	ctx := context.Background()
	store, err := cursor.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	k := newKeeper(store, "me", 3*time.Second, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	var taken [][]string
	k.setOnTake(func(names []string) { taken = append(taken, names) })
	name := cursor.ResourceLease("r")
	k.want(ctx, []string{name})
	if err := k.tick(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second) // renewed in time: nothing to restart
	k.tick(ctx)
	now = now.Add(10 * time.Second) // ran out before this renewal
	if _, ok := k.Lease(name); ok {
		t.Fatal("Lease says a lease past its expiry is held")
	}
	k.tick(ctx)
	if _, ok := k.Lease(name); !ok || len(taken) != 2 {
		t.Errorf("after a late renewal: held %v, onTake calls %v; want held, and onTake at the take and at the late renewal", ok, taken)
	}
}

// batchSizes is a store that notes the number of leases of each
// AcquireLeases.
type batchSizes struct {
	cursor.Store
	sizes []int
}

func (b *batchSizes) AcquireLeases(ctx context.Context, holder string, names []string, ttl time.Duration, now time.Time) ([]cursor.Lease, error) {
	b.sizes = append(b.sizes, len(names))
	return b.Store.AcquireLeases(ctx, holder, names, ttl, now)
}

// TestManyLeasesRenewInBatches: a daemon's keeper with thousands of
// leases takes and renews them all, leaseBatch at most in one write, so
// that the cycles waiting on the store's writer are not held up for the
// whole renewal.
func TestManyLeasesRenewInBatches(t *testing.T) {
	ctx := context.Background()
	sqlite, err := cursor.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sqlite.Close()
	store := &batchSizes{Store: sqlite}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	k := newKeeper(store, "me", 15*time.Second, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	k.setBalance(nil)
	var names []string
	for i := range 2*leaseBatch + 500 {
		names = append(names, cursor.ResourceLease(fmt.Sprint("r", i)))
	}
	k.want(ctx, names)
	for range 2 { // take, then renew
		store.sizes = nil
		if err := k.tick(ctx); err != nil {
			t.Fatal(err)
		}
		if len(store.sizes) != 3 || slices.Max(store.sizes) > leaseBatch {
			t.Errorf("writes of %v leases; want 3 of at most %d", store.sizes, leaseBatch)
		}
		for _, n := range names {
			if l, ok := k.Lease(n); !ok || !l.Expires.Equal(now.Add(15*time.Second)) {
				t.Fatalf("lease %s: %+v held %v; want held until %v", n, l, ok, now.Add(15*time.Second))
			}
		}
		now = now.Add(5 * time.Second)
	}
}
