package cursor

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// ResourceState is what the store holds for resource; a resource it has
// never seen has the zero state, with Resource set.
func (s *sqlStore) ResourceState(ctx context.Context, resource string) (ResourceState, error) {
	st := ResourceState{Resource: resource}
	var wm, last int64
	var watch sql.NullInt64
	// One statement, so the counters and the count are of one moment.
	err := s.r.QueryRowContext(ctx, s.q(`
SELECT coalesce(r.watermark, 0), coalesce(r.cycle, 0), coalesce(r.completed, 0),
       coalesce(r.last_complete, 0), coalesce(r.held_deletes, 0), r.watch_from,
       (SELECT count(*) FROM seen WHERE resource = n.name AND deleted = 0)
FROM (SELECT ? AS name) AS n LEFT JOIN resources AS r ON r.resource = n.name`),
		resource).Scan(&wm, &st.Cycle, &st.Completed, &last, &st.HeldDeletes, &watch, &st.Known)
	if err := s.noteRead(err, writeKind{readResource, resource}); err != nil {
		return ResourceState{}, fmt.Errorf("read state of %s: %w", resource, err)
	}
	st.Watermark, st.LastComplete = fromNanos(wm), fromNanos(last)
	st.WatchFrom, st.Watching = fromNanos(watch.Int64), watch.Valid
	return st, nil
}

// Resources is the state of every resource the store has a row for,
// sorted by name.
func (s *sqlStore) Resources(ctx context.Context) ([]ResourceState, error) {
	out, err := s.resources(ctx, `
SELECT r.resource, r.watermark, r.cycle, r.completed, r.last_complete, r.held_deletes, r.watch_from,
       coalesce(k.known, 0)
FROM resources AS r
LEFT JOIN (SELECT resource, count(*) AS known FROM seen WHERE deleted = 0 GROUP BY resource) AS k
       ON k.resource = r.resource
ORDER BY r.resource`)
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	return out, nil
}

// resources reads the resource states q selects: resource, watermark,
// cycle, completed, last_complete, held_deletes, watch_from and known.
func (s *sqlStore) resources(ctx context.Context, q string) ([]ResourceState, error) {
	return queryAll(ctx, s, q, nil, func(rows *sql.Rows, st *ResourceState) error {
		var wm, last int64
		var watch sql.NullInt64
		err := rows.Scan(&st.Resource, &wm, &st.Cycle, &st.Completed, &last, &st.HeldDeletes, &watch, &st.Known)
		st.Watermark, st.LastComplete = fromNanos(wm), fromNanos(last)
		st.WatchFrom, st.Watching = fromNanos(watch.Int64), watch.Valid
		return err
	})
}

// InitResource sets the watermark of a resource that has not completed a
// cycle and has no watermark yet (the configured start time); otherwise it
// does nothing. Calling it at every start is safe.
func (s *sqlStore) InitResource(ctx context.Context, resource string, watermark time.Time) error {
	_, err := s.w.ExecContext(ctx, s.q(`
INSERT INTO resources (resource, watermark) VALUES (?1, ?2)
ON CONFLICT (resource) DO UPDATE SET watermark = excluded.watermark
WHERE resources.completed = 0 AND resources.watermark = 0`),
		resource, nanos(watermark))
	if err != nil {
		return fmt.Errorf("init resource %s: %w", resource, err)
	}
	return nil
}

// BeginCycle counts a new cycle of resource and returns its number (1 for
// the first). The number is committed before it is returned, so no two
// cycles share one, even across restarts. lease must be the resource's
// lease, held: otherwise nothing is written and the error wraps
// ErrLeaseLost.
func (s *sqlStore) BeginCycle(ctx context.Context, resource string, lease Lease) (int64, error) {
	var cycle int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, lease, ResourceLease(resource)); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, s.q(`
INSERT INTO resources (resource, cycle) VALUES (?, 1)
ON CONFLICT (resource) DO UPDATE SET cycle = resources.cycle + 1
RETURNING cycle`), resource).Scan(&cycle)
		if err != nil || !s.d.transientSeen() {
			return err
		}
		return s.openSightings(ctx, tx, resource, cycle)
	})
	if err != nil {
		return 0, fmt.Errorf("begin cycle of %s: %w", resource, err)
	}
	return cycle, nil
}

// ResetResource sets the watermark of resource, backwards too; the zero
// time forgets it. The records seen are kept, so a reset re-reads changes
// without taking known records for new.
func (s *sqlStore) ResetResource(ctx context.Context, resource string, watermark time.Time) error {
	_, err := s.w.ExecContext(ctx, s.q(`
INSERT INTO resources (resource, watermark) VALUES (?1, ?2)
ON CONFLICT (resource) DO UPDATE SET watermark = excluded.watermark`),
		resource, nanos(watermark))
	if err != nil {
		return fmt.Errorf("reset resource %s: %w", resource, err)
	}
	return nil
}

// ensureResource gives resource a row, so that seen records can refer to it.
func (s *sqlStore) ensureResource(ctx context.Context, tx *sql.Tx, resource string) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO resources (resource) VALUES (?) ON CONFLICT DO NOTHING`), resource)
	return err
}
