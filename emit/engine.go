package emit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// RecheckInterval is the longest a destination's loop waits, when not
// woken, before it looks at the store again: for work another process
// queued (a replay, an enabled destination, events of `pollhook once`)
// and for a lease it does not hold.
const RecheckInterval = 30 * time.Second

// Bounds of the engine's own waits.
const (
	// minErrorBackoff and maxErrorBackoff bound the wait after a step
	// failed on the store; it doubles per failure in a row.
	minErrorBackoff = time.Second
	maxErrorBackoff = time.Minute
	// recordTimeout bounds writing the outcome of a request, which goes on
	// after the engine is stopped so that a delivered event is recorded.
	recordTimeout = 10 * time.Second
	// DefaultStopGrace is how long a request under way when the engine
	// stops may still take to be answered, unless EngineOptions.StopGrace
	// says otherwise.
	DefaultStopGrace = 5 * time.Second
	// minPage and maxPage bound how many due deliveries an unordered
	// destination reads at a time.
	minPage = 256
	maxPage = 10000
)

// DeliveryStore is the state the engine delivers from and records to;
// every cursor.Store implements it. Its methods must be safe for
// concurrent use.
type DeliveryStore interface {
	EnsureDestination(ctx context.Context, name string, since time.Time) (cursor.DestinationState, error)
	Destination(ctx context.Context, name string) (cursor.DestinationState, error)
	Fanout(ctx context.Context, dest string, match func(cursor.Event) bool, now time.Time) (int, error)
	Pending(ctx context.Context, q cursor.PendingQuery) ([]cursor.PendingDelivery, error)
	NextDue(ctx context.Context, dest string, after time.Time) (time.Time, bool, error)
	RecordOutcomes(ctx context.Context, lease cursor.Lease, outcomes []cursor.Outcome) error
	DisableDestination(ctx context.Context, name, reason string, at time.Time) error
}

var _ DeliveryStore = cursor.Store(nil)

// Leaser tells which leases this process holds.
type Leaser interface {
	// Lease returns the lease named name while this process holds it.
	Lease(name string) (cursor.Lease, bool)
}

// EngineOptions are what an Engine takes from its surroundings. Zero fields
// get defaults, but for Leases.
type EngineOptions struct {
	// Leases says which destinations this process delivers to: one whose
	// lease (cursor.DestinationLease) it does not hold is left to the
	// process that does. Required.
	Leases Leaser
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets delivery failures, recoveries, dead events and disabled
	// destinations; nil discards them.
	Logger *slog.Logger
	// Metrics records attempts and latency; nil records nothing.
	Metrics *Metrics
	// Rand returns a number in [0, 1) for the ±10% jitter of retry waits;
	// nil means math/rand/v2.
	Rand func() float64
	// OnGone, when set, is called after a destination answered 410 Gone
	// and was disabled (never for a format whose 410 does not disable);
	// OnDead after an event's last attempt failed. Both are called from
	// the destination's loop, after the outcome is recorded: REST Hooks
	// subscriptions become Inactive through them.
	OnGone func(destination, reason string)
	OnDead func(destination, eventID string)
	// StopGrace is how long a request under way when the engine stops
	// (its context done) may still take to be answered and recorded,
	// within the destination's timeout; 0 means DefaultStopGrace. One cut
	// short is not recorded: the receiver may have had it, and gets it
	// again, under the same webhook-id, from whichever process delivers
	// next.
	StopGrace time.Duration
}

// StepResult counts what a Step did.
type StepResult struct {
	// Queued is how many deliveries were queued from the outbox.
	Queued int
	// Filtered is how many events of the types a destination takes its
	// filter kept from it (they are not queued for it).
	Filtered int
	// Requests is how many requests (or writes) were made.
	Requests int
	// Delivered, Failed and Dead count events: delivered, failed and to
	// be retried, failed for the last time.
	Delivered, Failed, Dead int
	// Disabled is how many destinations are disabled.
	Disabled int
	// Elsewhere is how many destinations another process delivers to
	// (it holds their lease).
	Elsewhere int
	// Next is the earliest time a pending delivery of an enabled
	// destination is due (or a held batch is to go); zero when none is
	// pending.
	Next time.Time
}

