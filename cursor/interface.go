package cursor

import (
	"context"
	"time"
)

// Store is pollhook's state store, whatever holds it: the resources'
// cycles and watermarks, the records seen, the outbox, deliveries and
// their attempts, REST Hooks subscriptions, leases and the health of its
// writes. [SQLite] is the embedded backend. Every backend passes the same
// conformance suite (package cursor/storetest), so the packages above it
// depend on this behaviour, not on a backend.
//
// A Store is safe for concurrent use, and several processes may open the
// same store: leases (see [Lease]) say which of them polls a resource or
// delivers to a destination, and the writes of that work check them.
type Store interface {
	// Location names the store for messages: a file path, or a database
	// address without credentials.
	Location() string
	Close() error

	// Resources and their cycles.
	ResourceState(ctx context.Context, resource string) (ResourceState, error)
	Resources(ctx context.Context) ([]ResourceState, error)
	InitResource(ctx context.Context, resource string, watermark time.Time) error
	BeginCycle(ctx context.Context, resource string, lease Lease) (int64, error)
	// Seen returns the versions of ids, without their Content.
	Seen(ctx context.Context, resource string, ids []string) (map[string]Seen, error)
	// Contents returns the content kept of each of ids that has one. A
	// content is kept apart from its version: written by CommitPage with
	// a record that carries one (one without leaves it as it is), given
	// to Finish.Deleted and dropped with the delete, dropped for the
	// whole resource by Finish.DropContent.
	Contents(ctx context.Context, resource string, ids []string) (map[string]string, error)
	CommitPage(ctx context.Context, p Page) error
	FinishCycle(ctx context.Context, f Finish) (FinishResult, error)
	ResetResource(ctx context.Context, resource string, watermark time.Time) error

	// The outbox. Events keep their Previous and ChangedFields as given:
	// nil stays nil, an empty list stays empty.
	LastSeq(ctx context.Context) (int64, error)
	EachEvent(ctx context.Context, f EventFilter, fn func(Event) error) error

	// Destinations, deliveries and the attempt log.
	EnsureDestination(ctx context.Context, name string, since time.Time) (DestinationState, error)
	Destination(ctx context.Context, name string) (DestinationState, error)
	Destinations(ctx context.Context) ([]DestinationState, error)
	DisableDestination(ctx context.Context, name, reason string, at time.Time) error
	EnableDestination(ctx context.Context, name string) error
	DeleteDestination(ctx context.Context, name string) error
	// Fanout gives match each new event whole (data and history), in
	// seq order, and queues those it accepts.
	Fanout(ctx context.Context, dest string, match func(Event) bool, now time.Time) (int, error)
	Pending(ctx context.Context, q PendingQuery) ([]PendingDelivery, error)
	NextDue(ctx context.Context, dest string, after time.Time) (time.Time, bool, error)
	RecordOutcomes(ctx context.Context, lease Lease, outcomes []Outcome) error
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	Attempts(ctx context.Context, f AttemptFilter) ([]AttemptLog, error)
	Replay(ctx context.Context, f ReplayFilter) (int64, error)
	Backlog(ctx context.Context, dest string) (Backlog, error)
	Backlogs(ctx context.Context) ([]Backlog, error)
	DeliverySummary(ctx context.Context, dest string) (DeliverySummary, error)
	Prune(ctx context.Context, o PruneOptions) (PruneResult, error)

	// REST Hooks subscriptions.
	CreateSubscription(ctx context.Context, sub Subscription) (Subscription, error)
	Subscription(ctx context.Context, key string) (Subscription, error)
	SubscriptionByID(ctx context.Context, id int64) (Subscription, error)
	Subscriptions(ctx context.Context) ([]Subscription, error)
	UpdateSubscription(ctx context.Context, key string, change func(*Subscription) error) (Subscription, error)
	DeleteSubscription(ctx context.Context, key string) error

	// Leases.
	AcquireLeases(ctx context.Context, holder string, names []string, ttl time.Duration, now time.Time) ([]Lease, error)
	ReleaseLeases(ctx context.Context, holder string, names []string) error
	Leases(ctx context.Context) ([]Lease, error)

	// Health.
	Ping(ctx context.Context) error
	PingWrite(ctx context.Context, now time.Time) error
	WriteErr() error
	RetainResourceWrites(resources []string)
}

var _ Store = (*SQLite)(nil)
