package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit/hooks"
)

// allowTargets parses http.allow_targets (validated by config).
func allowTargets(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("http.allow_targets: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// subscriptionsChanged is the API's OnChange: the maintenance loop reads
// the subscriptions again.
func (r *Runtime) subscriptionsChanged() {
	select {
	case r.subsChange <- struct{}{}:
	default:
	}
}

// refreshSubscribers reads the subscriptions and gives the engine and the
// keeper the active ones. A subscriber new to the list starts from now
// (its destination is created, and enabled in case a 410 had disabled
// it before it was verified again), so that whichever process delivers to
// it sends what is detected from its activation on. The destinations of
// deleted subscriptions are dropped with their deliveries.
func (r *Runtime) refreshSubscribers(ctx context.Context) {
	api := r.api.Load()
	subs, err := api.Subscribers(ctx)
	if err != nil {
		r.log.Error("list subscriptions; kept the last list", "error", err)
		return
	}
	r.mu.Lock()
	before := make(map[string]bool, len(r.subs))
	for _, s := range r.subs {
		before[s.Name] = true
	}
	r.mu.Unlock()
	now := r.now()
	for _, s := range subs {
		if before[s.Name] {
			continue
		}
		if _, err := r.store.EnsureDestination(ctx, s.Name, now); err != nil {
			r.log.Error("start subscriber", "destination", s.Name, "error", err)
		}
		if err := r.store.EnableDestination(ctx, s.Name); err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
			r.log.Error("enable subscriber", "destination", s.Name, "error", err)
		}
	}
	r.mu.Lock()
	r.subs = subs
	stopped := r.setDestinationsLocked()
	r.mu.Unlock()
	// A subscriber that went finishes its deliveries in flight before its
	// lease is given up and its destination deleted.
	waitStopped(ctx, stopped)
	if r.leases.want(ctx, r.wantedLeases()) {
		// A new subscriber is delivered to from now, not at the next
		// renewal.
		r.leases.tick(ctx)
	}
	r.dropDeleted(ctx)
}

// deactivate is the engine's OnGone and OnDead: a subscriber that answered
// 410 or failed an event's last attempt is deactivated as its dialect says
// (the API decides); a configured destination stays as it is.
func (r *Runtime) deactivate(name, reason string) {
	if !strings.HasPrefix(name, hooks.NamePrefix) {
		return
	}
	if err := r.api.Load().Deactivate(context.Background(), name, reason); err != nil {
		r.log.Error("deactivate subscription", "destination", name, "error", err)
	}
}

// dropUnconfigured deletes the destinations the store knows that are
// neither in cfg nor subscriptions ("hook:…"), with their deliveries:
// nothing delivers to them any more, and their frozen position would hold
// back the pruning of the outbox. A destination added back later starts
// afresh. A failure is logged and left to the next reload.
func (r *Runtime) dropUnconfigured(ctx context.Context, cfg *config.Config) {
	dests, err := r.store.Destinations(ctx)
	if err != nil {
		r.log.Error("list destinations no longer in the config", "error", err)
		return
	}
	for _, st := range dests {
		if strings.HasPrefix(st.Name, hooks.NamePrefix) || cfg.Destination(st.Name) != nil {
			continue
		}
		r.dropDestination(ctx, st.Name, "destination %s is no longer in the config: %s dropped")
	}
}

// ensureDestinations gives every destination of cfg its place in the
// store before anything is polled: a destination receives every event
// detected from the moment a config naming it first ran, even if the
// process stops before it delivers anything.
func (r *Runtime) ensureDestinations(ctx context.Context, cfg *config.Config) {
	now := r.now()
	for _, d := range cfg.Destinations {
		if _, err := r.store.EnsureDestination(ctx, d.Name, now); err != nil {
			r.log.Error("start destination; it starts at its first delivery instead", "destination", d.Name, "error", err)
		}
	}
}

// dropDeleted deletes the destinations of subscriptions that no longer
// exist, with their deliveries, so that they do not hold back the pruning
// of the outbox. Those of Inactive and Unverified subscriptions are kept:
// they resume when the subscription is verified again.
func (r *Runtime) dropDeleted(ctx context.Context) {
	// Destinations first: one whose subscription is made meanwhile is
	// then found in the list of subscriptions.
	dests, err := r.store.Destinations(ctx)
	if err != nil {
		r.log.Error("list destinations of deleted subscriptions", "error", err)
		return
	}
	all, err := r.store.Subscriptions(ctx)
	if err != nil {
		r.log.Error("list destinations of deleted subscriptions", "error", err)
		return
	}
	exists := make(map[string]bool, len(all))
	for _, sub := range all {
		exists[hooks.NamePrefix+sub.Key] = true
	}
	for _, d := range dests {
		if strings.HasPrefix(d.Name, hooks.NamePrefix) && !exists[d.Name] {
			r.dropDestination(ctx, d.Name, "the subscription of destination %s is deleted: %s dropped")
		}
	}
}

// dropDestination deletes destination name and its deliveries, and logs
// msg, a format of the name and the number of pending deliveries dropped.
func (r *Runtime) dropDestination(ctx context.Context, name, msg string) {
	b, err := r.store.Backlog(ctx, name)
	if err != nil {
		r.log.Error("delete destination", "destination", name, "error", err)
		return
	}
	if err := r.store.DeleteDestination(ctx, name, r.now()); err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
		r.log.Error("delete destination", "destination", name, "error", err)
		return
	}
	level := slog.LevelInfo
	if b.Pending > 0 {
		level = slog.LevelWarn
	}
	its := fmt.Sprintf("its %d pending deliveries are", b.Pending)
	if b.Pending == 1 {
		its = "its 1 pending delivery is"
	}
	r.log.Log(ctx, level, fmt.Sprintf(msg, name, its), "destination", name, "pending", b.Pending)
}