func (r *StepResult) add(o StepResult) {
	r.Queued += o.Queued
	r.Filtered += o.Filtered
	r.Requests += o.Requests
	r.Delivered += o.Delivered
	r.Failed += o.Failed
	r.Dead += o.Dead
	r.Disabled += o.Disabled
	r.Elsewhere += o.Elsewhere
	r.next(o.Next)
}

// next lowers r.Next to t.
func (r *StepResult) next(t time.Time) {
	if !t.IsZero() && (r.Next.IsZero() || t.Before(r.Next)) {
		r.Next = t
	}
}

// Engine delivers the outbox to a changing set of destinations, at least
// once: it queues each new outbox event for every destination whose events
// globs match it and whose filter passes it (see [Destination.Accepts]; an
// event a filter keeps out is counted, and never queued for that
// destination), sends due deliveries (batched, in order or not, as each
// destination is configured), retries failures on the destination's
// schedule, disables a destination that answers 410 Gone (unless its
// format says otherwise), and records every attempt in the store. Because
// the queue is in the store, a restart resumes where it stopped; an event
// sent but not yet recorded as delivered when the process stopped is sent
// again, with the same webhook-id.
//
// A destination is delivered to only while this process holds its lease
// (see [EngineOptions.Leases]), and its outcomes are recorded under that
// lease: two processes never both deliver to one destination, and one
// that lost the lease records nothing (the new holder sends again).
//
// [Engine.Set] changes the destinations while the engine runs: one added
// starts at once, one removed stops after the requests it has in flight
// are answered and recorded, one whose configuration changed takes the
// new one at its next step; the others go on undisturbed. A destination
// first seen by the store receives the events detected from the moment it
// was added to the engine (see [cursor.Store.EnsureDestination]); older
// ones can be replayed to it. A batch's max_wait counts from when its
// oldest event was queued for the destination; a retried batch does not
// wait again.
//
// Set, Step, Run and Notify may be called from several goroutines; the
// steps of one destination never overlap.
type Engine struct {
	store  DeliveryStore
	leases Leaser
	now    func() time.Time
	rand   func() float64
	log    *slog.Logger
	m      *Metrics
	onGone func(destination, reason string)
	onDead func(destination, eventID string)
	grace  time.Duration // EngineOptions.StopGrace

	mu       sync.Mutex
	workers  map[string]*worker
	stopping map[string]*worker // removed, their loop perhaps still running
	run      context.Context    // set while Run runs
	loops    sync.WaitGroup     // destination loops started by Run or Set
}

// NewEngine returns an engine that delivers from store to dests (see Set).
// It does not touch the store until the first Step or Run.
func NewEngine(store DeliveryStore, dests []*Destination, opts EngineOptions) *Engine {
	e := &Engine{
		store:    store,
		leases:   opts.Leases,
		now:      opts.Now,
		rand:     opts.Rand,
		log:      opts.Logger,
		m:        opts.Metrics,
		onGone:   opts.OnGone,
		onDead:   opts.OnDead,
		grace:    opts.StopGrace,
		workers:  map[string]*worker{},
		stopping: map[string]*worker{},
	}
	if e.leases == nil {
		panic("emit.NewEngine: EngineOptions.Leases is required")
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Float64
	}
	if e.grace <= 0 {
		e.grace = DefaultStopGrace
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.Set(dests)
	return e
}

// Set makes dests the engine's destinations, matched by name: a new name
// is added, a name no longer in dests is removed, and a destination whose
// configuration (or transport, or recipient) differs replaces the one of
// its name. The engine owns the destinations it is given: it closes them
// when they are removed or replaced, and drops (closes) one that equals
// the destination it already has. Names must be unique.
//
// The removed destinations stop after the requests they have in flight
// are answered and recorded; the returned stopped is closed then (at once
// when none was removed), so that a caller can give up their leases, or
// delete them from the store, without cutting a delivery short.
func (e *Engine) Set(dests []*Destination) (stopped <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var removed []chan struct{}
	keep := make(map[string]bool, len(dests))
	for _, d := range dests {
		name := d.Name()
		keep[name] = true
		if w, ok := e.workers[name]; ok {
			w.setDestination(d)
			continue
		}
		w := e.newWorker(d)
		if e.run != nil {
			w.log.Info("destination added: it receives the events detected from now on")
		}
		if old := e.stopping[name]; old != nil {
			delete(e.stopping, name)
			w.prev = old
		}
		e.workers[name] = w
		if e.run != nil {
			e.startLocked(w)
		}
	}
	for name, w := range e.workers {
		if keep[name] {
			continue
		}
		delete(e.workers, name)
		w.log.Info("destination removed: it stops once its requests in flight are answered")
		if w.remove() {
			e.stopping[name] = w
			removed = append(removed, w.done)
		}
		e.m.forget(name)
	}
	return allClosed(removed)
}

// allClosed returns a channel closed once every one of chans is.
func allClosed(chans []chan struct{}) <-chan struct{} {
	out := make(chan struct{})
	go func() {
		defer close(out)
		for _, c := range chans {
			<-c
		}
	}()
	return out
}

// Destinations returns the names of the engine's destinations, sorted.
func (e *Engine) Destinations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	names := make([]string, 0, len(e.workers))
	for n := range e.workers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Busy reports whether destination name is in the middle of a pass
// (sending, or recording what it sent).
func (e *Engine) Busy(name string) bool {
	e.mu.Lock()
	w, ok := e.workers[name]
	e.mu.Unlock()
	return ok && w.busy.Load()
}

// current returns the workers, for a pass over all of them.
func (e *Engine) current() []*worker {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*worker, 0, len(e.workers))
	for _, w := range e.workers {
		out = append(out, w)
	}
	return out
}

