package cursor

// The delivery side of the store (schema version 2):
//
//   - destinations: one row per destination name — fanout_seq (the last
//     outbox seq fanned out to it), created_at, disabled_at (0 when enabled)
//     and disabled_reason.
//   - deliveries: one row per (destination, event_id) — seq and type of the
//     event, status pending|delivered|dead, attempts, next_at, last_status,
//     last_error, created_at (when it was queued or last replayed) and
//     done_at (when it was delivered or died). A partial index on
//     (destination, seq, next_at) over pending rows serves the delivery
//     loop, its next due time and the counts of pending deliveries; one on
//     (destination, seq) over dead rows, listings and counts of dead ones;
//     one on (destination, status, done_at) over the rows done, pruning
//     (schema version 13).
//   - attempts: the log of every attempt, one row per event per attempt —
//     destination, event_id, body_id (the webhook-id of the request), at,
//     status (HTTP, 0 for none), latency (nanoseconds), error and response
//     (both bounded). Deleted with their delivery.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pollhook/pollhook/internal/clip"
)

// Bounds on what the delivery log keeps of an attempt.
const (
	// MaxErrorBytes is how much of an attempt's error text is stored.
	MaxErrorBytes = 1 << 10
	// MaxResponseBytes is how much of a response body an attempt row keeps.
	MaxResponseBytes = 512
)

// fanoutChunk is how many outbox events one fan-out transaction reads.
const fanoutChunk = 1000

// pruneChunk is how many rows one prune transaction deletes, so that
// pruning never holds the write lock for long.
const pruneChunk = 1000

// DefaultListLimit is how many rows Deliveries and Attempts return when the
// filter sets no limit; MaxListLimit is the most they return.
const (
	DefaultListLimit = 100
	MaxListLimit     = 10000
)

// ErrUnknownDestination is returned for a destination the store has no row
// for (one never run, or misspelt).
var ErrUnknownDestination = errors.New("unknown destination")

// ErrUnknownEvent is returned by Replay for an event id not in the outbox.
var ErrUnknownEvent = errors.New("unknown event")

// DeliveryStatus is the state of one event's delivery to one destination.
type DeliveryStatus string

// Delivery statuses.
const (
	// StatusPending: not delivered yet; tried at NextAt.
	StatusPending DeliveryStatus = "pending"
	// StatusDelivered: a 2xx response (or a written line) was received.
	StatusDelivered DeliveryStatus = "delivered"
	// StatusDead: every attempt of the retry schedule failed. A dead
	// delivery is kept (see Prune) and can be replayed.
	StatusDead DeliveryStatus = "dead"
)

// valid reports whether s is one of the statuses.
func (s DeliveryStatus) valid() bool {
	return s == StatusPending || s == StatusDelivered || s == StatusDead
}

// DestinationState is what the store holds for a destination.
type DestinationState struct {
	Name string
	// FanoutSeq is the last outbox seq considered for the destination:
	// later events are not queued for it yet.
	FanoutSeq int64
	// CreatedAt is when the store first saw the destination.
	CreatedAt time.Time
	// DisabledAt is when the destination was disabled (a 410 Gone, or by
	// hand); zero while it is enabled.
	DisabledAt time.Time
	// DisabledReason says why it was disabled.
	DisabledReason string
}

// Disabled reports whether nothing is to be sent to the destination.
func (d DestinationState) Disabled() bool { return !d.DisabledAt.IsZero() }

// Delivery is one event's delivery to one destination.
type Delivery struct {
	Destination string
	EventID     string
	Seq         int64
	Type        string
	Status      DeliveryStatus
	// Attempts is the number of attempts counted against the retry
	// schedule.
	Attempts int
	// NextAt is when a pending delivery is due.
	NextAt time.Time
	// LastStatus is the HTTP status of the last attempt; 0 for none.
	LastStatus int
	// LastError is the error of the last attempt; empty after a success.
	LastError string
	// CreatedAt is when the delivery was queued, or last replayed.
	CreatedAt time.Time
	// DoneAt is when it was delivered or died; zero while pending.
	DoneAt time.Time
}

// PendingDelivery is a pending delivery with its event, as the delivery
// loop sends it.
type PendingDelivery struct {
	Event     Event
	Attempts  int
	NextAt    time.Time
	CreatedAt time.Time
}

// PendingQuery selects pending deliveries of one destination, in seq order.
type PendingQuery struct {
	Destination string
	// Due, when set, selects only deliveries whose NextAt is at or before
	// it; zero selects every pending delivery.
	Due time.Time
	// AfterSeq selects deliveries of events after this outbox seq.
	AfterSeq int64
	// Limit is the most returned; it must be above 0.
	Limit int
}

