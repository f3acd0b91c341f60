package runtime

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/poller"
)

// OnceOptions say what Once does.
type OnceOptions struct {
	// Resources are the resources to poll; all when empty.
	Resources []string
	// Deliver makes delivery passes to the configured destinations and
	// the active subscribers while the resources are polled (each commit
	// of events starts one), and one after: every delivery due is sent;
	// what fails stays pending.
	Deliver bool
	// OnCycle, when set, is called after each resource's cycle with the
	// events it wrote (those of the pages a failed cycle committed too).
	OnCycle func(res poller.CycleResult, events []cursor.Event, err error)
}

// OnceResult says what Once did.
type OnceResult struct {
	// Failed holds the error of each resource whose cycle failed.
	Failed []error
	// Elsewhere names, for each resource not polled because another
	// process holds its lease, that process.
	Elsewhere map[string]string
	// Delivery sums the delivery passes; its Disabled, Elsewhere and Next
	// are those of the last pass. Zero without OnceOptions.Deliver.
	Delivery emit.StepResult
	// DeliveryErr joins the errors of the delivery passes.
	DeliveryErr error
}

// Once polls each resource once, one after another, while delivering what
// the polls detect (with OnceOptions.Deliver): a page's events are sent as
// soon as the page commits, while the next pages are fetched. When every
// resource is polled, it makes a last delivery pass and returns once that
// is done. The passes send what is due as of the moment Once began: the
// new events, and the retries due before it; what fails waits for the
// next run. A resource another process holds the lease of is not polled (and
// named in the result): a `pollhook run`, or an earlier `pollhook once`
// still at work, polls it. The destinations of the config exist in the
// store before anything is polled, so that a Once stopped part-way loses
// nothing: a later one, or the daemon, delivers what it detected.
func (r *Runtime) Once(ctx context.Context, opts OnceOptions) (OnceResult, error) {
	res := OnceResult{Elsewhere: map[string]string{}}
	cfg := r.Config()
	names := opts.Resources
	if len(names) == 0 {
		for _, rc := range cfg.Resources {
			names = append(names, rc.Name)
		}
	}
	for _, n := range names {
		if cfg.Resource(n) == nil {
			return res, fmt.Errorf("once: no resource %q in %s", n, cfg.File)
		}
	}
	if opts.Deliver {
		r.dropUnconfigured(ctx, cfg)
	}
	r.ensureDestinations(ctx, cfg)
	var wanted []string
	for _, n := range names {
		wanted = append(wanted, cursor.ResourceLease(n))
	}
	if opts.Deliver {
		r.refreshSubscribers(ctx)
		for _, l := range r.wantedLeases() {
			if !slices.Contains(wanted, l) && !isResourceLease(l) {
				wanted = append(wanted, l)
			}
		}
	} else {
		r.engine.Set(nil)
	}
	r.leases.want(ctx, wanted)
	if err := r.leases.tick(ctx); err != nil {
		return res, fmt.Errorf("take leases: %w", err)
	}
	keep, stopKeeper := context.WithCancel(context.Background())
	var kw sync.WaitGroup
	kw.Go(func() { r.leases.run(keep) })
	defer func() {
		stopKeeper()
		kw.Wait()
		r.leases.releaseAll()
		r.engine.Close()
	}()

	var d *passes
	if opts.Deliver {
		begun := r.now()
		r.passTime.Store(&begun)
		defer r.passTime.Store(nil)
		d = startPasses(ctx, r.engine)
		// Each commit of events (a page, a cycle's deletes) starts a
		// pass, so that delivery runs beside the polls; events of other
		// processes (a daemon's, for a destination it leaves to this
		// one) are delivered too.
		watch, stopWatch := context.WithCancel(ctx)
		var ww sync.WaitGroup
		ww.Go(func() { r.store.WatchOutbox(watch, d.kick) })
		defer func() {
			stopWatch()
			ww.Wait()
		}()
	}
	holders := r.leases.Holders()
	for _, n := range names {
		lease, ok := r.leases.Lease(cursor.ResourceLease(n))
		if !ok {
			res.Elsewhere[n] = holders[cursor.ResourceLease(n)]
			continue
		}
		cyc, events, err := r.cycle(ctx, n, lease)
		if opts.OnCycle != nil {
			opts.OnCycle(cyc, events, err)
		}
		if err != nil {
			res.Failed = append(res.Failed, fmt.Errorf("resource %s: %w", n, err))
		}
	}
	if d != nil {
		res.Delivery, res.DeliveryErr = d.finish(ctx)
	}
	return res, nil
}

func isResourceLease(name string) bool {
	_, ok := strings.CutPrefix(name, cursor.ResourceLease(""))
	return ok
}

// cycle runs one cycle of resource name under lease and reads back the
// events it wrote.
func (r *Runtime) cycle(ctx context.Context, name string, lease cursor.Lease) (poller.CycleResult, []cursor.Event, error) {
	r.mu.Lock()
	p := r.pollers[name]
	r.mu.Unlock()
	before, err := r.store.LastSeq(ctx)
	if err != nil {
		return poller.CycleResult{Resource: name}, nil, err
	}
	res, cerr := p.Cycle(ctx, lease)
	if ctx.Err() == nil {
		r.pm.Observe(p, res, cerr)
	}
	var events []cursor.Event
	// Events of a failed cycle's committed pages are in the outbox too.
	err = r.store.EachEvent(context.WithoutCancel(ctx), cursor.EventFilter{Resource: name, AfterSeq: before}, func(e cursor.Event) error {
		events = append(events, e)
		return nil
	})
	return res, events, errors.Join(cerr, err)
}

// passes runs delivery passes of an engine, one at a time, while Once
// polls: a kick asks for one (kicks during a pass make one more).
type passes struct {
	e     *emit.Engine
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
	total emit.StepResult
	last  emit.StepResult
	errs  []error
}

func startPasses(ctx context.Context, e *emit.Engine) *passes {
	p := &passes{e: e, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-p.wake:
				p.pass(ctx)
			}
		}
	}()
	return p
}

func (p *passes) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *passes) pass(ctx context.Context) {
	res, err := p.e.Step(ctx)
	p.total.Queued += res.Queued
	p.total.Filtered += res.Filtered
	p.total.Requests += res.Requests
	p.total.Delivered += res.Delivered
	p.total.Failed += res.Failed
	p.total.Dead += res.Dead
	p.last = res
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// finish waits for the pass in hand, makes the last one, and returns the
// sum.
func (p *passes) finish(ctx context.Context) (emit.StepResult, error) {
	close(p.stop)
	<-p.done
	p.pass(ctx)
	out := p.total
	out.Disabled, out.Elsewhere, out.Next = p.last.Disabled, p.last.Elsewhere, p.last.Next
	return out, errors.Join(p.errs...)
}
