package poller

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/pollhook/pollhook/config"
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
)

// Cycler is what the scheduler runs: *Poller implements it.
type Cycler interface {
	Resource() *config.Resource
	Cycle(ctx context.Context) (CycleResult, error)
}

// SchedulerOptions are a Scheduler's collaborators.
type SchedulerOptions struct {
	// Logger receives one line per failure streak and per recovery; nil
	// discards.
	Logger *slog.Logger
	// OnCycle, when set, is called after every cycle, from the resource's
	// goroutine (so calls for one resource never overlap).
	OnCycle func(res CycleResult, err error)
}

// Scheduler runs each resource's cycles on its schedule: one goroutine per
// resource, so a slow or failing resource never delays the others, and a
// resource never has two cycles at once.
type Scheduler struct {
	cyclers []Cycler
	opts    SchedulerOptions
	log     *slog.Logger
}

// NewScheduler returns a Scheduler of cyclers.
func NewScheduler(cyclers []Cycler, opts SchedulerOptions) *Scheduler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cyclers: cyclers, opts: opts, log: log}
}

// Run polls every resource once at once, then on its schedule, until ctx
// is done; it returns after every running cycle has ended (a cycle stops
// at its next page boundary once ctx is done).
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range s.cyclers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, c)
		}()
	}
	wg.Wait()
}

func (s *Scheduler) loop(ctx context.Context, c Cycler) {
	r := c.Resource()
	log := s.log.With("resource", r.Name)
	failures := 0
	for {
		res, err := c.Cycle(ctx)
		if ctx.Err() != nil {
			return
		}
		if s.opts.OnCycle != nil {
			s.opts.OnCycle(res, err)
		}
		now := time.Now()
		next := NextRun(r, now)
		if err != nil {
			failures++
			wait := backoff(r.Schedule, failures)
			if failures == 1 {
				log.Error("poll failed; backing off", "error", err, "retry_in", wait)
			}
			if b := now.Add(wait); b.After(next) {
				next = b
			}
		} else {
			if failures > 0 {
				log.Info("poll recovered", "failures", failures)
			}
			failures = 0
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// NextRun is when resource r is next polled after now: on an interval
// schedule, the next tick of a grid offset by a stable per-resource jitter
// (a hash of the name modulo the interval), so that many resources spread
// over the interval and keep their phase across restarts; on a cron
// schedule, the next fire time plus a stable jitter of up to 10s.
func NextRun(r *config.Resource, now time.Time) time.Time {
	h := fnv.New64a()
	h.Write([]byte(r.Name))
	sum := h.Sum64()
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