// Outcome is one attempt to deliver one event, and what becomes of its
// delivery.
type Outcome struct {
	Destination string
	EventID     string
	// BodyID is the webhook-id of the request that carried the event.
	BodyID string
	At     time.Time
	// HTTPStatus is the response status; 0 when there was none.
	HTTPStatus int
	Latency    time.Duration
	// Error is empty for a success; stored up to MaxErrorBytes.
	Error string
	// Response is the start of the response body; stored up to
	// MaxResponseBytes.
	Response string
	// Status is the delivery's new status. Delivered and dead set DoneAt
	// to At.
	Status DeliveryStatus
	// Counted is true when the attempt counts against the retry schedule
	// (false for one that disabled the destination).
	Counted bool
	// NextAt is when a delivery left pending is due; zero keeps the
	// current time.
	NextAt time.Time
}

// AttemptLog is one row of the attempt log.
type AttemptLog struct {
	ID          int64
	Destination string
	EventID     string
	BodyID      string
	At          time.Time
	// Status is the HTTP status; 0 when there was no response.
	Status   int
	Latency  time.Duration
	Error    string
	Response string
}

// DeliveryFilter selects deliveries. Zero fields select all.
type DeliveryFilter struct {
	Destination string
	Status      DeliveryStatus
	EventID     string
	// BeforeSeq selects deliveries of events before this outbox seq; 0
	// sets no bound. Pass the last Seq of a page of one destination's
	// deliveries to read the next page.
	BeforeSeq int64
	// Limit is the most returned: DefaultListLimit when 0, at most
	// MaxListLimit.
	Limit int
}

// AttemptFilter selects attempts. Zero fields select all.
type AttemptFilter struct {
	Destination string
	EventID     string
	// Limit is the most returned: DefaultListLimit when 0, at most
	// MaxListLimit.
	Limit int
}

// ReplayFilter selects the deliveries Replay sets back to pending: those of
// Destination (every destination when empty) that match all of EventID,
// Dead and Since that are set. At least one of them must be.
type ReplayFilter struct {
	Destination string
	// EventID replays one event; it needs Destination. The event is
	// queued for the destination even if it never was.
	EventID string
	// Dead selects dead deliveries.
	Dead bool
	// Since selects deliveries of events detected at or after it.
	Since time.Time
	// Now becomes the deliveries' NextAt and CreatedAt.
	Now time.Time
}

// Backlog is the delivery backlog of one destination.
type Backlog struct {
	Destination string
	Pending     int64
	Dead        int64
	// OldestPending is the CreatedAt of the oldest pending delivery; zero
	// when none is pending.
	OldestPending time.Time
	// Disabled is true while the destination is disabled.
	Disabled bool
}

// MemberLeaseRetention is how long Prune keeps the member lease of a
// process after it expired (see MemberLease).
const MemberLeaseRetention = 24 * time.Hour

// PruneOptions say what Prune deletes. A zero retention keeps those rows
// forever.
type PruneOptions struct {
	Now time.Time
	// DeliveredRetention is how long delivered deliveries (and their
	// attempts) are kept after delivery.
	DeliveredRetention time.Duration
	// DeadRetention is how long dead deliveries (and their attempts) are
	// kept after they died.
	DeadRetention time.Duration
	// CycleHistory is how many recorded cycles of each resource are kept
	// (see RecordCycle); 0 keeps them all.
	CycleHistory int
	// HistoryRetention is how long hourly event counts and backlog
	// samples are kept.
	HistoryRetention time.Duration
}

// PruneResult counts what Prune deleted.
type PruneResult struct {
	Delivered int64
	Dead      int64
	Events    int64
	// Cycles and Samples count the cycle records and backlog samples
	// deleted.
	Cycles  int64
	Samples int64
}

// EnsureDestination returns the state of destination name, creating it if
// the store does not hold it. A new destination starts after the last
// outbox event detected before since: it receives the events detected from
// since on (pass the time the process started, so that the events of its
// first poll are included), not the history before it — [sqlStore.Replay]
// sends older events. A destination deleted before (DeleteDestination)
// starts from its deletion if that is later than since: a process whose
// config still names a destination another process's config dropped
// resumes where the deletion left it, and never sends again what was
// delivered before. A known destination keeps its position, whatever
// since is.
func (s *sqlStore) EnsureDestination(ctx context.Context, name string, since time.Time) (DestinationState, error) {
	var st DestinationState
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`
INSERT INTO destinations (name, fanout_seq, created_at)
SELECT ?1, coalesce((SELECT seq FROM outbox WHERE detected_at < f.since ORDER BY seq DESC LIMIT 1), 0), f.since
FROM (SELECT CASE WHEN CAST(?2 AS BIGINT) > r.at THEN CAST(?2 AS BIGINT) ELSE r.at END AS since
      FROM (SELECT coalesce((SELECT removed_at FROM removed_destinations WHERE name = ?1), 0) AS at) AS r) AS f
WHERE true
ON CONFLICT (name) DO NOTHING`), name, nanos(since)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM removed_destinations WHERE name = ?`), name); err != nil {
			return err
		}
		var err error
		st, err = s.destination(ctx, tx, name)
		return err
	})
	if err != nil {
		return DestinationState{}, fmt.Errorf("ensure destination %s: %w", name, err)
	}
	return st, nil
}

// querier is what reads need of *sql.DB, *sql.Tx and *sql.Conn.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func (s *sqlStore) destination(ctx context.Context, q querier, name string) (DestinationState, error) {
	st := DestinationState{Name: name}
	var created, disabled int64
	err := q.QueryRowContext(ctx, s.q(`
