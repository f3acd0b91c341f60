package cursor

import (
	"encoding/json"
	"time"
)

// Event is one detected change, as it sits in the outbox.
type Event struct {
	// Seq is the outbox position, assigned by the store on insert;
	// increasing in insertion order.
	Seq int64
	// ID is deterministic: the same change detected twice has the same ID,
	// and the outbox holds it once.
	ID         string
	Type       string // noun.verb: contact.created
	Resource   string
	Source     string
	Object     string
	ObjectID   string
	OccurredAt time.Time
	DetectedAt time.Time
	// Data is the record as the API returned it (JSON), after the
	// resource's transform; the JSON null for a delete.
	Data json.RawMessage
	// Previous is the record as last seen before the change (JSON): for
	// an update, the version before it; for a delete, the last version
	// known. Nil when the store kept no content of the record (a created
	// event, a resource with keep_content: false, or a record last seen
	// before content was kept).
	Previous json.RawMessage
	// ChangedFields are the top-level keys whose values differ between
	// Previous and Data, sorted: set (perhaps empty) for an update whose
	// Previous is known and where both are objects, nil otherwise.
	ChangedFields []string
}

// ResourceState is what the store knows of a resource between cycles.
type ResourceState struct {
	Resource string
	// Watermark is the greatest updated date processed by a complete cycle
	// (or the configured start time before the first one).
	Watermark time.Time
	// Cycle is the number of the last cycle begun; 0 before the first.
	Cycle int64
	// Completed is the number of cycles that completed.
	Completed int64
	// LastComplete is when the last cycle completed.
	LastComplete time.Time
	// HeldDeletes is how many deletes the last complete snapshot cycle held
	// back because of the delete guard (0 when none).
	HeldDeletes int64
	// Known is the number of records the store holds for the resource.
	Known int64
	// WatchFrom is the moment the resource began to be watched, as the
	// first complete cycle recorded it (Finish.WatchFrom); meaningful
	// only when Watching is set, and the zero time then means from the
	// beginning.
	WatchFrom time.Time
	Watching  bool
}

// Seen is the version of a record the store last recorded.
type Seen struct {
	// Updated is the record's updated date; zero when the resource has no
	// updated field.
	Updated time.Time
	// Hash is a hash of the record's content.
	Hash string
	// Rev counts the events written for the record: each created,
	// updated or deleted event is one more. It makes an event's id unique
	// even when a record returns to an earlier content or comes back
	// after a delete.
	Rev int64
	// Deleted marks a tombstone: a record a snapshot found gone. It is
	// kept for its Rev; it is not known, and a record that comes back is
	// new.
	Deleted bool
	// Content is the record's content as last recorded (JSON text), the
	// previous version of its next change; empty when none is kept. The
	// store keeps it apart from the version, so that reading and touching
	// versions costs the same whatever the size of the records: Seen does
	// not read it, Contents does, and FinishCycle gives it to Deleted.
	Content string
}

// SeenRecord is a record's id and version, written when a page commits.
// A non-empty Content replaces the content the store keeps of the record;
// an empty one leaves it as it is (a version that changed only in fields
// the resource ignores moves the version, not the content).
type SeenRecord struct {
	ID string
	Seen
}

// Page is what one fetched page commits: the versions of its records and
// the events they produced, in one transaction.
type Page struct {
	Resource string
	Cycle    int64
	// Lease is the resource's lease: the page commits only while it is
	// held with this fence.
	Lease Lease
	// Records are upserted with last_seen = Cycle, and count as seen in
	// it.
	Records []SeenRecord
	// Touch are ids seen in this cycle whose record was not written (an
	// unchanged record, one skipped for a bad date): they count as seen
	// in Cycle where they exist, so that a snapshot does not take them
	// for deleted.
	Touch []string
	// Events are inserted into the outbox; an event whose ID is already
	// there is left as it is.
	Events []Event
}

// Finish is what the last transaction of a complete cycle commits.
type Finish struct {
	Resource string
	Cycle    int64
	// Lease is the resource's lease, checked as for Page.
	Lease     Lease
	Watermark time.Time
	// Snapshot asks for deletes. The records not seen in Cycle are
	// missing; a missing record is deleted once its absence is
	// confirmed: with LookedUp, when Gone names it (a lookup of the record
	// found it gone); without, when the previous complete snapshot cycle
	// missed it too and no cycle has seen it since. A
	// record missing for the first time, or looked up and not found gone,
	// stays as it is.
	Snapshot bool
	// LookedUp says that the missing records were looked up one by one
	// (item_url), and Gone holds those found gone.
	LookedUp bool
	Gone     []string
	// DeleteGuard is the largest share of known records that may be
	// missing from a cycle; when more are, none is deleted, and their
	// count is held back.
	DeleteGuard float64
	// Deleted builds the event for a deleted record, given the version the
	// store last held (its Rev before the delete, and its Content); the
	// store inserts it and turns the record into a tombstone with Rev+1,
	// whose content it no longer keeps, in the same transaction.
	Deleted func(id string, last Seen) Event
	// DropContent removes whatever content the store keeps of the
	// resource's records (a resource with keep_content: false).
	DropContent bool
	// Now is the completion time.
	Now time.Time
	// WatchFrom is the moment the resource began to be watched: kept
	// as the resource's WatchFrom when the store has none yet (its first
	// complete cycle), ignored after.
	WatchFrom time.Time
}

// FinishResult says what a completed cycle did with deletes.
type FinishResult struct {
	// Known is how many records the store held before the deletes.
	Known int64
	// Missing is how many of them the cycle did not see (in snapshot
	// mode; 0 otherwise), deleted or not.
	Missing int64
	// Deleted is how many delete events were written.
	Deleted int64
	// HeldBack is how many deletes the guard held back.
	HeldBack int64
}

// EventFilter selects events from the outbox. Zero fields select all.
type EventFilter struct {
	Resource string
	// Type is an exact type or a glob over noun.verb (contact.*).
	Type     string
	Since    time.Time // DetectedAt at or after
	AfterSeq int64
	// BeforeSeq selects events before this seq; 0 sets no bound.
	BeforeSeq int64
	// Newest lists the newest event first (seq descending); pass the
	// last Seq of a page as BeforeSeq to read the next one.
	Newest bool
	Limit  int
}

// MissingRecords are records a snapshot cycle has not seen (see
// Store.Missing).
type MissingRecords struct {
	// Known is how many records the store holds for the resource, and
	// Missing how many of them the cycle has not seen, all told.
	Known, Missing int64
	// Records are the missing records asked for, with the version the
	// store holds of each.
	Records []SeenRecord
}