// Notify wakes the destinations' loops to look for new events now: call
// it after a poll committed events, or after a lease was taken. It never
// blocks.
func (e *Engine) Notify() {
	for _, w := range e.current() {
		w.poke()
	}
}

// Step makes one pass over every destination, concurrently: it queues the
// new outbox events, then sends everything due at Now (holding a partial
// batch whose max_wait has not passed), and records the outcomes. It
// returns when every destination is done, with the counts and the earliest
// time something is due next. The errors of the destinations whose pass
// failed on the store are joined; the others' work is done and counted.
func (e *Engine) Step(ctx context.Context) (StepResult, error) {
	workers := e.current()
	results := make([]StepResult, len(workers))
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() { results[i], _, errs[i] = w.step(ctx) })
	}
	wg.Wait()
	var res StepResult
	for _, r := range results {
		res.add(r)
	}
	return res, errors.Join(errs...)
}

// Run delivers until ctx is done, then returns nil once every
// destination's loop has stopped. Each destination has its own loop, so a
// slow or failing destination never holds up another: it steps, then
// waits for its next due time, a batch's max_wait, a Notify, or at most
// RecheckInterval. A failure of the store is logged once and retried with
// a growing wait. When ctx is done, requests in flight are cancelled;
// their events stay pending and are sent again by the next run.
// Destinations added by Set while Run runs start at once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.run != nil {
		e.mu.Unlock()
		return errors.New("emit: Engine.Run called twice")
	}
	e.run = ctx
	for _, w := range e.workers {
		e.startLocked(w)
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.mu.Lock()
	e.run = nil
	e.mu.Unlock()
	e.loops.Wait()
	return nil
}

// startLocked starts w's loop under Run's context. e.mu is held.
func (e *Engine) startLocked(w *worker) {
	ctx := e.run
	w.done = make(chan struct{})
	e.loops.Add(1)
	go func() {
		defer e.loops.Done()
		defer close(w.done)
		if w.prev != nil && w.prev.done != nil {
			// A worker of the same name, removed earlier, finishes
			// first: one destination never has two loops.
			select {
			case <-w.prev.done:
			case <-ctx.Done():
				return
			}
			w.prev = nil
		}
		w.loop(ctx)
	}()
}

// Close closes every destination of the engine (their files and idle
// connections). Call it after Run has returned and no Step runs.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, w := range e.workers {
		delete(e.workers, name)
		w.closeDestinations()
	}
}

// target is a destination with what the engine derives from its
// configuration.
type target struct {
	d        *Destination
	cfg      *config.Destination
	batch    int // events a request
	inFlight int
	ordered  bool
	// oneType is true when a body holds events of one type (keap).
	oneType bool
	// goneDisables is true when a 410 Gone disables the destination;
	// false for format pipedrive, where a 410 is an ordinary failure.
	goneDisables bool
	maxStep      time.Duration // the largest step of the retry schedule
}