SELECT fanout_seq, created_at, disabled_at, disabled_reason FROM destinations WHERE name = ?`), name).
		Scan(&st.FanoutSeq, &created, &disabled, &st.DisabledReason)
	if errors.Is(err, sql.ErrNoRows) {
		return DestinationState{}, ErrUnknownDestination
	}
	if err != nil {
		return DestinationState{}, err
	}
	st.CreatedAt, st.DisabledAt = fromNanos(created), fromNanos(disabled)
	return st, nil
}

// Destination returns the state of destination name, or
// ErrUnknownDestination.
func (s *sqlStore) Destination(ctx context.Context, name string) (DestinationState, error) {
	st, err := s.destination(ctx, s.r, name)
	if err != nil {
		return DestinationState{}, fmt.Errorf("read destination %s: %w", name, err)
	}
	return st, nil
}

// Destinations returns the state of every destination the store knows,
// sorted by name.
func (s *sqlStore) Destinations(ctx context.Context) ([]DestinationState, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`
SELECT name, fanout_seq, created_at, disabled_at, disabled_reason FROM destinations ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	defer rows.Close()
	var out []DestinationState
	for rows.Next() {
		var st DestinationState
		var created, disabled int64
		if err := rows.Scan(&st.Name, &st.FanoutSeq, &created, &disabled, &st.DisabledReason); err != nil {
			return nil, fmt.Errorf("list destinations: %w", err)
		}
		st.CreatedAt, st.DisabledAt = fromNanos(created), fromNanos(disabled)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	return out, nil
}

// DisableDestination disables destination name at at, for reason: its
// deliveries stay pending and nothing is sent to it until
// [SQLite.EnableDestination]. Disabling a disabled destination keeps its
// first time and reason.
func (s *sqlStore) DisableDestination(ctx context.Context, name, reason string, at time.Time) error {
	if at.IsZero() {
		at = time.Now()
	}
	res, err := s.w.ExecContext(ctx, s.q(`
UPDATE destinations
SET disabled_at = CASE WHEN disabled_at = 0 THEN ?2 ELSE disabled_at END,
    disabled_reason = CASE WHEN disabled_at = 0 THEN ?3 ELSE disabled_reason END
WHERE name = ?1`), name, nanos(at), truncate(reason, MaxErrorBytes))
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("disable destination %s: %w", name, err)
	}
	return nil
}

// EnableDestination enables destination name again: its pending deliveries
// are sent when next due. Enabling an enabled destination does nothing.
func (s *sqlStore) EnableDestination(ctx context.Context, name string) error {
	res, err := s.w.ExecContext(ctx, s.q(`
UPDATE destinations SET disabled_at = 0, disabled_reason = '' WHERE name = ?`), name)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return fmt.Errorf("enable destination %s: %w", name, err)
	}
	return nil
}

// DeleteDestination forgets destination name at at: its row, its
// deliveries (pending ones included: they are never sent) and their
// attempts, and its lease; it keeps the time of the deletion, so that the
// destination, created again, starts from there (see EnsureDestination).
// The deliveries go a chunk per transaction, so that the write lock is
// never held for long, and the row last; a destination the store does not
// know is ErrUnknownDestination. Call it for a destination nothing
// delivers to any more: its frozen position would otherwise keep Prune
// from pruning the outbox.
func (s *sqlStore) DeleteDestination(ctx context.Context, name string, at time.Time) error {
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q(`
DELETE FROM deliveries WHERE destination = ?1 AND event_id IN (
	SELECT event_id FROM deliveries WHERE destination = ?1 LIMIT ?2)`), name, pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return fmt.Errorf("delete destination %s: %w", name, err)
		}
		if n < pruneChunk {
			break
		}
	}
	// Deliveries queued meanwhile go with the row (ON DELETE CASCADE);
	// its lease goes too, as nothing delivers to it any more.
	var res sql.Result
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if res, err = tx.ExecContext(ctx, s.q(`DELETE FROM destinations WHERE name = ?`), name); err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`
INSERT INTO removed_destinations (name, removed_at) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET removed_at = excluded.removed_at`), name, nanos(at)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`DELETE FROM leases WHERE name = ?`), DestinationLease(name))
		return err
	})
	if err != nil {
		return fmt.Errorf("delete destination %s: %w", name, err)
	}
	s.forgetDestinationWrites(name)
	return nil
}

