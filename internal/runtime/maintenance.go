package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// Intervals of the maintenance loop.
const (
	// PruneInterval is how often the delivery log and the outbox are
	// pruned (and once when the daemon starts).
	PruneInterval = time.Hour
	// ReadinessInterval is how often the store is probed for /readyz.
	ReadinessInterval = 2 * time.Second
	// SubscriptionsInterval is how often the subscriptions are read again,
	// for changes made through another process; changes made through
	// this one apply at once.
	SubscriptionsInterval = 5 * time.Second
	// BacklogSampleInterval is how often each destination's backlog is
	// sampled into the store's history, at whole multiples of it (so
	// processes sharing the store sample the same times, and keep one
	// sample each).
	BacklogSampleInterval = time.Minute
	// probeTimeout bounds one readiness probe.
	probeTimeout = 2 * time.Second
)

// What the store keeps of its history (see cursor.PruneOptions).
const (
	// CycleHistory is how many recorded cycles of each resource are
	// kept.
	CycleHistory = 1000
	// HistoryRetention is how long hourly event counts and backlog
	// samples are kept.
	HistoryRetention = 7 * 24 * time.Hour
)

// maintain is the one maintenance loop: it prunes the store, probes its
// readiness, samples the backlogs and follows the subscriptions, until
// ctx is done.
func (r *Runtime) maintain(ctx context.Context) {
	r.prune(ctx)
	r.sample(ctx)
	sample := time.NewTimer(r.untilSample())
	defer sample.Stop()
	probe := time.NewTicker(ReadinessInterval)
	defer probe.Stop()
	prune := time.NewTicker(PruneInterval)
	defer prune.Stop()
	subs := time.NewTicker(SubscriptionsInterval)
	defer subs.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
			r.probe(ctx)
		case <-prune.C:
			r.prune(ctx)
		case <-sample.C:
			r.sample(ctx)
			sample.Reset(r.untilSample())
		case <-subs.C:
			r.refreshSubscribers(ctx)
		case <-r.subsChange:
			r.refreshSubscribers(ctx)
		}
	}
}

// probe checks that the store serves (cursor.Store.Health: the last
// pipeline writes and reads, a one-row write, a read, and what the
// backend knows of its own). Its outcome is what /readyz says until the
// next probe.
func (r *Runtime) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := r.store.Health(ctx, r.now())
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return // stopping
	}
	r.readiness.Store(&err)
}

// prune deletes what the retention lets go: delivered and dead deliveries
// past it, and the outbox events no destination needs any more.
func (r *Runtime) prune(ctx context.Context) {
	ret := r.Config().State.Retention
	res, err := r.store.Prune(ctx, cursor.PruneOptions{
		Now: r.now(), DeliveredRetention: ret.Delivered.D(), DeadRetention: ret.Dead.D(),
		CycleHistory: CycleHistory, HistoryRetention: HistoryRetention,
	})
	switch {
	case err != nil && ctx.Err() == nil:
		r.log.Warn("prune delivery log", "error", err)
	case res != cursor.PruneResult{}:
		r.log.Info("pruned delivery log", "delivered", res.Delivered, "dead", res.Dead, "events", res.Events,
			"cycles", res.Cycles, "backlog_samples", res.Samples)
	}
}

// untilSample is the wait until the next whole multiple of
// BacklogSampleInterval.
func (r *Runtime) untilSample() time.Duration {
	now := r.now()
	return now.Truncate(BacklogSampleInterval).Add(BacklogSampleInterval).Sub(now)
}

// sample records the backlog of every destination, at the last whole
// multiple of BacklogSampleInterval.
func (r *Runtime) sample(ctx context.Context) {
	at := r.now().Truncate(BacklogSampleInterval)
	bs, err := r.store.Backlogs(ctx)
	if err == nil {
		samples := make([]cursor.BacklogSample, len(bs))
		for i, b := range bs {
			samples[i] = cursor.BacklogSample{Destination: b.Destination, At: at, Pending: b.Pending, Dead: b.Dead, OldestPending: b.OldestPending}
		}
		err = r.store.RecordBacklog(ctx, samples)
	}
	if err != nil && ctx.Err() == nil {
		r.log.Warn("sample backlogs", "error", err)
	}
}
