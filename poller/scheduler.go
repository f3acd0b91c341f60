package poller

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// Backoff bounds of a failing resource.
const (
	// MinBackoff is the first wait after a failed cycle of a resource on a
	// cron schedule; interval schedules start from their interval.
	MinBackoff = 30 * time.Second
	// MaxBackoff caps the wait after repeated failures (or the interval,
	// when that is longer).
	MaxBackoff = 15 * time.Minute
	// maxCronJitter bounds the stable delay added to a cron schedule's
	// fire times.
	maxCronJitter = 10 * time.Second
	// StartRate is how many resources a second begin their first cycle
	// when Run starts. Up to StartRate resources all begin at once;
	// beyond, each begins at a stable offset (a hash of its name) within
	// N/StartRate seconds, and within its interval (a minute on a cron
	// schedule), so that a process with thousands of resources does not
	// begin thousands of cycles in the same instant, all waiting on the
	// store and on one another.
	StartRate = 100
)

// Cycler is what the scheduler runs: *Poller implements it.
type Cycler interface {
	Resource() *config.Resource
	Cycle(ctx context.Context, lease cursor.Lease) (CycleResult, error)
}

// Leaser tells which leases this process holds.
type Leaser interface {
	// Lease returns the lease named name while this process holds it.
	Lease(name string) (cursor.Lease, bool)
}

// SchedulerOptions are a Scheduler's collaborators.
type SchedulerOptions struct {
	// Leases says which resources this process polls: one whose lease
	// (cursor.ResourceLease) it does not hold is left to the process that
	// does. Required.
	Leases Leaser
	// Logger receives one line per failure streak and per recovery; nil
	// discards.
	Logger *slog.Logger
	// OnCycle, when set, is called after every cycle, from the resource's
	// goroutine (so calls for one resource never overlap).
	OnCycle func(res CycleResult, err error)
}

// Scheduler runs each resource's cycles on its schedule: one goroutine per
// resource, so a slow or failing resource never delays the others, and a
// resource never has two cycles at once. A resource is polled only while
// this process holds its lease.
//
// Set changes the resources while the scheduler runs. Set, Wake, Resume,
// State, Between and Run may be called from several goroutines.
type Scheduler struct {
	opts SchedulerOptions
	log  *slog.Logger

	mu      sync.Mutex
	loops   map[string]*loop
	removed map[string]*loop // stopped, their cycle perhaps still ending
	run     context.Context  // set while Run runs
	wg      sync.WaitGroup
}

