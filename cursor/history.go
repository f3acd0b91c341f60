package cursor

// History (schema version 8): what the store keeps of the past for status
// views, each table small and pruned (see Prune):
//
//   - cycles: one row per cycle that began, written when it ends —
//     (resource, cycle) primary key, started_at, ended_at, pages, records,
//     skipped, created, updated, deleted, held_back, known (the records
//     known after a complete cycle, -1 after a failed one), watermark
//     (after the cycle), silent, error (empty for a complete cycle).
//   - resource_hours: per resource and hour (the Unix nanoseconds of the
//     hour's start, UTC), the cycles that ended in it, how many failed and
//     the events they wrote. Written with the cycle's row, so counts over
//     a day read 24 rows, whatever the number of events.
//   - backlog_samples: per destination and sample time, its pending and
//     dead deliveries and its oldest pending one; deleted with their
//     destination.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CycleRecord is the history of one cycle of a resource, recorded when it
// ended, complete or not.
type CycleRecord struct {
	Resource string
	// Cycle is the cycle's number (BeginCycle's); above 0.
	Cycle   int64
	Started time.Time
	Ended   time.Time
	// Pages and Records are those fetched and committed; Skipped counts
	// records reported and skipped.
	Pages, Records, Skipped int64
	// Created, Updated and Deleted count the events the cycle wrote (a
	// failed cycle's committed pages included); HeldBack the deletes the
	// delete guard held back.
	Created, Updated, Deleted, HeldBack int64
	// Known is the number of records the store knew after the cycle; -1
	// when the cycle failed (it was not counted).
	Known int64
	// Watermark is the resource's watermark after the cycle.
	Watermark time.Time
	// Silent marks a first cycle that recorded what exists and emitted
	// nothing.
	Silent bool
	// Error says why the cycle failed; empty for a complete cycle. Stored
	// up to MaxErrorBytes.
	Error string
}

// Events is the number of events the cycle wrote.
func (c CycleRecord) Events() int64 { return c.Created + c.Updated + c.Deleted }

// Duration is how long the cycle took.
func (c CycleRecord) Duration() time.Duration { return c.Ended.Sub(c.Started) }

// CycleFilter selects the cycles of one resource, newest first.
type CycleFilter struct {
	// Resource is required.
	Resource string
	// Before selects cycles numbered below it; 0 sets no bound. Pass the
	// last cycle of a page to read the next one.
	Before int64
	// Failed selects only cycles that failed.
	Failed bool
	// Limit is the most returned: DefaultListLimit when 0, at most
	// MaxListLimit.
	Limit int
}

// HourCount is what the cycles of one resource that ended in one hour
// did.
type HourCount struct {
	Resource string
	// Hour is the start of the hour, UTC.
	Hour time.Time
	// Cycles counts the cycles that ended in the hour, Failed those of
	// them that failed, and Events the events they wrote.
	Cycles, Failed, Events int64
}

// BacklogSample is a destination's backlog at one time.
type BacklogSample struct {
	Destination   string
	At            time.Time
	Pending, Dead int64
	// OldestPending is the CreatedAt of the oldest pending delivery; zero
	// when none was pending.
	OldestPending time.Time
}

// RecordCycle records c, the history of a cycle that ended, and adds it
// to the counts of its resource for the hour of c.Ended, in one
// transaction. lease must be the resource's lease, held with its fence
// (as for CommitPage): otherwise nothing is written and the error wraps
// ErrLeaseLost. A cycle already recorded is left as it was, and counted
// once. c.Cycle must be above 0 and c.Ended set.
func (s *sqlStore) RecordCycle(ctx context.Context, lease Lease, c CycleRecord) error {
	if c.Cycle <= 0 || c.Ended.IsZero() {
		return fmt.Errorf("record cycle %d of %s: want a cycle number above 0 and an end time", c.Cycle, c.Resource)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, lease, ResourceLease(c.Resource)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`
INSERT INTO cycles (resource, cycle, started_at, ended_at, pages, records, skipped,
                    created, updated, deleted, held_back, known, watermark, silent, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (resource, cycle) DO NOTHING`),
			c.Resource, c.Cycle, nanos(c.Started), nanos(c.Ended), c.Pages, c.Records, c.Skipped,
			c.Created, c.Updated, c.Deleted, c.HeldBack, c.Known, nanos(c.Watermark), b2i(c.Silent),
			truncate(c.Error, MaxErrorBytes))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		failed := 0
		if c.Error != "" {
			failed = 1
		}
		_, err = tx.ExecContext(ctx, s.q(`
INSERT INTO resource_hours (resource, hour, cycles, failed, events) VALUES (?, ?, 1, ?, ?)
ON CONFLICT (resource, hour) DO UPDATE
SET cycles = resource_hours.cycles + 1, failed = resource_hours.failed + excluded.failed,
    events = resource_hours.events + excluded.events`),
			c.Resource, nanos(c.Ended.UTC().Truncate(time.Hour)), failed, c.Events())
		return err
	})
	if err != nil {
		return fmt.Errorf("record cycle %d of %s: %w", c.Cycle, c.Resource, err)
	}
	return nil
}