func newTarget(d *Destination) *target {
	cfg := d.Config()
	f := d.Format()
	t := &target{
		d:        d,
		cfg:      cfg,
		batch:    max(cfg.Batch.MaxEvents, 1),
		inFlight: max(cfg.MaxInFlight, 1),
		ordered:  cfg.Ordering == config.OrderingOrdered,
		oneType:  f.OneType(),
		// A 410 does not disable every format's destination (Pipedrive
		// removes its webhooks only after days without a success).
		goneDisables: f.GoneDisables(),
	}
	if n := f.MaxEvents(); n > 0 {
		t.batch = min(t.batch, n)
	}
	for _, s := range cfg.Retry.Schedule {
		t.maxStep = max(t.maxStep, s.D())
	}
	return t
}

// worker delivers to one destination.
type worker struct {
	e     *Engine
	name  string
	lease string // the name of its lease
	log   *slog.Logger
	added time.Time // when the engine got the destination
	wake  chan struct{}
	quit  chan struct{} // closed when the destination is removed
	done  chan struct{} // closed when the loop has returned; nil until it starts
	prev  *worker       // a removed worker of the same name to wait for

	tmu  sync.Mutex
	t    *target // the destination in use
	next *target // a replacement, taken at the next step

	mu      sync.Mutex  // held by a step
	busy    atomic.Bool // a step runs
	ensured bool

	smu      sync.Mutex // guards the fields below, which a step's requests share
	disabled bool       // as last seen in the store, or since a 410
	failing  int        // failed requests in the current streak
}

// newWorker returns the worker of d. e.mu is held.
func (e *Engine) newWorker(d *Destination) *worker {
	w := &worker{
		e:     e,
		name:  d.Name(),
		lease: cursor.DestinationLease(d.Name()),
		log:   e.log.With("destination", d.Name()),
		added: e.now(),
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		t:     newTarget(d),
	}
	return w
}

// setDestination gives w the destination d, at its next step, unless d
// is the same as the one it has.
func (w *worker) setDestination(d *Destination) {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	cur := w.t
	if w.next != nil {
		cur = w.next
	}
	if cur.d == d {
		return
	}
	if cur.d.Same(d) {
		d.Close()
		return
	}
	if w.next != nil {
		w.next.d.Close()
	}
	w.next = newTarget(d)
	w.poke()
}

// target returns the destination a step uses, taking a replacement: no
// step runs while it is called (w.mu is held), so the old one is closed.
func (w *worker) target() *target {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	if w.next != nil {
		w.t.d.Close()
		w.t, w.next = w.next, nil
		w.log.Info("destination changed: its new configuration applies from now")
	}
	return w.t
}

// remove stops w: its loop ends after the step in hand (which starts no
// new request), and its destinations are closed then; running reports
// such a loop. A worker whose loop never started is closed at once.
func (w *worker) remove() (running bool) {
	close(w.quit)
	if w.done != nil {
		return true
	}
	w.mu.Lock() // a Step in hand finishes first
	defer w.mu.Unlock()
	w.closeDestinations()
	return false
}

func (w *worker) removed() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

func (w *worker) closeDestinations() {
	w.tmu.Lock()
	defer w.tmu.Unlock()
	w.t.d.Close()
	if w.next != nil {
		w.next.d.Close()
		w.next = nil
	}
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// setDisabled notes whether the destination is disabled and reports
// whether that is news.
func (w *worker) setDisabled(disabled bool) (changed bool) {
	w.smu.Lock()
	defer w.smu.Unlock()
	changed = w.disabled != disabled
	w.disabled = disabled
	return changed
}

func (w *worker) isDisabled() bool {
	w.smu.Lock()
	defer w.smu.Unlock()
	return w.disabled
}

// tally collects a step's counts from concurrent requests.
type tally struct {
	mu sync.Mutex
	r  StepResult
}

func (t *tally) update(f func(r *StepResult)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.r)
}

// pass is one step's view of its destination: what it sends to and under
// which lease it records.
type pass struct {
	*target
	lease cursor.Lease
	rec   *recorder // writes the outcomes under lease
	// requests holds a token per request open at the destination
	// (unordered destinations; nil for ordered ones, which have one
	// request at a time): a request frees its token once answered, so
	// that the next one goes while its outcome is recorded.
	requests chan struct{}
	// stop is set by a 410, or a failure to record: no new request
	// starts.
	stop atomic.Bool
}

