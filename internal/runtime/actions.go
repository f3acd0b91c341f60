package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit/hooks"
	"github.com/pollhook/pollhook/poller"
)

// The actions an operator takes on a running daemon (the web console's
// buttons). Each goes through the part of the runtime that owns the work,
// so that it takes effect at once and never races it: a poll is the
// scheduler's, a cursor reset runs between two cycles of its resource,
// and a replay or an enable wakes the delivery engine.

// ErrUnknownResource and ErrUnknownDestination are returned by the
// actions for a name the running configuration does not have.
var (
	ErrUnknownResource    = errors.New("no such resource in the running configuration")
	ErrUnknownDestination = errors.New("no such destination in the running configuration")
)

// ErrNotRunning is returned by the actions that need the daemon running.
var ErrNotRunning = errors.New("pollhook is not running")

// PollNow asks for a cycle of resource now, or as soon as its cycle in
// hand ends. It fails for a resource not in the configuration, when the
// daemon is not running, or when another process holds the resource's
// lease (that process polls it; the error names it).
func (r *Runtime) PollNow(resource string) error {
	if err := r.pollsHere(resource); err != nil {
		return err
	}
	if !r.sched.Wake(resource) {
		return fmt.Errorf("poll %s: %w", resource, ErrUnknownResource)
	}
	return nil
}

// pollsHere says why this process cannot act on resource's cycles, or
// nil.
func (r *Runtime) pollsHere(resource string) error {
	if r.Config().Resource(resource) == nil {
		return fmt.Errorf("poll %s: %w", resource, ErrUnknownResource)
	}
	if !r.running.Load() {
		return fmt.Errorf("poll %s: %w", resource, ErrNotRunning)
	}
	lease := cursor.ResourceLease(resource)
	if _, ok := r.leases.Lease(lease); !ok {
		if h := r.leases.Holders()[lease]; h != "" {
			return fmt.Errorf("poll %s: another pollhook process polls it (%s)", resource, h)
		}
		return fmt.Errorf("poll %s: this process does not hold its lease yet; try again in a few seconds", resource)
	}
	return nil
}

// Schedule returns where the loop of resource stands: whether a cycle
// runs, and when the next one is due. False for a resource the scheduler
// does not have.
func (r *Runtime) Schedule(resource string) (poller.LoopState, bool) {
	return r.sched.State(resource)
}

// ResetCursor moves the watermark of resource to to (backwards too; the
// zero time forgets it), between two of its cycles: a cycle in hand ends
// first, so that it cannot move the watermark past the reset. The records
// the store knows are kept, so the next cycle, which reads from there,
// reports only real changes. It fails as PollNow does, or when ctx ends
// before the cycle in hand.
func (r *Runtime) ResetCursor(ctx context.Context, resource string, to time.Time) error {
	if err := r.pollsHere(resource); err != nil {
		return fmt.Errorf("reset cursor: %w", err)
	}
	err := r.sched.Between(ctx, resource, func(cursor.Lease) error {
		return r.store.ResetResource(ctx, resource, to)
	})
	if err != nil {
		return fmt.Errorf("reset cursor of %s: %w", resource, err)
	}
	r.log.Info("cursor reset", "resource", resource, "watermark", to)
	return nil
}

// Replay sets the delivery of event eventID to destination dest back to
// pending, due now, or, with no eventID, every dead delivery of dest; the
// engine is woken to send them. It returns how many deliveries are
// pending again. dest is a destination of the configuration or the
// destination of a subscription; an unknown event id wraps
// cursor.ErrUnknownEvent.
func (r *Runtime) Replay(ctx context.Context, dest, eventID string) (int64, error) {
	if err := r.knownDestination(ctx, dest); err != nil {
		return 0, fmt.Errorf("replay: %w", err)
	}
	n, err := r.store.Replay(ctx, cursor.ReplayFilter{Destination: dest, EventID: eventID, Dead: eventID == "", Now: r.now()})
	if err != nil {
		return 0, err
	}
	r.engine.Notify()
	r.log.Info("deliveries replayed", "destination", dest, "event_id", eventID, "deliveries", n)
	return n, nil
}

// knownDestination says why dest is neither configured nor a
// subscription's, or nil.
func (r *Runtime) knownDestination(ctx context.Context, dest string) error {
	if r.Config().Destination(dest) != nil {
		return nil
	}
	if strings.HasPrefix(dest, hooks.NamePrefix) {
		if _, err := r.store.Destination(ctx, dest); err == nil {
			return nil
		} else if !errors.Is(err, cursor.ErrUnknownDestination) {
			return err
		}
	}
	return fmt.Errorf("%s: %w", dest, ErrUnknownDestination)
}

// EnableDestination enables the configured destination name that a 410
// Gone disabled: its pending deliveries go out at once. A subscription is
// made active again by verifying it through the REST Hooks API, not here.
func (r *Runtime) EnableDestination(ctx context.Context, name string) error {
	if r.Config().Destination(name) == nil {
		if strings.HasPrefix(name, hooks.NamePrefix) {
			return fmt.Errorf("enable %s: a subscription becomes active again when it is verified (POST /hooks/KEY/verify)", name)
		}
		return fmt.Errorf("enable %s: %w", name, ErrUnknownDestination)
	}
	err := r.store.EnableDestination(ctx, name)
	if errors.Is(err, cursor.ErrUnknownDestination) {
		return fmt.Errorf("enable %s: it has not delivered anything yet: nothing to enable", name)
	}
	if err != nil {
		return err
	}
	r.engine.Notify()
	r.log.Info("destination enabled", "destination", name)
	return nil
}