// NewScheduler returns a Scheduler of cyclers (see Set).
func NewScheduler(cyclers []Cycler, opts SchedulerOptions) *Scheduler {
	if opts.Leases == nil {
		panic("poller.NewScheduler: SchedulerOptions.Leases is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{opts: opts, log: log, loops: map[string]*loop{}, removed: map[string]*loop{}}
	s.Set(cyclers)
	return s
}

// loop is the goroutine of one resource.
type loop struct {
	name  string
	wake  chan struct{}
	tasks chan task          // work to do between two cycles; see Between
	stop  context.CancelFunc // ends the loop, and the cycle in hand at its next page
	done  chan struct{}      // closed when the loop has returned; nil until it starts
	start time.Duration      // the wait before the first cycle (see StartRate)
	prev  *loop              // a removed loop of the same name to wait for
	mu    sync.Mutex
	c     Cycler    // the cycler of the next cycle
	state LoopState // as of now
	// missed is set while a cycle that came due has not run for want of
	// the lease: Resume wakes only such loops.
	missed bool
}

// task is a function Between runs in a resource's loop, and where its
// outcome goes.
type task struct {
	fn  func(lease cursor.Lease) error
	out chan error
}

// LoopState is where the loop of one resource stands.
type LoopState struct {
	// Polling is true while a cycle runs; Since is when it began.
	Polling bool
	Since   time.Time
	// Next is when the next cycle is due (after a failure, its back-off);
	// zero before the loop has started.
	Next time.Time
	// Failures counts the cycles that failed in a row.
	Failures int
}

func (l *loop) setState(f func(*LoopState)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.state)
}

func (l *loop) cycler() Cycler {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

// Set makes cyclers the scheduler's resources, matched by name: a new one
// starts polling at once (when Run runs), one no longer in cyclers stops
// (its cycle in hand ends at the next page boundary), and one already
// there runs its next cycle with the new cycler, on the new cycler's
// schedule.
//
// The returned stopped is closed once the loops of the resources removed
// have returned (their cycle in hand ended at a page boundary), at once
// when none was: a caller can then give their leases up without cutting a
// commit short.
func (s *Scheduler) Set(cyclers []Cycler) (stopped <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []chan struct{}
	keep := map[string]bool{}
	for _, c := range cyclers {
		name := c.Resource().Name
		keep[name] = true
		if l, ok := s.loops[name]; ok {
			l.mu.Lock()
			l.c = c
			l.mu.Unlock()
			continue
		}
		l := &loop{name: name, wake: make(chan struct{}, 1), tasks: make(chan task), c: c}
		if old := s.removed[name]; old != nil {
			delete(s.removed, name)
			l.prev = old
		}
		s.loops[name] = l
		if s.run != nil {
			s.startLocked(l)
		}
	}
	for name, l := range s.loops {
		if keep[name] {
			continue
		}
		delete(s.loops, name)
		if l.stop != nil {
			l.stop()
			s.removed[name] = l
			removed = append(removed, l.done)
		}
	}
	out := make(chan struct{})
	go func() {
		defer close(out)
		for _, c := range removed {
			<-c
		}
	}()
	return out
}

// Resources returns the names of the scheduled resources, sorted.
func (s *Scheduler) Resources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.loops))
	for n := range s.loops {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Busy reports whether a cycle of resource is running.
func (s *Scheduler) Busy(resource string) bool {
	s.mu.Lock()
	l, ok := s.loops[resource]
	s.mu.Unlock()
	if !ok {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Polling
}

// Wake asks for a cycle of resource now, or as soon as its cycle in hand
// ends (its lease permitting); false when the scheduler has no such
// resource. With no name it wakes every resource.
func (s *Scheduler) Wake(resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resource != "" {
		l, ok := s.loops[resource]
		if ok {
			l.poke()
		}
		return ok
	}
	for _, l := range s.loops {
		l.poke()
	}
	return len(s.loops) > 0
}

// Resume is Wake for the resources whose leases this process just took:
// of those, a resource that missed a cycle for want of its lease (another
// process held it, or its renewal came late) polls at once; the others
// keep their schedule. So a renewal that comes late after a stall of the
// store starts again only what the stall held up, rather than every
// resource at once.
func (s *Scheduler) Resume(resources []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range resources {
		l, ok := s.loops[name]
		if !ok {
			continue
		}
		l.mu.Lock()
		missed := l.missed
		l.mu.Unlock()
		if missed {
			l.poke()
		}
	}
}

// poke wakes the loop, or leaves it a wake it takes when it next waits.
func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// State returns where the loop of resource stands; false when the
// scheduler has no such resource.
func (s *Scheduler) State(resource string) (LoopState, bool) {
	s.mu.Lock()
	l, ok := s.loops[resource]
	s.mu.Unlock()
	if !ok {
		return LoopState{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, true
}

// ErrNotPolledHere is returned by Between for a resource this process does
// not poll: it is not scheduled, the scheduler is not running, or another
// process holds its lease.
var ErrNotPolledHere = errors.New("resource not polled by this process")

// Between runs fn in the loop of resource between two of its cycles,
// with the resource's lease, and returns fn's error: no cycle of the
// resource runs meanwhile, in this process or (as the lease is held) in
// another. It waits for the cycle in hand to end, or for ctx. A resource
// this process does not poll is ErrNotPolledHere.
func (s *Scheduler) Between(ctx context.Context, resource string, fn func(lease cursor.Lease) error) error {
	s.mu.Lock()
	l, ok := s.loops[resource]
	running := s.run != nil && l != nil && l.done != nil
	s.mu.Unlock()
	if !ok || !running {
		return fmt.Errorf("%w: %s is not scheduled here", ErrNotPolledHere, resource)
	}
	t := task{fn: fn, out: make(chan error, 1)}
	select {
	case l.tasks <- t:
	case <-l.done:
		return fmt.Errorf("%w: %s stopped", ErrNotPolledHere, resource)
	case <-ctx.Done():
		return ctx.Err()
	}
	// The loop runs the task at once: it answers whatever ctx does.
	return <-t.out
}

// Run polls every resource once at once (beyond StartRate resources,
// spread over N/StartRate seconds), then on its schedule, until ctx is
// done; it returns after every running cycle has ended (a cycle stops at
// its next page boundary once ctx is done). Resources that Set adds
// later poll at once.
func (s *Scheduler) Run(ctx context.Context) {
	s.mu.Lock()
	s.run = ctx
	spread := time.Duration(0)
	if len(s.loops) > StartRate {
		spread = time.Duration(len(s.loops)) * time.Second / StartRate
	}
	for _, l := range s.loops {
		l.start = startOffset(l.cycler().Resource(), spread)
		s.startLocked(l)
	}
	s.mu.Unlock()
	<-ctx.Done()
	s.mu.Lock()
	s.run = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// startLocked starts l under Run's context. s.mu is held.
func (s *Scheduler) startLocked(l *loop) {
	ctx, stop := context.WithCancel(s.run)
	l.stop, l.done = stop, make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(l.done)
		defer stop()
		if l.prev != nil && l.prev.done != nil {
			// A removed loop of the same name ends its cycle first: a
			// resource never has two cycles at once.
			select {
			case <-l.prev.done:
			case <-ctx.Done():
				return
			}
		}
		l.prev = nil
		if l.start > 0 {
			next := time.Now().Add(l.start)
			l.setState(func(st *LoopState) { st.Next = next })
			if !s.wait(ctx, l, next) {
				return
			}
		}
		s.loop(ctx, l)
	}()
}

// startOffset is the wait of r before its first cycle when the first
// cycles are spread over spread: a stable hash of its name modulo
// spread, or modulo its interval (a minute on a cron schedule) when
// that is shorter.
func startOffset(r *config.Resource, spread time.Duration) time.Duration {
	if every := r.Schedule.Every; every > 0 && every < spread {
		spread = every
	} else if every <= 0 && spread > time.Minute {
		spread = time.Minute
	}
	if spread <= 0 {
		return 0
	}
	return time.Duration(nameHash(r.Name) % uint64(spread))
}

// nameHash is the stable hash of a resource's name that places it in
// its interval.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

func (s *Scheduler) loop(ctx context.Context, l *loop) {
	log := s.log.With("resource", l.name)
	failures := 0
	lease := cursor.ResourceLease(l.name)
	for {
		c := l.cycler()
		r := c.Resource()
		now := time.Now()
		next := NextRun(r, now)
		// A cycle is due: it is missed until it runs (see Resume), the
		// mark set before the lease is asked so that a lease taken
		// meanwhile finds it.
		l.mu.Lock()
		l.missed = true
		l.mu.Unlock()
		if ls, ok := s.opts.Leases.Lease(lease); ok {
			l.setState(func(st *LoopState) { st.Polling, st.Since, l.missed = true, now, false })
			res, err := c.Cycle(ctx, ls)
			l.setState(func(st *LoopState) { st.Polling = false })
			if ctx.Err() != nil {
				return
			}
			if s.opts.OnCycle != nil {
				s.opts.OnCycle(res, err)
			}
			now = time.Now()
			next = NextRun(r, now)
			switch {
			case errors.Is(err, cursor.ErrLeaseLost):
				// Another process polls it now; the lease keeper says so.
				log.Info("poll stopped: the resource's lease was lost to another process", "error", err)
			case err != nil:
				failures++
				wait := backoff(r.Schedule, failures)
				if failures == 1 {
					log.Error("poll failed; backing off", "error", err, "retry_in", wait)
				}
				if b := now.Add(wait); b.After(next) {
					next = b
				}
			default:
				if failures > 0 {
					log.Info("poll recovered", "failures", failures)
				}
				failures = 0
			}
		}
		l.setState(func(st *LoopState) { st.Next, st.Failures = next, failures })
		if !s.wait(ctx, l, next) {
			return
		}
	}
}

// wait waits until next, a Wake, or the end of ctx (then false), running
// the tasks Between gives it meanwhile.
func (s *Scheduler) wait(ctx context.Context, l *loop, next time.Time) bool {
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-l.wake:
			return true
		case <-t.C:
			return true
		case tk := <-l.tasks:
			ls, ok := s.opts.Leases.Lease(cursor.ResourceLease(l.name))
			if !ok {
				tk.out <- fmt.Errorf("%w: another process holds the lease of %s", ErrNotPolledHere, l.name)
				continue
			}
			tk.out <- tk.fn(ls)
		}
	}
}

// NextRun is when resource r is next polled after now: on an interval
// schedule, the next tick of a grid offset by a stable per-resource jitter
// (a hash of the name modulo the interval), so that many resources spread
// over the interval and keep their phase across restarts; on a cron
// schedule, the next fire time plus a stable jitter of up to 10s.
func NextRun(r *config.Resource, now time.Time) time.Time {
	sum := nameHash(r.Name)
	if every := r.Schedule.Every; every > 0 {
		phase := time.Duration(sum % uint64(every))
		since := now.Sub(time.Unix(0, 0)) - phase
		return now.Add(every - since%every)
	}
	jitter := time.Duration(sum % uint64(maxCronJitter))
	return r.Schedule.Next(now).Add(jitter)
}

// backoff is the least wait after the n-th failure in a row: doubling from
// the interval (or MinBackoff for cron), capped at MaxBackoff or the
// interval when that is longer.
func backoff(s config.Schedule, n int) time.Duration {
	base, limit := s.Every, MaxBackoff
	if base <= 0 {
		base = MinBackoff
	}
	if base > limit {
		limit = base
	}
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
