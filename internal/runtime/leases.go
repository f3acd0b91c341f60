package runtime

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// DefaultLeaseTTL is how long a lease lasts unless renewed, unless
// Options.LeaseTTL (state.lease) says otherwise. The keeper renews
// every third of it, so a process may miss two renewals before another
// one can take its work over; a process that stops takes its work with
// it for at most this long (a clean stop releases it at once).
const DefaultLeaseTTL = config.DefaultLease

// releaseTimeout bounds releasing the leases when the keeper stops.
const releaseTimeout = 5 * time.Second

// leaseBatch bounds the leases taken or renewed in one write. A process
// with thousands of resources renews thousands of leases every tick; in
// one write that holds SQLite's one writer for a tenth of a second or
// more at 10,000, and every cycle waiting to commit waits that long. In
// writes of at most leaseBatch, the cycles get the writer in between.
const leaseBatch = 1000

// NewHolder returns a lease holder name for this process: its host, its
// process id and a random part, so that two processes never share one.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), rand.Text()[:6])
}

// HolderHost returns the host of a holder name that NewHolder made, or ""
// when holder is not one.
func HolderHost(holder string) string {
	host, rest, ok := strings.Cut(holder, ":")
	if !ok || strings.Count(rest, ":") != 1 {
		return ""
	}
	return host
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
	// others are the leases wanted but held elsewhere, as last seen.
	others map[string]string
	failed bool // the last renewal failed
	// balance makes the keeper a member that takes only its share; busy
	// tells the work in hand, which is not given back.
	balance bool
	busy    func(name string) bool
	summary string // the last "held of wanted" logged
}

func newKeeper(store cursor.Store, holder string, ttl time.Duration, now func() time.Time, log *slog.Logger) *keeper {
	return &keeper{
		store: store, holder: holder, ttl: ttl, now: now, log: log,
		held: map[string]cursor.Lease{}, others: map[string]string{},
	}
}

