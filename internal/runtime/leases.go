package runtime

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// DefaultLeaseTTL is how long a lease lasts unless renewed, unless
// Options.LeaseTTL (state.lease_ttl) says otherwise. The keeper renews
// every third of it, so a process may miss two renewals before another
// one can take its work over; a process that stops takes its work with
// it for at most this long (a clean stop releases it at once).
const DefaultLeaseTTL = config.DefaultLeaseTTL

// releaseTimeout bounds releasing the leases when the keeper stops.
const releaseTimeout = 5 * time.Second

// NewHolder returns a lease holder name for this process: its host, its
// process id and a random part, so that two processes never share one.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), rand.Text()[:6])
}

// keeper holds the leases of what this process wants to work on: it takes
// those that are free, renews those it has, and gives them back when it
// stops. Lease is what the scheduler and the delivery engine ask before
// working. Safe for concurrent use.
type keeper struct {
	store  cursor.Store
	holder string
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger
	// onTake is called with the names of leases just taken (not those
	// renewed), outside the keeper's lock.
	onTake func(names []string)

	mu     sync.Mutex
	wanted []string
	held   map[string]cursor.Lease
	// others are the leases wanted but held elsewhere, as last seen; a
	// change of holder is logged once.
	others map[string]string
	failed bool // the last renewal failed
}

func newKeeper(store cursor.Store, holder string, ttl time.Duration, now func() time.Time, log *slog.Logger) *keeper {
	return &keeper{
		store: store, holder: holder, ttl: ttl, now: now, log: log,
		held: map[string]cursor.Lease{}, others: map[string]string{},
	}
}

// setOnTake sets the function called with the leases the keeper takes.
func (k *keeper) setOnTake(f func(names []string)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.onTake = f
}

// Lease returns the lease named name while this process holds it: taken
// and not yet expired by this process's clock (a renewal that cannot
// reach the store lets it run out, and the work stops).
func (k *keeper) Lease(name string) (cursor.Lease, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l, ok := k.held[name]
	if !ok || !l.Expires.After(k.now()) {
		return cursor.Lease{}, false
	}
	return l, true
}

// Holders returns who holds each lease wanted but not held here.
func (k *keeper) Holders() map[string]string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]string, len(k.others))
	for n, h := range k.others {
		out[n] = h
	}
	return out
}

// want sets the leases to hold. Those no longer wanted are released at
// once (the work they covered has stopped, or is stopping); the new ones
// are taken at the next tick. added reports new ones.
func (k *keeper) want(ctx context.Context, names []string) (added bool) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	k.mu.Lock()
	var drop []string
	for n := range k.held {
		if _, ok := slices.BinarySearch(names, n); !ok {
			drop = append(drop, n)
			delete(k.held, n)
		}
	}
	for n := range k.others {
		if _, ok := slices.BinarySearch(names, n); !ok {
			delete(k.others, n)
		}
	}
	for _, n := range names {
		if _, ok := slices.BinarySearch(k.wanted, n); !ok {
			added = true
		}
	}
	k.wanted = names
	k.mu.Unlock()
	if len(drop) > 0 {
		if err := k.store.ReleaseLeases(ctx, k.holder, drop); err != nil {
			k.log.Warn("release leases no longer wanted; they expire on their own", "error", err)
		}
	}
	return added
}

// tick takes the wanted leases that are free and renews those held, in
// one write. A lease held here that the store gives to another holder is
// lost: it is dropped (the writes under it already fail).
func (k *keeper) tick(ctx context.Context) error {
	k.mu.Lock()
	wanted := slices.Clone(k.wanted)
	k.mu.Unlock()
	if len(wanted) == 0 {
		return nil
	}
	now := k.now()
	got, err := k.store.AcquireLeases(ctx, k.holder, wanted, k.ttl, now)
	k.mu.Lock()
	if err != nil {
		first := !k.failed
		k.failed = true
		k.mu.Unlock()
		if first {
			k.log.Error("renew leases; the work stops as they run out unless the store answers again", "error", err)
		}
		return err
	}
	if k.failed {
		k.log.Info("renewing leases again")
		k.failed = false
	}
	var taken, lost []string
	type change struct{ name, holder string }
	var elsewhere []change
	for _, l := range got {
		if _, stillWanted := slices.BinarySearch(k.wanted, l.Name); !stillWanted {
			continue // unwanted meanwhile; released by want
		}
		if l.Holder == k.holder {
			if _, had := k.held[l.Name]; !had {
				taken = append(taken, l.Name)
			}
			k.held[l.Name] = l
			delete(k.others, l.Name)
			continue
		}
		if _, had := k.held[l.Name]; had {
			lost = append(lost, l.Name)
			delete(k.held, l.Name)
		}
		if k.others[l.Name] != l.Holder {
			k.others[l.Name] = l.Holder
			elsewhere = append(elsewhere, change{l.Name, l.Holder})
		}
	}
	onTake := k.onTake
	k.mu.Unlock()
	for _, n := range lost {
		k.log.Warn("lease lost to another process: it does this work now", "lease", n)
	}
	for _, c := range elsewhere {
		k.log.Info("another process holds this lease: this one takes the work over if it stops renewing it",
			"lease", c.name, "holder", c.holder)
	}
	if len(taken) > 0 {
		k.log.Debug("leases taken", "leases", taken)
		if onTake != nil {
			onTake(taken)
		}
	}
	return nil
}

// run ticks every third of the lease's life until ctx is done. The
// leases stay held: the work under them may still be committing its last
// page; releaseAll gives them back when it has stopped.
func (k *keeper) run(ctx context.Context) {
	every := k.ttl / 3
	for {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		k.tick(ctx)
	}
}

// releaseAll gives back every lease held, so that another process can
// take the work over at once.
func (k *keeper) releaseAll() {
	k.mu.Lock()
	names := make([]string, 0, len(k.held))
	for n := range k.held {
		names = append(names, n)
	}
	clear(k.held)
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := k.store.ReleaseLeases(ctx, k.holder, names); err != nil {
		k.log.Warn("release leases at stop; they expire on their own", "error", err)
	}
}