// mustAffect returns ErrUnknownDestination when res changed no row.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrUnknownDestination
	}
	return nil
}

// Fanout queues for destination dest the outbox events after its
// fanout_seq that match accepts (nil accepts all), as pending deliveries
// due at now,
// and moves fanout_seq to the end of the outbox. It works in chunks of
// outbox events, one transaction each: the deliveries of a chunk and the
// new fanout_seq commit together, so an event is queued once, and memory
// stays bounded however far behind the destination is. An event already
// queued for dest (by a replay) keeps its delivery. It returns how many
// deliveries it queued. match is given each event whole, as EachEvent
// reads it, in seq order; it may be called again for an event whose chunk
// did not commit.
func (s *sqlStore) Fanout(ctx context.Context, dest string, match func(Event) bool, now time.Time) (int, error) {
	// A read first, so that a destination with nothing new costs no write.
	var from, last int64
	err := s.r.QueryRowContext(ctx, s.q(`
SELECT fanout_seq, (SELECT coalesce(max(seq), 0) FROM outbox) FROM destinations WHERE name = ?`), dest).Scan(&from, &last)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrUnknownDestination
	}
	if err != nil {
		return 0, fmt.Errorf("fan out events to %s: %w", dest, err)
	}
	if from >= last {
		return 0, nil
	}
	total := 0
	for {
		n, more, err := s.fanoutChunk(ctx, dest, match, now)
		total += n
		if err != nil {
			return total, fmt.Errorf("fan out events to %s: %w", dest, err)
		}
		if !more {
			return total, nil
		}
	}
}

// fanoutChunk fans out up to fanoutChunk events; more reports a full chunk.
func (s *sqlStore) fanoutChunk(ctx context.Context, dest string, match func(Event) bool, now time.Time) (n int, more bool, err error) {
	err = s.pipelineTx(ctx, func(tx *sql.Tx) error {
		var from int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT fanout_seq FROM destinations WHERE name = ? /*FOR UPDATE*/`), dest).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknownDestination
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+eventColumns+` FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?`), from, fanoutChunk)
		if err != nil {
			return err
		}
		chunk := make([]Event, 0, fanoutChunk)
		for rows.Next() {
			var r eventRow
			if err := rows.Scan(r.dest()...); err != nil {
				rows.Close()
				return err
			}
			e, err := r.event()
			if err != nil {
				rows.Close()
				return err
			}
			chunk = append(chunk, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(chunk) == 0 {
			return nil
		}
		queued := chunk[:0:0]
		for _, e := range chunk {
			if match == nil || match(e) {
				queued = append(queued, e)
			}
		}
		at := nanos(now)
		err = s.execRows(ctx, tx, `
INSERT INTO deliveries (destination, event_id, seq, type, status, next_at, created_at) VALUES `, `
ON CONFLICT (destination, event_id) DO NOTHING`, 7, len(queued), func(i int, args []any) []any {
			e := &queued[i]
			return append(args, dest, e.ID, e.Seq, e.Type, string(StatusPending), at, at)
		})
		if err != nil {
			return fmt.Errorf("queue deliveries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE destinations SET fanout_seq = ? WHERE name = ?`), chunk[len(chunk)-1].Seq, dest); err != nil {
			return err
		}
		n, more = len(queued), len(chunk) == fanoutChunk
		return nil
	}, writeKind{writeFanout, dest})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// Pending returns the pending deliveries q selects, with their events, in
// seq order.
func (s *sqlStore) Pending(ctx context.Context, q PendingQuery) ([]PendingDelivery, error) {
	out, err := s.pending(ctx, q)
	return out, s.noteRead(err, writeKind{readPending, q.Destination})
}