// setBalance makes the keeper a member that takes only its share of the
// work (see tick); busy tells the work in hand.
func (k *keeper) setBalance(busy func(name string) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.balance, k.busy = true, busy
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
// writes of leaseBatch. A lease held here that the store gives to another holder is
// lost: it is dropped (the writes under it already fail).
//
// A balancing keeper (the daemon's) also holds a member lease, which
// tells the other processes it is alive, and takes of each kind of work
// (resources, destinations) no more than its share: the wanted leases of
// that kind divided by the live members, rounded up. It gives back what
// it holds beyond its share, but for work in hand (busy), so that
// processes started one after another end up with even shares. Among
// free leases it prefers those that hash highest with its name
// (rendezvous hashing), so that shares move little when members come and
// go.
func (k *keeper) tick(ctx context.Context) error {
	k.mu.Lock()
	wanted := slices.Clone(k.wanted)
	balance, busy := k.balance, k.busy
	k.mu.Unlock()
	if len(wanted) == 0 {
		return nil
	}
	now := k.now()
	ask, release := wanted, []string(nil)
	if balance {
		all, err := k.store.Leases(ctx)
		if err != nil {
			return k.failure(err)
		}
		ask, release = k.plan(wanted, all, now, busy)
	}
	got, err := k.acquire(ctx, ask, now)
	if err != nil {
		return k.failure(err)
	}
	if len(release) > 0 {
		if err := k.store.ReleaseLeases(ctx, k.holder, release); err != nil {
			return k.failure(err)
		}
	}
	k.mu.Lock()
	if k.failed {
		k.log.Info("renewing leases again")
		k.failed = false
	}
	for _, n := range release {
		delete(k.held, n)
	}
	var taken, lost []string
	for _, l := range got {
		if _, stillWanted := slices.BinarySearch(k.wanted, l.Name); !stillWanted {
			continue // unwanted meanwhile (released by want), or the member lease
		}
		if l.Holder == k.holder {
			// Taken, or renewed after it ran out here (a late renewal:
			// Lease said no meanwhile, and the work waiting on it
			// must start again now).
			if had, ok := k.held[l.Name]; !ok || !had.Expires.After(now) {
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
		k.others[l.Name] = l.Holder
	}
	summary := fmt.Sprintf("%d of %d", len(k.held), len(k.wanted))
	changed := summary != k.summary
	k.summary = summary
	onTake := k.onTake
	k.mu.Unlock()
	for _, n := range lost {
		k.log.Warn("lease lost to another process: it does this work now", "lease", n)
	}
	if changed {
		k.log.Info("holding leases", "held", summary, "released_to_balance", len(release))
	}
	if len(taken) > 0 {
		k.log.Debug("leases taken", "leases", taken)
		if onTake != nil {
			onTake(taken)
		}
	}
	return nil
}

// acquire takes or renews the leases of names, leaseBatch at a time, and
// returns their state after. On error, the writes already made stand: a
// lease renewed keeps its fence, and one taken is renewed, and taken
// here, at the next tick.
func (k *keeper) acquire(ctx context.Context, names []string, now time.Time) ([]cursor.Lease, error) {
	var got []cursor.Lease
	for batch := range slices.Chunk(names, leaseBatch) {
		ls, err := k.store.AcquireLeases(ctx, k.holder, batch, k.ttl, now)
		if err != nil {
			return nil, err
		}
		got = append(got, ls...)
	}
	return got, nil
}

// failure notes a failed renewal, logging the first of a streak.
func (k *keeper) failure(err error) error {
	k.mu.Lock()
	first := !k.failed
	k.failed = true
	k.mu.Unlock()
	if first {
		k.log.Error("renew leases; the work stops as they run out unless the store answers again", "error", err)
	}
	return err
}

// plan decides, from the store's leases all, which of wanted to ask for
// (those held here to renew, and free ones up to the share) and which of
// those held here to give back to balance the work; the member lease is
// asked for too.
func (k *keeper) plan(wanted []string, all []cursor.Lease, now time.Time, busy func(string) bool) (ask, release []string) {
	state := make(map[string]cursor.Lease, len(all))
	members := map[string]bool{k.holder: true}
	for _, l := range all {
		state[l.Name] = l
		if strings.HasPrefix(l.Name, cursor.MemberLease("")) && l.Held(now) {
			members[l.Holder] = true
		}
	}
	ask = []string{cursor.MemberLease(k.holder)}
	groups := map[string][]string{}
	for _, n := range wanted {
		kind, _, _ := strings.Cut(n, "/")
		groups[kind] = append(groups[kind], n)
	}
	kinds := slices.Sorted(maps.Keys(groups))
	for _, kind := range kinds {
		names := groups[kind]
		share := (len(names) + len(members) - 1) / len(members)
		var mine, free []string
		for _, n := range names {
			l, ok := state[n]
			switch {
			case ok && l.Holder == k.holder && l.Expires.After(now):
				mine = append(mine, n)
			case !ok || !l.Held(now):
				free = append(free, n)
			}
		}
		// Give back the surplus the others want most, but not work in
		// hand; take the free leases this process wants most.
		k.rank(mine)
		for len(mine) > share {
			i := len(mine) - 1
			for i >= 0 && busy != nil && busy(mine[i]) {
				i--
			}
			if i < 0 {
				break
			}
			release = append(release, mine[i])
			mine = slices.Delete(mine, i, i+1)
		}
		k.rank(free)
		room := max(0, share-len(mine))
		ask = append(ask, mine...)
		ask = append(ask, free[:min(room, len(free))]...)
	}
	return ask, release
}

// rank sorts names by how much this process wants them, most first: a
// hash of the holder and the name (rendezvous hashing).
func (k *keeper) rank(names []string) {
	// Each name is hashed once, not at every comparison of the sort.
	type scored struct {
		name  string
		score uint64
	}
	ss := make([]scored, len(names))
	for i, n := range names {
		h := fnv.New64a()
		h.Write([]byte(k.holder))
		h.Write([]byte{0})
		h.Write([]byte(n))
		ss[i] = scored{n, h.Sum64()}
	}
	slices.SortFunc(ss, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	for i := range ss {
		names[i] = ss[i].name
	}
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
	if k.balance {
		names = append(names, cursor.MemberLease(k.holder))
	}
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := k.store.ReleaseLeases(ctx, k.holder, names); err != nil {
		k.log.Warn("release leases at stop; they expire on their own", "error", err)
	}
}
