package emit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// Defaults and intervals of the delivery engine.
const (
	// DefaultDeliveredRetention is how long delivered deliveries and their
	// attempts are kept.
	DefaultDeliveredRetention = 7 * 24 * time.Hour
	// DefaultDeadRetention is how long dead deliveries and their attempts
	// are kept (and can be replayed).
	DefaultDeadRetention = 30 * 24 * time.Hour
	// PruneInterval is how often Run prunes the delivery log and outbox
	// (and once when it starts).
	PruneInterval = time.Hour
	// RecheckInterval is the longest Run waits, when not woken, before it
	// looks at the store again: for work another process queued (a replay,
	// an enabled destination, events of `pollhook once`).
	RecheckInterval = 30 * time.Second
)

// Bounds of the engine's own waits.
const (
	// minErrorBackoff and maxErrorBackoff bound the wait after a step
	// failed on the store; it doubles per failure in a row.
	minErrorBackoff = time.Second
	maxErrorBackoff = time.Minute
	// recordTimeout bounds writing the outcome of a request, which goes on
	// after the engine is stopped so that a delivered event is recorded.
	recordTimeout = 10 * time.Second
	// minPage and maxPage bound how many due deliveries an unordered
	// destination reads at a time.
	minPage = 256
	maxPage = 10000
)

// DeliveryStore is the state the engine delivers from and records to;
// *cursor.Store implements it. Its methods must be safe for concurrent use.
type DeliveryStore interface {
	EnsureDestination(ctx context.Context, name string, since time.Time) (cursor.DestinationState, error)
	Destination(ctx context.Context, name string) (cursor.DestinationState, error)
	Fanout(ctx context.Context, dest string, match func(eventType string) bool, now time.Time) (int, error)
	Pending(ctx context.Context, q cursor.PendingQuery) ([]cursor.PendingDelivery, error)
	NextDue(ctx context.Context, dest string, after time.Time) (time.Time, bool, error)
	RecordOutcomes(ctx context.Context, outcomes []cursor.Outcome) error
	DisableDestination(ctx context.Context, name, reason string, at time.Time) error
	Backlog(ctx context.Context, dest string) (cursor.Backlog, error)
	Prune(ctx context.Context, o cursor.PruneOptions) (cursor.PruneResult, error)
}

var _ DeliveryStore = (*cursor.Store)(nil)

// EngineOptions are what an Engine takes from its surroundings. Zero fields
// get defaults.
type EngineOptions struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets delivery failures, recoveries, dead events and disabled
	// destinations; nil discards them.
	Logger *slog.Logger
	// Metrics records attempts, latency and backlog; nil records nothing.
	Metrics *Metrics
	// Rand returns a number in [0, 1) for the ±10% jitter of retry waits;
	// nil means math/rand/v2.
	Rand func() float64
	// DeliveredRetention and DeadRetention are how long delivered and dead
	// deliveries are kept; DefaultDeliveredRetention and
	// DefaultDeadRetention when 0.
	DeliveredRetention, DeadRetention time.Duration
	// OnGone, when set, is called after a destination answered 410 Gone
	// and was disabled (never for format pipedrive, which a 410 does not
	// disable); OnDead after an event's last attempt failed. Both
	// are called from the destination's loop, after the outcome is
	// recorded: REST Hooks subscriptions become Inactive through them.
	OnGone func(destination, reason string)
	OnDead func(destination, eventID string)
}

// StepResult counts what a Step did.
type StepResult struct {
	// Queued is how many deliveries were queued from the outbox.
	Queued int
	// Requests is how many requests (or writes) were made.
	Requests int
	// Delivered, Failed and Dead count events: delivered, failed and to
	// be retried, failed for the last time.
	Delivered, Failed, Dead int
	// Disabled is how many destinations are disabled.
	Disabled int
	// Next is the earliest time a pending delivery of an enabled
	// destination is due (or a held batch is to go); zero when none is
	// pending.
	Next time.Time
}

