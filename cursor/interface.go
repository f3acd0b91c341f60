package cursor

import (
	"context"
	"time"
)

// Store is pollhook's state store, whatever holds it: the resources'
// cycles and watermarks, the records seen, the outbox, deliveries and
// their attempts, REST Hooks subscriptions, leases, the history status
// views read, and the health of its writes. [SQLite] is the embedded
// backend. Every backend passes the same
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
	// Missing returns the records of resource that cycle has not seen
	// (neither written nor touched in it) and that are not tombstones, in id order
	// from the first id after after ("" for the first), at most limit (0
	// for none), with the counts of the records held (tombstones left out)
	// and of those missing, all told: what a snapshot cycle looks up at
	// item_url before it finishes.
	Missing(ctx context.Context, resource string, cycle int64, after string, limit int) (MissingRecords, error)
	// FinishCycle completes cycle f.Cycle in one transaction: with
	// f.Snapshot, the records it missed whose absence is confirmed are
	// deleted — those f.Gone names when f.LookedUp, else those the
	// previous complete snapshot cycle missed too — unless more than
	// f.DeleteGuard of the records held are missing; then the watermark,
	// the resource's WatchFrom (set once) and its counters. See Finish.
	FinishCycle(ctx context.Context, f Finish) (FinishResult, error)
	ResetResource(ctx context.Context, resource string, watermark time.Time) error
	// Cursors is Resources without the count of known records (Known is
	// -1): it costs the same however many records there are.
	Cursors(ctx context.Context) ([]ResourceState, error)

	// The history of cycles, events per hour and backlogs (history.go),
	// for status views; Prune trims it (PruneOptions.CycleHistory and
	// HistoryRetention).
	//
	// RecordCycle writes a cycle's record under the resource's lease
	// (checked as CommitPage checks it) and adds it to its hour's counts,
	// in one transaction; a cycle recorded twice is kept and counted once.
	RecordCycle(ctx context.Context, lease Lease, c CycleRecord) error
	// Cycles lists one resource's cycles, newest first, a page at a time
	// (CycleFilter.Before), the failed ones only with CycleFilter.Failed.
	Cycles(ctx context.Context, f CycleFilter) ([]CycleRecord, error)
	// EventsPerHour returns the hourly counts of every resource from the
	// hour of since on, by resource and hour.
	EventsPerHour(ctx context.Context, since time.Time) ([]HourCount, error)
	// RecordBacklog stores backlog samples: one per destination and time
	// (a second replaces the first); a sample of an unknown destination
	// is dropped; samples go with their destination.
	RecordBacklog(ctx context.Context, samples []BacklogSample) error
	// BacklogHistory returns the samples of dest (all when empty) from
	// since on, by destination and time.
	BacklogHistory(ctx context.Context, dest string, since time.Time) ([]BacklogSample, error)

	// The outbox. Events keep their Previous and ChangedFields as given:
	// nil stays nil, an empty list stays empty.
	LastSeq(ctx context.Context) (int64, error)
	// EachEvent streams the events f selects, by seq (newest first with
	// EventFilter.Newest), between AfterSeq and BeforeSeq.
	EachEvent(ctx context.Context, f EventFilter, fn func(Event) error) error
	// WatchOutbox calls notify soon after events are committed to the
	// outbox by any process, until ctx is done, and returns then. It may
	// call notify when nothing new is there; it never blocks on notify
	// for long (notify must not block).
	WatchOutbox(ctx context.Context, notify func())
	// Event returns one event by id, or ErrUnknownEvent.
	Event(ctx context.Context, id string) (Event, error)

	// Destinations, deliveries and the attempt log.
	EnsureDestination(ctx context.Context, name string, since time.Time) (DestinationState, error)
	Destination(ctx context.Context, name string) (DestinationState, error)
	Destinations(ctx context.Context) ([]DestinationState, error)
	DisableDestination(ctx context.Context, name, reason string, at time.Time) error
	EnableDestination(ctx context.Context, name string) error
	DeleteDestination(ctx context.Context, name string, at time.Time) error
	// Fanout gives match each new event whole (data and history), in
	// seq order, and queues those it accepts.
	Fanout(ctx context.Context, dest string, match func(Event) bool, now time.Time) (int, error)
	Pending(ctx context.Context, q PendingQuery) ([]PendingDelivery, error)
	NextDue(ctx context.Context, dest string, after time.Time) (time.Time, bool, error)
	RecordOutcomes(ctx context.Context, lease Lease, outcomes []Outcome) error
	// Deliveries lists deliveries newest event first, a page at a time
	// (DeliveryFilter.BeforeSeq).
	Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	Attempts(ctx context.Context, f AttemptFilter) ([]AttemptLog, error)
	Replay(ctx context.Context, f ReplayFilter) (int64, error)
	Backlog(ctx context.Context, dest string) (Backlog, error)
	Backlogs(ctx context.Context) ([]Backlog, error)
	// BacklogAtMost is Backlog counting pending and dead deliveries only
	// up to limit (a larger count reads limit+1), so that it costs the same
	// however long the backlog.
	BacklogAtMost(ctx context.Context, dest string, limit int64) (Backlog, error)
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
	//
	// Health says whether the store can serve pollhook's work now: nil,
	// or why not, in words an operator can act on. /readyz reports it
	// (the runtime calls it every couple of seconds, under a timeout, so
	// it must be cheap). It fails while WriteErr does, while the reads the
	// pipeline makes at every cycle and delivery pass fail for a reason
	// of the store's own (not a cancelled context), when a one-row write
	// does not commit or a read does not answer, and for whatever else
	// the backend knows keeps it from serving: for SQLite, a damaged
	// file, or a file deleted, moved or replaced under the process; for
	// a database server, a lost connection. It passes again once the
	// cause is gone.
	Health(ctx context.Context, now time.Time) error
	Ping(ctx context.Context) error
	PingWrite(ctx context.Context, now time.Time) error
	WriteErr() error
	RetainResourceWrites(resources []string)
}

var _ Store = (*SQLite)(nil)