// step is one pass over the destination: fan out, send what is due,
// record. disabled reports whether the destination is disabled. A
// destination whose lease this process does not hold is left alone
// (res.Elsewhere is 1).
func (w *worker) step(ctx context.Context) (res StepResult, disabled bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy.Store(true)
	defer w.busy.Store(false)
	if w.removed() {
		return res, false, nil
	}
	lease, ok := w.e.leases.Lease(w.lease)
	if !ok {
		res.Elsewhere = 1
		return res, false, nil
	}
	p := &pass{target: w.target(), lease: lease}
	st, err := w.state(ctx)
	if err != nil {
		return res, false, err
	}
	if res.Queued, res.Filtered, err = w.fanout(ctx, p.d); err != nil {
		return res, st.Disabled(), err
	}
	if st.Disabled() {
		res.Disabled = 1
		return res, true, nil
	}
	t := &tally{r: res}
	p.rec = startRecorder(ctx, w.e.store, lease)
	defer p.rec.stop()
	if p.ordered {
		err = w.sendOrdered(ctx, p, t)
	} else {
		err = w.sendUnordered(ctx, p, t)
	}
	t.mu.Lock()
	res = t.r
	t.mu.Unlock()
	if w.isDisabled() {
		res.Disabled, res.Next = 1, time.Time{}
		return res, true, err
	}
	return res, false, err
}

// fanout queues the new outbox events d takes: those its events globs
// match and its filter passes. It returns how many it queued and how many
// the filter kept out; those are counted in the metrics once, when the
// fan-out that judged them committed (a chunk that failed is judged again
// by the next step).
func (w *worker) fanout(ctx context.Context, d *Destination) (queued, filtered int, err error) {
	if d.filter == nil {
		queued, err = w.e.store.Fanout(ctx, w.name, func(e cursor.Event) bool { return d.Matches(e.Type) }, w.e.now())
		return queued, 0, err
	}
	// Events kept out, by seq: a backend may judge an event twice (a
	// retried transaction), and counts it once.
	out := map[int64]bool{}
	failed := map[int64]bool{}
	var firstErr error
	match := func(e cursor.Event) bool {
		if !d.Matches(e.Type) {
			return false
		}
		ok, err := d.Accepts(e)
		if err != nil {
			failed[e.Seq] = true
			if firstErr == nil {
				firstErr = err
			}
		}
		if !ok {
			out[e.Seq] = true
		}
		return ok
	}
	queued, err = w.e.store.Fanout(ctx, w.name, match, w.e.now())
	upTo := int64(math.MaxInt64)
	if err != nil {
		// Only the chunks that committed count.
		st, serr := w.e.store.Destination(ctx, w.name)
		if serr != nil {
			return queued, 0, err
		}
		upTo = st.FanoutSeq
	}
	errs := 0
	for seq := range out {
		if seq > upTo {
			continue
		}
		filtered++
		if failed[seq] {
			errs++
		}
	}
	w.e.m.filteredOut(w.name, filtered-errs, errs)
	if errs > 0 {
		w.log.Warn("destination filter failed on events: they are not delivered to it",
			"events", errs, "first_error", firstErr)
	}
	return queued, filtered, err
}

// state reads the destination's state (creating it the first time) and
// notes whether it was enabled or disabled since the last step.
func (w *worker) state(ctx context.Context) (cursor.DestinationState, error) {
	var st cursor.DestinationState
	var err error
	if !w.ensured {
		st, err = w.e.store.EnsureDestination(ctx, w.name, w.added)
		w.ensured = err == nil
	} else {
		st, err = w.e.store.Destination(ctx, w.name)
		if errors.Is(err, cursor.ErrUnknownDestination) {
			// Another process, whose config no longer names it, deleted
			// it while this one's still does (a rolling change of the
			// config): it comes back from its deletion, not from history.
			w.log.Warn("destination was deleted from the state by another process whose config no longer names it; this process's config still does: it delivers what is detected from the deletion on")
			st, err = w.e.store.EnsureDestination(ctx, w.name, w.added)
		}
	}
	if err != nil {
		return st, err
	}
	switch changed := w.setDisabled(st.Disabled()); {
	case changed && st.Disabled():
		w.log.Warn("destination is disabled: nothing is sent to it until it is enabled again",
			"reason", st.DisabledReason, "disabled_at", st.DisabledAt)
	case changed:
		w.log.Info("destination enabled")
	}
	return st, nil
}