func (r *StepResult) add(o StepResult) {
	r.Queued += o.Queued
	r.Requests += o.Requests
	r.Delivered += o.Delivered
	r.Failed += o.Failed
	r.Dead += o.Dead
	r.Disabled += o.Disabled
	r.next(o.Next)
}

// next lowers r.Next to t.
func (r *StepResult) next(t time.Time) {
	if !t.IsZero() && (r.Next.IsZero() || t.Before(r.Next)) {
		r.Next = t
	}
}

// Engine delivers the outbox to destinations, at least once: it queues
// each new outbox event for every destination whose events globs match it,
// sends due deliveries (batched, in order or not, as each destination is
// configured), retries failures on the destination's schedule, disables a
// destination that answers 410 Gone (except one of format pipedrive, for
// which, as for Pipedrive itself, a 410 is a failure like any other), and
// records every attempt in the store. Because the queue is in the store,
// a restart resumes where it stopped; an event sent but not yet recorded
// as delivered when the process stopped is sent again, with the same
// webhook-id.
//
// A destination first seen by the store receives the events detected from
// the moment its Engine was made (see [cursor.Store.EnsureDestination]);
// older ones can be replayed to it. A batch's max_wait counts from when its
// oldest event was queued for the destination (by the first Step after
// the event was committed); a retried batch does not wait again.
//
// Step and Run may be called from several goroutines; the steps of one
// destination never overlap.
type Engine struct {
	store   DeliveryStore
	workers []*worker
	now     func() time.Time
	rand    func() float64
	log     *slog.Logger
	m       *Metrics
	start   time.Time
	keepOK  time.Duration
	keepBad time.Duration
	onGone  func(destination, reason string)
	onDead  func(destination, eventID string)
}

// NewEngine returns an engine that delivers from store to dests. It does
// not touch the store until the first Step or Run.
func NewEngine(store DeliveryStore, dests []*Destination, opts EngineOptions) *Engine {
	e := &Engine{
		store:   store,
		now:     opts.Now,
		rand:    opts.Rand,
		log:     opts.Logger,
		m:       opts.Metrics,
		keepOK:  opts.DeliveredRetention,
		keepBad: opts.DeadRetention,
		onGone:  opts.OnGone,
		onDead:  opts.OnDead,
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.rand == nil {
		e.rand = rand.Float64
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.keepOK <= 0 {
		e.keepOK = DefaultDeliveredRetention
	}
	if e.keepBad <= 0 {
		e.keepBad = DefaultDeadRetention
	}
	e.start = e.now()
	for _, d := range dests {
		cfg := d.Config()
		f := d.Format()
		w := &worker{
			e:        e,
			d:        d,
			cfg:      cfg,
			name:     d.Name(),
			log:      e.log.With("destination", d.Name()),
			wake:     make(chan struct{}, 1),
			batch:    max(cfg.Batch.MaxEvents, 1),
			inFlight: max(cfg.MaxInFlight, 1),
			ordered:  cfg.Ordering == config.OrderingOrdered,
			keap:     f.OneType(),
			// A 410 does not disable every format's destination.
			goneDisables: f.GoneDisables(),
		}
		if n := f.MaxEvents(); n > 0 {
			w.batch = min(w.batch, n)
		}
		for _, s := range cfg.Retry.Schedule {
			w.maxStep = max(w.maxStep, s.D())
		}
		e.workers = append(e.workers, w)
	}
	return e
}

// Notify wakes Run's destinations to look for new events now: call it
// after a poll committed events. It never blocks.
func (e *Engine) Notify() {
	for _, w := range e.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Step makes one pass over every destination, concurrently: it queues the
// new outbox events, then sends everything due at Now (holding a partial
// batch whose max_wait has not passed), and records the outcomes. It
// returns when every destination is done, with the counts and the earliest
// time something is due next. The errors of the destinations whose pass
// failed on the store are joined; the others' work is done and counted.
func (e *Engine) Step(ctx context.Context) (StepResult, error) {
	results := make([]StepResult, len(e.workers))
	errs := make([]error, len(e.workers))
	var wg sync.WaitGroup
	for i, w := range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, errs[i] = w.step(ctx)
		}()
	}
	wg.Wait()
	var res StepResult
	for _, r := range results {
		res.add(r)
	}
	return res, errors.Join(errs...)
}

// Run delivers until ctx is done, then returns nil. Each destination has
// its own loop, so a slow or failing destination never holds up another:
// it steps, then waits for its next due time, a batch's max_wait, a
// Notify, or at most RecheckInterval. A failure of the store is logged
// once and retried with a growing wait. The delivery log and outbox are
// pruned when Run starts and every PruneInterval. When ctx is done,
// requests in flight are cancelled; their events stay pending and are
// sent again by the next run.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.pruneLoop(ctx)
	}()
	for _, w := range e.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Prune deletes delivered and dead deliveries older than their retention,