func (s *sqlStore) pending(ctx context.Context, q PendingQuery) ([]PendingDelivery, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("read pending deliveries of %s: limit %d, want above 0", q.Destination, q.Limit)
	}
	query := `
SELECT d.attempts, d.next_at, d.created_at, ` + prefixed("o.", eventColumns) + `
FROM deliveries AS d JOIN outbox AS o ON o.seq = d.seq
WHERE d.destination = ? AND d.status = 'pending' AND d.seq > ?`
	args := []any{q.Destination, q.AfterSeq}
	if !q.Due.IsZero() {
		query += ` AND d.next_at <= ?`
		args = append(args, nanos(q.Due))
	}
	query += ` ORDER BY d.seq LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("read pending deliveries of %s: %w", q.Destination, err)
	}
	defer rows.Close()
	var out []PendingDelivery
	for rows.Next() {
		var p PendingDelivery
		var next, created int64
		var r eventRow
		if err := rows.Scan(append([]any{&p.Attempts, &next, &created}, r.dest()...)...); err != nil {
			return nil, fmt.Errorf("read pending deliveries of %s: %w", q.Destination, err)
		}
		p.NextAt, p.CreatedAt = fromNanos(next), fromNanos(created)
		if p.Event, err = r.event(); err != nil {
			return nil, fmt.Errorf("read pending deliveries of %s: %w", q.Destination, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending deliveries of %s: %w", q.Destination, err)
	}
	return out, nil
}

// nextDueQuery reads the next due time of a destination's pending
// deliveries from deliveries_pending (seq > 0, true of every row, keeps
// SQLite's planner on it rather than on every delivery of the
// destination).
const nextDueQuery = `
SELECT min(next_at) FROM deliveries WHERE destination = ? AND status = 'pending' AND seq > 0 AND next_at > ?`

// NextDue returns the earliest NextAt after after among the pending
// deliveries of dest; ok is false when there is none.
func (s *sqlStore) NextDue(ctx context.Context, dest string, after time.Time) (next time.Time, ok bool, err error) {
	var n sql.NullInt64
	err = s.r.QueryRowContext(ctx, s.q(nextDueQuery), dest, nanos(after)).Scan(&n)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read next due delivery of %s: %w", dest, err)
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(n.Int64), true, nil
}

// The statements of RecordOutcomes.
const (
	outcomeUpdate = `
UPDATE deliveries
SET status = ?3, attempts = attempts + ?4,
    next_at = CASE WHEN CAST(?5 AS BIGINT) = 0 THEN next_at ELSE CAST(?5 AS BIGINT) END,
    last_status = ?6, last_error = ?7, done_at = ?8
WHERE destination = ?1 AND event_id = ?2 AND status = 'pending'`
	attemptInsert = `
INSERT INTO attempts (destination, event_id, body_id, at, status, latency, error, response) VALUES `
)

// RecordOutcomes writes attempt outcomes in one transaction: an attempt
// row for each, and the new state of its delivery. An outcome for a
// delivery that is no longer pending (replayed or pruned meanwhile) is
// logged but changes nothing. The outcomes must be of the destination
// whose lease is lease, held with its fence; otherwise nothing is written
// and the error wraps ErrLeaseLost (the new holder sends those events
// again, with the same ids).
func (s *sqlStore) RecordOutcomes(ctx context.Context, lease Lease, outcomes []Outcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	for _, o := range outcomes {
		if !o.Status.valid() {
			return fmt.Errorf("record delivery attempts: status %q of %s to %s", o.Status, o.EventID, o.Destination)
		}
		if DestinationLease(o.Destination) != lease.Name {
			return fmt.Errorf("record delivery attempts: outcome for %s under lease %s", o.Destination, lease.Name)
		}
	}
	var kinds []writeKind
	for _, o := range outcomes {
		if k := (writeKind{writeOutcomes, o.Destination}); !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	// Every transaction of the delivery loop runs these: prepared once,
	// they are not parsed again.
	err := errors.Join(s.prepare(ctx, leaseCheck), s.prepare(ctx, outcomeUpdate),
		s.prepareRows(ctx, attemptInsert, ``, 8, len(outcomes)))
	if err != nil {
		return fmt.Errorf("record delivery attempts: %w", err)
	}
	err = s.pipelineTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, lease, lease.Name); err != nil {
			return err
		}
		upd := s.preparedIn(ctx, tx, outcomeUpdate)
		logged := make([]Outcome, 0, len(outcomes))
		for _, o := range outcomes {
			counted, done := 0, int64(0)
			if o.Counted {
				counted = 1
			}
			if o.Status != StatusPending {
				done = nanos(o.At)
			}
			res, err := upd.ExecContext(ctx, o.Destination, o.EventID, string(o.Status), counted,
				nanos(o.NextAt), o.HTTPStatus, truncate(o.Error, MaxErrorBytes), done)
			if err != nil {
				return fmt.Errorf("update delivery of %s: %w", o.EventID, err)
			}
			// The attempt row refers to the delivery, which a prune may
			// have removed; such an attempt is not logged.
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 || s.hasDelivery(ctx, tx, o.Destination, o.EventID) {
				logged = append(logged, o)
			}
		}
		return s.execRows(ctx, tx, attemptInsert, ``, 8, len(logged), func(i int, args []any) []any {
			o := logged[i]
			return append(args, o.Destination, o.EventID, o.BodyID, nanos(o.At), o.HTTPStatus,
				int64(o.Latency), truncate(o.Error, MaxErrorBytes), truncate(o.Response, MaxResponseBytes))
		})
	}, kinds...)
	if err != nil {
		return fmt.Errorf("record delivery attempts: %w", err)
	}
	return nil
}

func (s *sqlStore) hasDelivery(ctx context.Context, tx *sql.Tx, dest, eventID string) bool {
	var one int
	err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM deliveries WHERE destination = ? AND event_id = ?`), dest, eventID).Scan(&one)
	return err == nil
}