// Cycles returns the recorded cycles f selects, newest (highest number)
// first.
func (s *sqlStore) Cycles(ctx context.Context, f CycleFilter) ([]CycleRecord, error) {
	if f.Resource == "" {
		return nil, errors.New("list cycles: no resource given")
	}
	q := `
SELECT resource, cycle, started_at, ended_at, pages, records, skipped,
       created, updated, deleted, held_back, known, watermark, silent, error
FROM cycles WHERE resource = ?`
	args := []any{f.Resource}
	if f.Before > 0 {
		q += ` AND cycle < ?`
		args = append(args, f.Before)
	}
	if f.Failed {
		q += ` AND error <> ''`
	}
	q += ` ORDER BY cycle DESC LIMIT ?`
	args = append(args, listLimit(f.Limit))
	out, err := queryAll(ctx, s, q, args, func(rows *sql.Rows, c *CycleRecord) error {
		var started, ended, wm int64
		err := rows.Scan(&c.Resource, &c.Cycle, &started, &ended, &c.Pages, &c.Records, &c.Skipped,
			&c.Created, &c.Updated, &c.Deleted, &c.HeldBack, &c.Known, &wm, &c.Silent, &c.Error)
		c.Started, c.Ended, c.Watermark = fromNanos(started), fromNanos(ended), fromNanos(wm)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list cycles of %s: %w", f.Resource, err)
	}
	return out, nil
}

// EventsPerHour returns, for every resource, the counts of the hours that
// start at or after since (truncated to the hour), sorted by resource and
// hour. An hour in which no cycle of a resource ended has no entry.
func (s *sqlStore) EventsPerHour(ctx context.Context, since time.Time) ([]HourCount, error) {
	out, err := queryAll(ctx, s, `
SELECT resource, hour, cycles, failed, events FROM resource_hours
WHERE hour >= ? ORDER BY resource, hour`, []any{nanos(since.UTC().Truncate(time.Hour))},
		func(rows *sql.Rows, h *HourCount) error {
			var hour int64
			err := rows.Scan(&h.Resource, &hour, &h.Cycles, &h.Failed, &h.Events)
			h.Hour = fromNanos(hour)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("read events per hour: %w", err)
	}
	return out, nil
}

// RecordBacklog stores samples. A sample of a destination at a time
// already sampled replaces that one (processes sharing the store that
// sample at the same times keep one sample each); a sample of a
// destination the store does not know (deleted meanwhile) is dropped.
func (s *sqlStore) RecordBacklog(ctx context.Context, samples []BacklogSample) error {
	if len(samples) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, s.q(`
INSERT INTO backlog_samples (destination, at, pending, dead, oldest_pending)
SELECT name, ?, ?, ?, ? FROM destinations WHERE name = ?
ON CONFLICT (destination, at) DO UPDATE
SET pending = excluded.pending, dead = excluded.dead, oldest_pending = excluded.oldest_pending`))
		if err != nil {
			return err
		}
		defer st.Close()
		for _, b := range samples {
			if _, err := st.ExecContext(ctx, nanos(b.At), b.Pending, b.Dead, nanos(b.OldestPending), b.Destination); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record backlog samples: %w", err)
	}
	return nil
}

// BacklogHistory returns the backlog samples of destination dest (of
// every destination when dest is empty) taken at or after since, sorted
// by destination and time.
func (s *sqlStore) BacklogHistory(ctx context.Context, dest string, since time.Time) ([]BacklogSample, error) {
	q := `SELECT destination, at, pending, dead, oldest_pending FROM backlog_samples WHERE at >= ?`
	args := []any{nanos(since)}
	if dest != "" {
		q += ` AND destination = ?`
		args = append(args, dest)
	}
	out, err := queryAll(ctx, s, q+` ORDER BY destination, at`, args, func(rows *sql.Rows, b *BacklogSample) error {
		var at, oldest int64
		err := rows.Scan(&b.Destination, &at, &b.Pending, &b.Dead, &oldest)
		b.At, b.OldestPending = fromNanos(at), fromNanos(oldest)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read backlog history: %w", err)
	}
	return out, nil
}

// BacklogAtMost is Backlog counting at most limit pending and limit dead
// deliveries, so that it answers at once however long the backlog: a
// count above limit reads limit+1, and OldestPending is then the oldest
// of the limit+1 pending deliveries of the earliest events (the oldest of
// all unless a replay made later events older). Up to limit, it is
// Backlog. limit must be above 0.
func (s *sqlStore) BacklogAtMost(ctx context.Context, dest string, limit int64) (Backlog, error) {
	if limit <= 0 {
		return Backlog{}, fmt.Errorf("read backlog of %s: limit %d, want above 0", dest, limit)
	}
	return s.backlog(ctx, dest, backlogAtMostQuery, dest, limit+1)
}

// backlogAtMostQuery is Backlog's query with each count bounded, over the
// same partial indexes.
const backlogAtMostQuery = `
SELECT (SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE destination = ?1 AND status = 'pending' AND seq > 0 LIMIT ?2) AS p),
       (SELECT count(*) FROM (SELECT 1 FROM deliveries WHERE destination = ?1 AND status = 'dead' AND seq > 0 LIMIT ?2) AS d),
       (SELECT min(created_at) FROM (
           SELECT created_at FROM deliveries WHERE destination = ?1 AND status = 'pending' AND seq > 0 ORDER BY seq LIMIT ?2) AS o),
       (SELECT disabled_at FROM destinations WHERE name = ?1)`

// Cursors returns the state of every resource the store has a row for,
// sorted by name, as Resources does but without counting the records
// known (Known is -1), so that it answers at once however many records
// there are. The last complete cycle's CycleRecord.Known says how many
// there were then.
func (s *sqlStore) Cursors(ctx context.Context) ([]ResourceState, error) {
	out, err := s.resources(ctx, `
SELECT resource, watermark, cycle, completed, last_complete, held_deletes, watch_from, -1 FROM resources ORDER BY resource`)
	if err != nil {
		return nil, fmt.Errorf("list cursors: %w", err)
	}
	return out, nil
}

// pruneHistory deletes, a chunk per transaction, the cycles of each
// resource beyond its keep newest (none when keep is 0), and the hourly
// counts and backlog samples from before before (none when before is
// zero).
func (s *sqlStore) pruneHistory(ctx context.Context, keep int, before time.Time) (cycles, samples int64, err error) {
	if keep > 0 {
		resources, err := s.column(ctx, `SELECT DISTINCT resource FROM cycles`)
		if err != nil {
			return 0, 0, err
		}
		for _, r := range resources {
			n, err := s.deleteChunks(ctx, `
DELETE FROM cycles WHERE resource = ?1 AND cycle IN (
	SELECT cycle FROM cycles
	WHERE resource = ?1 AND cycle < (SELECT cycle FROM cycles WHERE resource = ?1 ORDER BY cycle DESC LIMIT 1 OFFSET ?2)
	LIMIT ?3)`, r, keep-1)
			cycles += n
			if err != nil {
				return cycles, samples, err
			}
		}
	}
	if before.IsZero() {
		return cycles, samples, nil
	}
	if _, err := s.deleteChunks(ctx, `
DELETE FROM resource_hours WHERE (resource, hour) IN (
	SELECT resource, hour FROM resource_hours WHERE hour < ?1 LIMIT ?2)`, nanos(before)); err != nil {
		return cycles, samples, err
	}
	dests, err := s.column(ctx, `SELECT DISTINCT destination FROM backlog_samples`)
	if err != nil {
		return cycles, samples, err
	}
	for _, d := range dests {
		n, err := s.deleteChunks(ctx, `
DELETE FROM backlog_samples WHERE destination = ?1 AND at IN (
	SELECT at FROM backlog_samples WHERE destination = ?1 AND at < ?2 LIMIT ?3)`, d, nanos(before))
		samples += n
		if err != nil {
			return cycles, samples, err
		}
	}
	return cycles, samples, nil
}

// deleteChunks runs del with args and then pruneChunk as its last
// argument, one transaction at a time, until it deletes fewer than
// pruneChunk rows, and returns how many it deleted.
func (s *sqlStore) deleteChunks(ctx context.Context, del string, args ...any) (int64, error) {
	args = append(args, pruneChunk)
	var total int64
	for {
		var n int64
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.q(del), args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < pruneChunk {
			return total, err
		}
	}
}

// column returns the strings of the one column q selects.
func (s *sqlStore) column(ctx context.Context, q string) ([]string, error) {
	return queryAll(ctx, s, q, nil, func(rows *sql.Rows, v *string) error { return rows.Scan(v) })
}

// queryAll runs q with args on the readers and returns one value per row,
// as scan reads it.
func queryAll[T any](ctx context.Context, s *sqlStore, q string, args []any, scan func(*sql.Rows, *T) error) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