// sendOrdered sends the head of the queue, a batch at a time, one request
// at a time: an event goes only after every earlier one was delivered or
// died.
func (w *worker) sendOrdered(ctx context.Context, p *pass, t *tally) error {
	for ctx.Err() == nil && !w.removed() {
		head, err := w.e.store.Pending(ctx, cursor.PendingQuery{Destination: w.name, Limit: p.batch})
		if err != nil {
			return err
		}
		if len(head) == 0 {
			return nil
		}
		now := w.e.now()
		if head[0].NextAt.After(now) {
			t.update(func(r *StepResult) { r.next(head[0].NextAt) })
			return nil
		}
		n := 1
		for n < len(head) && !head[n].NextAt.After(now) && (!p.oneType || head[n].Event.Type == head[0].Event.Type) {
			n++
		}
		// A batch cut short by a later due time or another type goes now;
		// one that holds all that is pending may wait to fill.
		if until, hold := p.hold(head[:n], n == len(head), now); hold {
			t.update(func(r *StepResult) { r.next(until) })
			return nil
		}
		gone, err := w.send(ctx, p, head[:n], t)
		if err != nil || gone {
			return err
		}
	}
	return nil
}

// sendUnordered sends every due delivery, max_in_flight requests at a
// time, reading them a page at a time in seq order. A removed destination
// starts no new request.
func (w *worker) sendUnordered(ctx context.Context, p *pass, t *tally) error {
	page := max(minPage, 2*p.inFlight*p.batch)
	page = max(p.batch, min(page, maxPage)/p.batch*p.batch)
	now := w.e.now()

	// max_in_flight requests open, and up to a page's worth of answered
	// ones waiting for their outcomes to be committed: those of requests
	// answered while a commit runs are written together by the next (see
	// recorder), so that a slow commit holds up neither the requests nor
	// the next one's size.
	p.requests = make(chan struct{}, p.inFlight)
	var g errgroup.Group
	g.SetLimit(p.inFlight + page/p.batch)
	var after int64
	var err error
loop:
	for ctx.Err() == nil && !p.stop.Load() && !w.removed() {
		var due []cursor.PendingDelivery
		due, err = w.e.store.Pending(ctx, cursor.PendingQuery{Destination: w.name, Due: now, AfterSeq: after, Limit: page})
		if err != nil || len(due) == 0 {
			break
		}
		after = due[len(due)-1].Event.Seq
		last := len(due) < page
		for _, b := range p.group(due) {
			// Only the last page's partial batches may wait to fill: on
			// other pages, more is due than a wait would gather.
			if last && len(b) < p.batch {
				if until, hold := p.hold(b, true, now); hold {
					t.update(func(r *StepResult) { r.next(until) })
					continue
				}
			}
			// The token is taken here, so that requests start in seq
			// order; send frees it.
			select {
			case p.requests <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
			if ctx.Err() != nil || p.stop.Load() || w.removed() {
				<-p.requests
				break loop
			}
			g.Go(func() error {
				// Go may have waited for a free slot: look again.
				if ctx.Err() != nil || p.stop.Load() || w.removed() {
					<-p.requests
					return nil
				}
				gone, err := w.send(ctx, p, b, t)
				if gone || err != nil {
					p.stop.Store(true)
				}
				return err
			})
		}
		if last {
			break
		}
	}
	sendErr := g.Wait()
	if err == nil && sendErr == nil && !p.stop.Load() && ctx.Err() == nil {
		next, ok, nerr := w.e.store.NextDue(ctx, w.name, now)
		if nerr != nil {
			return nerr
		}
		if ok {
			t.update(func(r *StepResult) { r.next(next) })
		}
	}
	return errors.Join(err, sendErr)
}

// group splits due deliveries, in seq order, into batches of up to
// p.batch; for format keap, a batch holds one event type.
func (p *target) group(due []cursor.PendingDelivery) [][]cursor.PendingDelivery {
	var out [][]cursor.PendingDelivery
	if !p.oneType {
		for len(due) > 0 {
			n := min(p.batch, len(due))
			out = append(out, due[:n:n])
			due = due[n:]
		}
		return out
	}
	open := map[string]int{} // type → index in out of its batch being filled
	for _, d := range due {
		i, ok := open[d.Event.Type]
		if !ok || len(out[i]) == p.batch {
			i = len(out)
			out = append(out, nil)
			open[d.Event.Type] = i
		}
		out[i] = append(out[i], d)
	}
	return out
}

// hold reports whether a partial batch is to wait for more events, and
// until when: a batch of fewer than max_events that has all there is
// (whole), none of it tried before, waits until its oldest event has
// waited batch.max_wait.
func (p *target) hold(b []cursor.PendingDelivery, whole bool, now time.Time) (time.Time, bool) {
	wait := p.cfg.Batch.MaxWait.D()
	if !whole || len(b) >= p.batch || wait <= 0 {
		return time.Time{}, false
	}
	oldest := b[0].NextAt
	for _, d := range b {
		if d.Attempts > 0 {
			return time.Time{}, false
		}
		if d.NextAt.Before(oldest) {
			oldest = d.NextAt
		}
	}
	until := oldest.Add(wait)
	return until, until.After(now)
}

// outlive returns a context that is done grace after ctx is, rather than
// with it: a request under way when the engine stops is answered and its
// outcome recorded, rather than cut short after the receiver may have
// acted on it. release must be called when the request is over.
func outlive(ctx context.Context, grace time.Duration) (_ context.Context, release func()) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-rctx.Done():
		}
	})
	return rctx, func() { stop(); cancel() }
}

