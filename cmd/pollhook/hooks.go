package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/emit/hooks"
)

// subscriberRetry is how long the subscriber loop waits after the store
// failed to list subscriptions.
const subscriberRetry = 5 * time.Second

// subscribers runs the REST Hooks side of a generation: the subscription
// API and a delivery engine over the subscriptions that receive events,
// rebuilt whenever a subscription changes.
type subscribers struct {
	api     *hooks.API
	store   *cursor.Store
	log     *slog.Logger
	m       *emit.Metrics
	cfg     *config.Config
	changed chan struct{}
	engine  atomic.Pointer[emit.Engine]
}

// newSubscribers builds the subscription API of cfg; self are pollhook's
// own listen addresses, which subscriber URLs may not reach.
func newSubscribers(cfg *config.Config, store *cursor.Store, log *slog.Logger, m *emit.Metrics, self []string) (*subscribers, error) {
	s := &subscribers{store: store, log: log.With("component", "hooks"), m: m, cfg: cfg, changed: make(chan struct{}, 1)}
	var keys []string
	for i := range cfg.Resources {
		keys = append(keys, cfg.Resources[i].EventTypes()...)
	}
	self = slices.DeleteFunc(slices.Clone(self), func(a string) bool { return a == "" })
	var allow []netip.Prefix
	for _, c := range cfg.HTTP.AllowTargets {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err // config validated it
		}
		allow = append(allow, p)
	}
	api, err := hooks.NewAPI(store, hooks.Options{
		Token: string(cfg.HTTP.Token), EventKeys: keys, AllowTargets: allow, SelfAddrs: self,
		Logger: s.log, OnChange: s.notifyChanged,
	})
	if err != nil {
		return nil, err
	}
	s.api = api
	return s, nil
}

func (s *subscribers) notifyChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Notify wakes the subscribers' engine after a poll wrote events.
func (s *subscribers) Notify() {
	if e := s.engine.Load(); e != nil {
		e.Notify()
	}
}

// run delivers to the subscribers until ctx is done, starting a new
// engine over them after every change. Pending deliveries are kept across
// the restarts: they live in the store.
func (s *subscribers) run(ctx context.Context) {
	for {
		subs, err := s.api.Subscribers(ctx)
		if err != nil {
			s.log.Error("list subscriptions; retrying", "error", err, "retry_in", subscriberRetry)
			select {
			case <-ctx.Done():
				return
			case <-time.After(subscriberRetry):
				continue
			}
		}
		e := s.start(ctx, subs)
		ectx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			e.Run(ectx)
		}()
		select {
		case <-ctx.Done():
		case <-s.changed:
		}
		cancel()
		<-done
		e.Close()
		if ctx.Err() != nil {
			return
		}
	}
}

// start builds the engine over subs. A subscription that is receiving
// events again (verified anew) has its destination enabled, in case a 410
// had disabled it. The destinations of deleted subscriptions are dropped
// first.
func (s *subscribers) start(ctx context.Context, subs []hooks.Subscriber) *engine {
	s.dropDeleted(ctx)
	e := &engine{}
	for _, sub := range subs {
		dest, err := emit.NewDestination(sub.Destination(), emit.Options{
			Transport: s.api.Guard().Transport(), Logger: s.log,
			Recipient: emit.Recipient{WebhookID: sub.WebhookID},
		})
		if err != nil {
			s.log.Error("subscriber skipped", "destination", sub.Name, "error", err)
			continue
		}
		if err := s.store.EnableDestination(ctx, sub.Name); err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
			s.log.Error("enable subscriber", "destination", sub.Name, "error", err)
		}
		e.dests = append(e.dests, dest)
	}
	deactivate := func(name, reason string) {
		if err := s.api.Deactivate(context.WithoutCancel(ctx), name, reason); err != nil {
			s.log.Error("deactivate subscription", "destination", name, "error", err)
		}
	}
	e.Engine = emit.NewEngine(s.store, e.dests, emit.EngineOptions{
		Logger: s.log, Metrics: s.m,
		DeliveredRetention: s.cfg.State.Retention.Delivered.D(), DeadRetention: s.cfg.State.Retention.Dead.D(),
		OnGone: func(name, reason string) { deactivate(name, "the subscriber answered 410 Gone") },
		OnDead: func(name, eventID string) {
			deactivate(name, "event "+eventID+" failed its last delivery attempt")
		},
	})
	s.engine.Store(e.Engine)
	return e
}

// dropDeleted deletes the destinations of subscriptions that no longer
// exist, with their deliveries, so that they do not hold back the pruning
// of the outbox. Those of Inactive and Unverified subscriptions are kept:
// they resume when the subscription is verified again. A failure is logged
// and left to the next start.
func (s *subscribers) dropDeleted(ctx context.Context) {
	// Destinations first: one whose subscription is made meanwhile is
	// then found in the list of subscriptions.
	dests, err := s.store.Destinations(ctx)
	if err != nil {
		s.log.Error("list destinations of deleted subscriptions", "error", err)
		return
	}
	all, err := s.store.Subscriptions(ctx)
	if err != nil {
		s.log.Error("list destinations of deleted subscriptions", "error", err)
		return
	}
	exists := make(map[string]bool, len(all))
	for _, sub := range all {
		exists[hooks.NamePrefix+sub.Key] = true
	}
	for _, d := range dests {
		if strings.HasPrefix(d.Name, hooks.NamePrefix) && !exists[d.Name] {
			dropDestination(ctx, s.store, s.log, d.Name, "the subscription of destination %s is deleted: its %d pending deliveries are dropped")
		}
	}
}

// Handler serves the subscription API.
func (s *subscribers) Handler() http.Handler { return s.api.Handler() }