// truncate makes s valid UTF-8 and cuts it to at most n bytes, at a rune
// boundary.
func truncate(s string, n int) string {
	return clip.Bytes(strings.ToValidUTF8(s, "\uFFFD"), n)
}

// listLimit applies DefaultListLimit and MaxListLimit.
func listLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLimit
	case n > MaxListLimit:
		return MaxListLimit
	}
	return n
}

// Deliveries lists the deliveries f selects, newest event first. With a
// destination and a status of pending or dead, a page costs the same
// however many deliveries the destination has.
func (s *sqlStore) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error) {
	if f.Status != "" && !f.Status.valid() {
		return nil, fmt.Errorf("list deliveries: status %q, want pending, delivered or dead", f.Status)
	}
	q := `
SELECT destination, event_id, seq, type, status, attempts, next_at, last_status, last_error, created_at, done_at
FROM deliveries WHERE TRUE`
	var args []any
	if f.Destination != "" {
		q += ` AND destination = ?`
		args = append(args, f.Destination)
	}
	if f.Status != "" {
		// A literal, checked above, rather than a parameter: the
		// partial indexes over pending and over dead deliveries serve
		// only a query that names their status.
		q += ` AND status = '` + string(f.Status) + `'`
	}
	if f.EventID != "" {
		q += ` AND event_id = ?`
		args = append(args, f.EventID)
	}
	if f.BeforeSeq > 0 {
		q += ` AND seq < ?`
		args = append(args, f.BeforeSeq)
	}
	q += ` ORDER BY seq DESC, destination LIMIT ?`
	args = append(args, listLimit(f.Limit))
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var status string
		var next, created, done int64
		if err := rows.Scan(&d.Destination, &d.EventID, &d.Seq, &d.Type, &status, &d.Attempts, &next,
			&d.LastStatus, &d.LastError, &created, &done); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.Status = DeliveryStatus(status)
		d.NextAt, d.CreatedAt, d.DoneAt = fromNanos(next), fromNanos(created), fromNanos(done)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Attempts lists the attempts f selects, newest first.
func (s *sqlStore) Attempts(ctx context.Context, f AttemptFilter) ([]AttemptLog, error) {
	q := `
SELECT id, destination, event_id, body_id, at, status, latency, error, response
FROM attempts WHERE TRUE`
	var args []any
	if f.Destination != "" {
		q += ` AND destination = ?`
		args = append(args, f.Destination)
	}
	if f.EventID != "" {
		q += ` AND event_id = ?`
		args = append(args, f.EventID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, listLimit(f.Limit))
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list delivery attempts: %w", err)
	}
	defer rows.Close()
	var out []AttemptLog
	for rows.Next() {
		var a AttemptLog
		var at, latency int64
		if err := rows.Scan(&a.ID, &a.Destination, &a.EventID, &a.BodyID, &at, &a.Status, &latency,
			&a.Error, &a.Response); err != nil {
			return nil, fmt.Errorf("list delivery attempts: %w", err)
		}
		a.At, a.Latency = fromNanos(at), time.Duration(latency)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list delivery attempts: %w", err)
	}
	return out, nil
}

// Replay sets the deliveries f selects back to pending, with no attempts
// counted and due at f.Now, in one transaction, and returns how many it
// set. Their events go out again with their own ids, so receivers can tell
// a replay from a new event. With f.EventID, an event never queued for the
// destination is queued now; an event id not in the outbox is
// ErrUnknownEvent, and a destination the store does not know is created
// (as by EnsureDestination at f.Now).
func (s *sqlStore) Replay(ctx context.Context, f ReplayFilter) (int64, error) {
	n, err := s.replay(ctx, f)
	if err != nil {
		return 0, fmt.Errorf("replay deliveries: %w", err)
	}
	return n, nil
}

func (s *sqlStore) replay(ctx context.Context, f ReplayFilter) (int64, error) {
	if f.EventID == "" && !f.Dead && f.Since.IsZero() {
		return 0, errors.New("no event id, dead or since given")
	}
	if f.EventID != "" && f.Destination == "" {
		return 0, errors.New("an event id needs a destination")
	}
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if f.EventID != "" {
			if _, err := tx.ExecContext(ctx, s.q(`
INSERT INTO destinations (name, fanout_seq, created_at)
VALUES (?1, (SELECT coalesce(max(seq), 0) FROM outbox), ?2)
ON CONFLICT (name) DO NOTHING`), f.Destination, nanos(now)); err != nil {
				return err
			}
			var seq, detected int64
			var typ string
			err := tx.QueryRowContext(ctx, s.q(`SELECT seq, type, detected_at FROM outbox WHERE id = ?`), f.EventID).Scan(&seq, &typ, &detected)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w %q", ErrUnknownEvent, f.EventID)
			}
			if err != nil {
				return err
			}
			if (!f.Since.IsZero() && detected < nanos(f.Since)) || f.Dead && !s.isDead(ctx, tx, f.Destination, f.EventID) {
				return nil
			}
			res, err := tx.ExecContext(ctx, s.q(`
INSERT INTO deliveries (destination, event_id, seq, type, status, attempts, next_at, created_at)
VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)
ON CONFLICT (destination, event_id) DO UPDATE
SET status = 'pending', attempts = 0, next_at = ?5, created_at = ?5, done_at = 0`),
				f.Destination, f.EventID, seq, typ, nanos(now))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		}
		q := `
UPDATE deliveries SET status = 'pending', attempts = 0, next_at = ?, created_at = ?, done_at = 0
WHERE TRUE`
		args := []any{nanos(now), nanos(now)}
		if f.Destination != "" {
			q += ` AND destination = ?`
			args = append(args, f.Destination)
		}
		if f.Dead {
			q += ` AND status = 'dead' AND seq > 0`
		}
		if !f.Since.IsZero() {
			q += ` AND seq IN (SELECT seq FROM outbox WHERE detected_at >= ?)`
			args = append(args, nanos(f.Since))
		}
		res, err := tx.ExecContext(ctx, s.q(q), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (s *sqlStore) isDead(ctx context.Context, tx *sql.Tx, dest, eventID string) bool {
	var status string
	err := tx.QueryRowContext(ctx, s.q(`SELECT status FROM deliveries WHERE destination = ? AND event_id = ?`), dest, eventID).Scan(&status)
	return err == nil && status == string(StatusDead)
}

// Backlog returns the backlog of destination dest.
func (s *sqlStore) Backlog(ctx context.Context, dest string) (Backlog, error) {
	return s.backlog(ctx, dest, backlogQuery, dest)
}

// backlogQuery counts a destination's pending and dead deliveries over
// their partial indexes (seq > 0 leads SQLite's planner to them).
const backlogQuery = `
SELECT (SELECT count(*) FROM deliveries WHERE destination = n.name AND status = 'pending' AND seq > 0),
       (SELECT count(*) FROM deliveries WHERE destination = n.name AND status = 'dead' AND seq > 0),
       (SELECT min(created_at) FROM deliveries WHERE destination = n.name AND status = 'pending' AND seq > 0),
       (SELECT disabled_at FROM destinations WHERE name = n.name)
FROM (SELECT ? AS name) AS n`

// backlog reads the backlog of dest with q, which selects the pending and
// dead counts, the oldest pending time and the destination's disabled_at
// (NULL for an unknown destination).
func (s *sqlStore) backlog(ctx context.Context, dest, q string, args ...any) (Backlog, error) {
	b := Backlog{Destination: dest}
	var oldest, disabled sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(q), args...).Scan(&b.Pending, &b.Dead, &oldest, &disabled)
	if err != nil {
		return Backlog{}, fmt.Errorf("read backlog of %s: %w", dest, err)
	}
	if !disabled.Valid {
		return Backlog{}, fmt.Errorf("read backlog of %s: %w", dest, ErrUnknownDestination)
	}
	b.Disabled = disabled.Int64 != 0
	if oldest.Valid {
		b.OldestPending = fromNanos(oldest.Int64)
	}
	return b, nil
}

// Backlogs returns the backlog of every destination the store knows,
// sorted by name.
func (s *sqlStore) Backlogs(ctx context.Context) ([]Backlog, error) {
	dests, err := s.Destinations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Backlog, 0, len(dests))
	for _, d := range dests {
		b, err := s.Backlog(ctx, d.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Prune deletes, a chunk per transaction: member leases expired for more
// than MemberLeaseRetention (the processes they named are gone; other
// leases stay, with their fence); delivered deliveries done before
// o.Now less o.DeliveredRetention, dead ones done before o.Now less
// o.DeadRetention, with their attempts; then the outbox events detected
// before o.Now less the larger retention that every destination has fanned
// out and that no delivery refers to any more (so an event is kept while
// any of its deliveries is listed, and a dead one can be replayed). A zero
// retention prunes none of its kind, and with either at zero no event is
// pruned. Pending deliveries are never pruned.
//
// Every destination row counts, whether anything still delivers to it or
// not: the outbox is pruned only up to the lowest fanout_seq. A destination
// removed from the config, or the destination of a deleted subscription,
// is to be removed with DeleteDestination. The destination of an Inactive
// or Unverified subscription keeps its row, and so its frozen position
// holds back outbox pruning until the subscription is verified again (and
// catches up) or deleted.
func (s *sqlStore) Prune(ctx context.Context, o PruneOptions) (PruneResult, error) {
	var res PruneResult
	dests, err := s.Destinations(ctx)
	if err != nil {
		return res, fmt.Errorf("prune state store: %w", err)
	}
	for _, d := range dests {
		if o.DeliveredRetention > 0 {
			n, err := s.pruneDeliveries(ctx, d.Name, StatusDelivered, o.Now.Add(-o.DeliveredRetention))
			res.Delivered += n
			if err != nil {
				return res, fmt.Errorf("prune delivered deliveries of %s: %w", d.Name, err)
			}
		}
		if o.DeadRetention > 0 {
			n, err := s.pruneDeliveries(ctx, d.Name, StatusDead, o.Now.Add(-o.DeadRetention))
			res.Dead += n
			if err != nil {
				return res, fmt.Errorf("prune dead deliveries of %s: %w", d.Name, err)
			}
		}
	}
	if o.DeliveredRetention > 0 && o.DeadRetention > 0 {
		n, err := s.pruneEvents(ctx, o.Now.Add(-max(o.DeliveredRetention, o.DeadRetention)))
		res.Events += n
		if err != nil {
			return res, fmt.Errorf("prune outbox: %w", err)
		}
	}
	// The deletions of destinations are kept as long as dead deliveries:
	// time enough for every process of a rolling change of the config.
	if o.DeadRetention > 0 {
		if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM removed_destinations WHERE removed_at < ?`),
			nanos(o.Now.Add(-o.DeadRetention))); err != nil {
			return res, fmt.Errorf("prune deleted destinations: %w", err)
		}
	}
	// A process names itself anew at each start: the member leases of
	// those long gone are forgotten.
	if _, err := s.w.ExecContext(ctx, s.q(`DELETE FROM leases WHERE name >= ? AND name < ? AND expires_at < ?`),
		memberLeasePrefix, memberLeasePrefix[:len(memberLeasePrefix)-1]+"0", nanos(o.Now.Add(-MemberLeaseRetention))); err != nil {
		return res, fmt.Errorf("prune member leases: %w", err)
	}
	var before time.Time
	if o.HistoryRetention > 0 {
		before = o.Now.Add(-o.HistoryRetention)
	}
	res.Cycles, res.Samples, err = s.pruneHistory(ctx, o.CycleHistory, before)
	if err != nil {
		return res, fmt.Errorf("prune history: %w", err)
	}
	return res, nil
}

func (s *sqlStore) pruneDeliveries(ctx context.Context, dest string, status DeliveryStatus, before time.Time) (int64, error) {
	return s.deleteChunks(ctx, pruneDeliveriesQuery, dest, string(status), nanos(before))
}

// pruneDeliveriesQuery deletes a chunk of a destination's deliveries of
// one status done before a time, found in deliveries_done: the query
// names that index's condition (status <> 'pending') for SQLite's planner
// to take it.
const pruneDeliveriesQuery = `
DELETE FROM deliveries WHERE destination = ?1 AND event_id IN (
	SELECT event_id FROM deliveries
	WHERE destination = ?1 AND status = ?2 AND status <> 'pending' AND done_at < ?3
	LIMIT ?4)`

// pruneEvents deletes outbox events detected before before, a seq range at
// a time, up to the lowest fanout_seq of the destinations.
func (s *sqlStore) pruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var upTo sql.NullInt64
	err := s.r.QueryRowContext(ctx, s.q(`SELECT min(fanout_seq) FROM destinations`)).Scan(&upTo)
	if err != nil {
		return 0, err
	}
	if !upTo.Valid {
		// No destination: nothing is waiting for any event.
		if upTo.Int64, err = s.LastSeq(ctx); err != nil {
			return 0, err
		}
	}
	var total, after int64
	for after < upTo.Int64 {
		var n, end int64
		var old bool
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			// The range of the next chunk, and whether any of it is old.
			err := tx.QueryRowContext(ctx, s.q(`
SELECT coalesce(max(seq), 0), coalesce(max(CASE WHEN detected_at < ?3 THEN 1 ELSE 0 END), 0) FROM (
	SELECT seq, detected_at FROM outbox WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?4) AS c`),
				after, upTo.Int64, nanos(before), pruneChunk).Scan(&end, &old)
			if err != nil || end == 0 || !old {
				return err
			}
			res, err := tx.ExecContext(ctx, s.q(`
DELETE FROM outbox AS o
WHERE o.seq > ?1 AND o.seq <= ?2 AND o.detected_at < ?3
  AND NOT EXISTS (SELECT 1 FROM destinations AS t JOIN deliveries AS d
                  ON d.destination = t.name AND d.event_id = o.id)`), after, end, nanos(before))
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil {
			return total, err
		}
		// Events are roughly in detection order: a chunk with no old
		// event ends the scan.
		if end == 0 || !old {
			return total, nil
		}
		after = end
	}
	return total, nil
}