// send makes one request carrying batch and records its outcome, and
// returns once the outcome is committed. With p.requests, the caller took
// a token for the request, which send frees once the request is answered.
// gone reports a 410, which disabled the destination. A request under way
// when ctx is done has the engine's StopGrace more to be answered and
// recorded; one cut short then is not recorded: its events stay pending
// as they were.
func (w *worker) send(ctx context.Context, p *pass, batch []cursor.PendingDelivery, t *tally) (gone bool, err error) {
	events := make([]cursor.Event, len(batch))
	for i, d := range batch {
		events[i] = d.Event
	}
	rctx, release := outlive(ctx, w.e.grace)
	a := p.d.Send(rctx, events)
	cut := a.Err != nil && rctx.Err() != nil
	release()
	gone = a.Gone && p.goneDisables
	if gone {
		p.stop.Store(true) // before the token goes: no request follows a 410
	}
	if p.requests != nil {
		<-p.requests // answered: the next request may go
	}
	if cut {
		return false, nil
	}
	now := w.e.now()
	w.e.m.observeLatency(w.name, a.Latency)

	base := cursor.Outcome{
		Destination: w.name, BodyID: a.BodyID, At: a.At, HTTPStatus: a.Status,
		Latency: a.Latency, Response: a.Response,
	}
	if a.Err != nil {
		base.Error = a.Err.Error()
	}
	// One retry time for the whole request, so that its events fall due
	// together and go again as the same batch, under the same webhook-id.
	var retryAt time.Time
	if !a.OK() && !gone {
		retryAt = w.retryAt(p, batch, now, a.RetryAfter)
	}
	outcomes := make([]cursor.Outcome, len(batch))
	var delivered, failed, dead []string
	for i, d := range batch {
		o := base
		o.EventID = d.Event.ID
		if o.BodyID == "" {
			o.BodyID = o.EventID // sent on its own, under its own id
		}
		switch {
		case a.OK():
			o.Status, o.Counted = cursor.StatusDelivered, true
			delivered = append(delivered, o.EventID)
		case gone:
			o.Status = cursor.StatusPending // not counted: it waits for the destination to be enabled
		case d.Attempts+1 > len(p.cfg.Retry.Schedule):
			o.Status, o.Counted = cursor.StatusDead, true
			dead = append(dead, o.EventID)
		default:
			o.Status, o.Counted = cursor.StatusPending, true
			o.NextAt = retryAt
			failed = append(failed, o.EventID)
		}
		outcomes[i] = o
	}

	// The outcome is recorded even when ctx ends meanwhile: a delivered
	// event must not be sent again for want of a write.
	if gone {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer cancel()
		if err := w.e.store.DisableDestination(rctx, w.name, base.Error, now); err != nil {
			return true, fmt.Errorf("disable destination %s: %w", w.name, err)
		}
	}
	if err := p.rec.record(outcomes); err != nil {
		return gone, fmt.Errorf("record delivery to %s: %w", w.name, err)
	}

	t.update(func(r *StepResult) {
		r.Requests++
		r.Delivered += len(delivered)
		r.Failed += len(failed)
		r.Dead += len(dead)
	})
	m := w.e.m
	m.attempt(w.name, OutcomeDelivered, len(delivered))
	m.attempt(w.name, OutcomeFailed, len(failed))
	m.attempt(w.name, OutcomeDead, len(dead))
	switch {
	case a.OK():
		w.succeeded()
	case gone:
		m.attempt(w.name, OutcomeGone, len(batch))
		if w.setDisabled(true) {
			w.log.Warn("destination answered 410 gone and is disabled: nothing is sent to it until it is enabled again (pollhook destinations enable NAME; a REST Hooks subscription is enabled when it is verified again)",
				"event_id", outcomes[0].BodyID, "error", base.Error)
		}
	default:
		w.failed(a, batch[0].Event.ID, len(batch))
	}
	for _, id := range dead {
		w.log.Warn("event dead after its last delivery attempt", "event_id", id,
			"attempts", len(p.cfg.Retry.Schedule)+1, "status", a.Status, "error", base.Error)
		if w.e.onDead != nil {
			w.e.onDead(w.name, id)
		}
	}
	if gone && w.e.onGone != nil {
		w.e.onGone(w.name, base.Error)
	}
	return gone, nil
}