// and the outbox events no destination needs any more (see
// [cursor.Store.Prune]).
func (e *Engine) Prune(ctx context.Context) (cursor.PruneResult, error) {
	return e.store.Prune(ctx, cursor.PruneOptions{
		Now: e.now(), DeliveredRetention: e.keepOK, DeadRetention: e.keepBad,
	})
}

func (e *Engine) pruneLoop(ctx context.Context) {
	for {
		res, err := e.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.log.Warn("prune delivery log", "error", err)
		case res != cursor.PruneResult{}:
			e.log.Info("pruned delivery log", "delivered", res.Delivered, "dead", res.Dead, "events", res.Events)
		}
		t := time.NewTimer(PruneInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// worker delivers to one destination.
type worker struct {
	e        *Engine
	d        *Destination
	cfg      *config.Destination
	name     string
	log      *slog.Logger
	wake     chan struct{}
	batch    int // events a request
	inFlight int
	ordered  bool
	keap     bool
	// goneDisables is true when a 410 Gone disables the destination;
	// false for format pipedrive, where a 410 is an ordinary failure.
	goneDisables bool
	maxStep      time.Duration // the largest step of the retry schedule

	mu      sync.Mutex // held by a step
	ensured bool

	smu      sync.Mutex // guards the fields below, which a step's requests share
	disabled bool       // as last seen in the store, or since a 410
	failing  int        // failed requests in the current streak
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

// step is one pass over the destination: fan out, send what is due,
// record. disabled reports whether the destination is disabled.
func (w *worker) step(ctx context.Context) (res StepResult, disabled bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.state(ctx)
	if err != nil {
		return res, false, err
	}
	if res.Queued, err = w.e.store.Fanout(ctx, w.name, w.d.Matches, w.e.now()); err != nil {
		return res, st.Disabled(), err
	}
	if st.Disabled() {
		res.Disabled = 1
		w.updateBacklog(ctx)
		return res, true, nil
	}
	t := &tally{r: res}
	if w.ordered {
		err = w.sendOrdered(ctx, t)
	} else {
		err = w.sendUnordered(ctx, t)
	}
	t.mu.Lock()
	res = t.r
	t.mu.Unlock()
	w.updateBacklog(ctx)
	if w.isDisabled() {
		res.Disabled, res.Next = 1, time.Time{}
		return res, true, err
	}
	return res, false, err
}

// state reads the destination's state (creating it the first time) and
// notes whether it was enabled or disabled since the last step.
func (w *worker) state(ctx context.Context) (cursor.DestinationState, error) {
	var st cursor.DestinationState
	var err error
	if !w.ensured {
		st, err = w.e.store.EnsureDestination(ctx, w.name, w.e.start)
		w.ensured = err == nil
	} else {
		st, err = w.e.store.Destination(ctx, w.name)
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
	w.e.m.setDisabled(w.name, st.Disabled())
	return st, nil
}

// updateBacklog sets the backlog gauges. A failure is left to the next
// step.
func (w *worker) updateBacklog(ctx context.Context) {
	if w.e.m == nil {
		return
	}
	b, err := w.e.store.Backlog(ctx, w.name)
	if err != nil {
		return
	}
	var age time.Duration
	if !b.OldestPending.IsZero() {
		age = w.e.now().Sub(b.OldestPending)
	}
	w.e.m.setBacklog(w.name, b.Pending, age)
}

// sendOrdered sends the head of the queue, a batch at a time, one request
// at a time: an event goes only after every earlier one was delivered or
// died.
func (w *worker) sendOrdered(ctx context.Context, t *tally) error {
	for ctx.Err() == nil {
		head, err := w.e.store.Pending(ctx, cursor.PendingQuery{Destination: w.name, Limit: w.batch})
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
		for n < len(head) && !head[n].NextAt.After(now) && (!w.keap || head[n].Event.Type == head[0].Event.Type) {
			n++
		}
		// A batch cut short by a later due time or another type goes now;
		// one that holds all that is pending may wait to fill.
		if until, hold := w.hold(head[:n], n == len(head), now); hold {
			t.update(func(r *StepResult) { r.next(until) })
			return nil
		}
		gone, err := w.send(ctx, head[:n], t)
		if err != nil || gone {
			return err
		}
	}
	return nil
}

// sendUnordered sends every due delivery, max_in_flight requests at a
// time, reading them a page at a time in seq order.
func (w *worker) sendUnordered(ctx context.Context, t *tally) error {
	page := max(minPage, 2*w.inFlight*w.batch)
	page = max(w.batch, min(page, maxPage)/w.batch*w.batch)
	now := w.e.now()

	var g errgroup.Group
	g.SetLimit(w.inFlight)
	var stop atomic.Bool // a request met a 410 or failed on the store
	var after int64
	var err error
loop:
	for ctx.Err() == nil && !stop.Load() {
		var due []cursor.PendingDelivery
		due, err = w.e.store.Pending(ctx, cursor.PendingQuery{Destination: w.name, Due: now, AfterSeq: after, Limit: page})
		if err != nil || len(due) == 0 {
			break
		}
		after = due[len(due)-1].Event.Seq
		last := len(due) < page
		for _, b := range w.group(due) {
			// Only the last page's partial batches may wait to fill: on
			// other pages, more is due than a wait would gather.
			if last && len(b) < w.batch {
				if until, hold := w.hold(b, true, now); hold {
					t.update(func(r *StepResult) { r.next(until) })
					continue
				}
			}
			if ctx.Err() != nil || stop.Load() {
				break loop
			}
			g.Go(func() error {
				// Go may have waited for a free slot: look again.
				if ctx.Err() != nil || stop.Load() {
					return nil
				}
				gone, err := w.send(ctx, b, t)
				if gone || err != nil {
					stop.Store(true)
				}
				return err
			})
		}
		if last {
			break
		}
	}
	sendErr := g.Wait()
	if err == nil && !stop.Load() && ctx.Err() == nil {
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
// w.batch; for format keap, a batch holds one event type.
func (w *worker) group(due []cursor.PendingDelivery) [][]cursor.PendingDelivery {
	var out [][]cursor.PendingDelivery
	if !w.keap {
		for len(due) > 0 {
			n := min(w.batch, len(due))
			out = append(out, due[:n:n])
			due = due[n:]
		}
		return out
	}
	open := map[string]int{} // type → index in out of its batch being filled
	for _, p := range due {
		i, ok := open[p.Event.Type]
		if !ok || len(out[i]) == w.batch {
			i = len(out)
			out = append(out, nil)
			open[p.Event.Type] = i
		}
		out[i] = append(out[i], p)
	}
	return out
}

// hold reports whether a partial batch is to wait for more events, and
// until when: a batch of fewer than max_events that has all there is
// (whole), none of it tried before, waits until its oldest event has
// waited batch.max_wait.
func (w *worker) hold(b []cursor.PendingDelivery, whole bool, now time.Time) (time.Time, bool) {
	wait := w.cfg.Batch.MaxWait.D()
	if !whole || len(b) >= w.batch || wait <= 0 {
		return time.Time{}, false
	}
	oldest := b[0].NextAt
	for _, p := range b {
		if p.Attempts > 0 {
			return time.Time{}, false
		}
		if p.NextAt.Before(oldest) {
			oldest = p.NextAt
		}
	}
	until := oldest.Add(wait)
	return until, until.After(now)
}

// send makes one request carrying batch and records its outcome. gone
// reports a 410, which disabled the destination. A request cut short
// because ctx is done is not recorded: its events stay pending as they
// were.
func (w *worker) send(ctx context.Context, batch []cursor.PendingDelivery, t *tally) (gone bool, err error) {
	events := make([]cursor.Event, len(batch))
	for i, p := range batch {
		events[i] = p.Event
	}
	a := w.d.Send(ctx, events)
	if a.Err != nil && ctx.Err() != nil {
		return false, nil
	}
	gone = a.Gone && w.goneDisables
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
		retryAt = w.retryAt(batch, now, a.RetryAfter)
	}
	outcomes := make([]cursor.Outcome, len(batch))
	var delivered, failed, dead []string
	for i, p := range batch {
		o := base
		o.EventID = p.Event.ID
		switch {
		case a.OK():
			o.Status, o.Counted = cursor.StatusDelivered, true
			delivered = append(delivered, o.EventID)
		case gone:
			o.Status = cursor.StatusPending // not counted: it waits for the destination to be enabled
		case p.Attempts+1 > len(w.cfg.Retry.Schedule):
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
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if gone {
		if err := w.e.store.DisableDestination(rctx, w.name, base.Error, now); err != nil {
			return true, fmt.Errorf("disable destination %s: %w", w.name, err)
		}
	}
	if err := w.e.store.RecordOutcomes(rctx, outcomes); err != nil {
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
		m.setDisabled(w.name, true)
		if w.setDisabled(true) {
			w.log.Warn("destination answered 410 gone and is disabled: nothing is sent to it until it is enabled again",
				"event_id", a.BodyID, "error", base.Error)
		}
	default:
		w.failed(a, batch[0].Event.ID, len(batch))
	}
	for _, id := range dead {
		w.log.Warn("event dead after its last delivery attempt", "event_id", id,
			"attempts", len(w.cfg.Retry.Schedule)+1, "status", a.Status, "error", base.Error)
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
func (w *worker) retryAt(batch []cursor.PendingDelivery, now time.Time, retryAfter time.Duration) time.Time {
	steps := len(w.cfg.Retry.Schedule)
	for _, p := range batch {
		if p.Attempts+1 <= steps {
			return now.Add(w.retryWait(p.Attempts+1, retryAfter))
		}
	}
	return time.Time{} // every event died
}

// retryWait is the wait after the attempts-th failed attempt: the
// schedule's step with ±10% jitter, or longer when the receiver asked so
// with Retry-After (at most the schedule's largest step).
func (w *worker) retryWait(attempts int, retryAfter time.Duration) time.Duration {
	step := w.cfg.Retry.Schedule[attempts-1].D()
	wait := time.Duration(float64(step) * (0.9 + 0.2*w.e.rand()))
	if retryAfter > wait {
		wait = max(wait, min(retryAfter, w.maxStep))
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

// run is the loop of one destination in Run.
func (w *worker) run(ctx context.Context) {
	var backoff time.Duration
	for {
		res, disabled, err := w.step(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch {
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
		case <-w.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}