// retryAt is when the events of batch that a failed request leaves
// pending are tried again: one time for all of them, after the wait that
// follows the first of them to stay pending (the first event, unless that
// one died). Each event still dies by its own attempt count.
func (w *worker) retryAt(p *pass, batch []cursor.PendingDelivery, now time.Time, retryAfter time.Duration) time.Time {
	steps := len(p.cfg.Retry.Schedule)
	for _, d := range batch {
		if d.Attempts+1 <= steps {
			return now.Add(w.retryWait(p, d.Attempts+1, retryAfter))
		}
	}
	return time.Time{} // every event died
}

// retryWait is the wait after the attempts-th failed attempt: the
// schedule's step with ±10% jitter, or longer when the receiver asked so
// with Retry-After (at most the schedule's largest step).
func (w *worker) retryWait(p *pass, attempts int, retryAfter time.Duration) time.Duration {
	step := p.cfg.Retry.Schedule[attempts-1].D()
	wait := time.Duration(float64(step) * (0.9 + 0.2*w.e.rand()))
	if retryAfter > wait {
		wait = max(wait, min(retryAfter, p.maxStep))
	}
	return wait
}

// failed logs the first failure of a streak; later ones are debug lines.
func (w *worker) failed(a Attempt, eventID string, events int) {
	w.smu.Lock()
	w.failing++
	first := w.failing == 1
	w.smu.Unlock()
	args := []any{"event_id", eventID, "events", events, "status", a.Status, "error", a.Err}
	if first {
		w.log.Warn("delivery failing; retrying on the schedule", args...)
		return
	}
	w.log.Debug("delivery failed", args...)
}

// succeeded ends a failure streak with a "recovered" line.
func (w *worker) succeeded() {
	w.smu.Lock()
	n := w.failing
	w.failing = 0
	w.smu.Unlock()
	if n > 0 {
		w.log.Info("delivery recovered", "failed_requests", n)
	}
}

// loop is the loop of one destination in Run: it steps until ctx is done
// or the destination is removed.
func (w *worker) loop(ctx context.Context) {
	defer w.closeDestinations()
	var backoff time.Duration
	for {
		res, disabled, err := w.step(ctx)
		if ctx.Err() != nil || w.removed() {
			return
		}
		var wait time.Duration
		switch {
		case errors.Is(err, cursor.ErrLeaseLost):
			// Another process took the destination over: its lease
			// ended while this one was away. The new holder sends what
			// was not recorded, with the same ids.
			w.log.Info("delivery lease lost: another process delivers to this destination now", "error", err)
			wait = RecheckInterval
		case err != nil:
			if backoff == 0 {
				w.log.Error("delivery stopped by a state store error; retrying", "error", err)
			} else {
				w.log.Debug("delivery step failed", "error", err)
			}
			backoff = min(max(2*backoff, minErrorBackoff), maxErrorBackoff)
			wait = backoff
		default:
			if backoff > 0 {
				w.log.Info("delivery recovered from the state store error")
				backoff = 0
			}
			wait = RecheckInterval
			if !disabled && !res.Next.IsZero() {
				wait = min(wait, res.Next.Sub(w.e.now()))
			}
		}
		if wait <= 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.quit:
			timer.Stop()
			return
		case <-w.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}
