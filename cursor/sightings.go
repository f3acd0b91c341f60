package cursor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// A snapshot cycle must know, at its end, which records it listed: those
// it did not are missing. A record written in the cycle (new, changed)
// has its last_seen set to the cycle's number with the rest of its row.
// A record listed unchanged (a Page's Touch) is a sighting only: with a
// dialect whose transientSeen is true (SQLite), a cycle begun by
// BeginCycle keeps its sightings in TEMP tables of the writer connection,
// outside the file and its write-ahead log, instead of writing last_seen
// for each; otherwise, last_seen is written.
//
// The TEMP tables live as long as the connection, and go with it: a
// cycle is not durable until FinishCycle commits, and one that a crash or
// a stop cut short is redone whole by the next, so its sightings need not
// survive it. The resource's transient_cycle names the cycle whose
// sightings are kept so: a page or a finish of that cycle that finds
// them gone (the connection was replaced) fails rather than taking what
// the cycle listed for missing.
//
// What must survive is a miss: the seen column missed is the first
// complete snapshot cycle that missed the record with no sighting since
// (0 for none). A complete snapshot cycle sets it on the records it
// missed; a sighting clears it (a written record always, a touched one
// where it is set: few records, and an index of those alone finds them).
// The next complete snapshot cycle that misses a record whose missed is
// set confirms its delete, as a last_seen before the previous complete
// snapshot cycle did.

// sightingTables are the TEMP tables of the writer connection: each
// resource's open cycle and its sightings.
const sightingTables = `
CREATE TEMP TABLE IF NOT EXISTS cycle_open (
	resource TEXT    NOT NULL PRIMARY KEY,
	cycle    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TEMP TABLE IF NOT EXISTS cycle_seen (
	resource TEXT NOT NULL,
	id       TEXT NOT NULL,
	PRIMARY KEY (resource, id)
) WITHOUT ROWID;`

// errSightingsLost fails a page or a finish of a cycle whose sightings
// were kept in TEMP tables that are gone.
var errSightingsLost = errors.New("the records this cycle listed, kept by the store's connection, were lost with it (the connection was replaced); the cycle is redone")

// openSightings makes cycle the one of resource whose sightings the TEMP
// tables keep, in BeginCycle's transaction.
func (s *sqlStore) openSightings(ctx context.Context, tx *sql.Tx, resource string, cycle int64) error {
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{sightingTables, nil},
		{`DELETE FROM temp.cycle_seen WHERE resource = ?`, []any{resource}},
		{`INSERT INTO temp.cycle_open (resource, cycle) VALUES (?, ?)
ON CONFLICT (resource) DO UPDATE SET cycle = excluded.cycle`, []any{resource, cycle}},
		{`UPDATE resources SET transient_cycle = ? WHERE resource = ?`, []any{cycle, resource}},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("open the cycle's sightings: %w", err)
		}
	}
	return nil
}

// closeSightings drops the sightings of resource's cycle, which its
// finish has used, in FinishCycle's transaction.
func (s *sqlStore) closeSightings(ctx context.Context, tx *sql.Tx, resource string, cycle int64) error {
	for _, q := range []string{
		`DELETE FROM temp.cycle_seen WHERE resource = ?1`,
		`DELETE FROM temp.cycle_open WHERE resource = ?1`,
		`UPDATE resources SET transient_cycle = 0 WHERE resource = ?1 AND transient_cycle = ?2`,
	} {
		if _, err := tx.ExecContext(ctx, q, resource, cycle); err != nil {
			return fmt.Errorf("close the cycle's sightings: %w", err)
		}
	}
	return nil
}

// transientFor reports whether the sightings of resource's cycle are in
// the TEMP tables of q, the writer connection; it fails with
// errSightingsLost when they should be and are not.
func (s *sqlStore) transientFor(ctx context.Context, q querier, resource string, cycle int64) (bool, error) {
	if !s.d.transientSeen() {
		return false, nil
	}
	var tables int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM temp.sqlite_schema WHERE name = 'cycle_open'`).Scan(&tables); err != nil {
		return false, err
	}
	if tables > 0 {
		var open int64
		err := q.QueryRowContext(ctx, `SELECT cycle FROM temp.cycle_open WHERE resource = ?`, resource).Scan(&open)
		switch {
		case err == nil && open == cycle:
			return true, nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return false, err
		}
	}
	var kept int64
	err := q.QueryRowContext(ctx, `SELECT transient_cycle FROM resources WHERE resource = ?`, resource).Scan(&kept)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, err
	case kept == cycle:
		return false, errSightingsLost
	}
	return false, nil
}

// touch records p.Touch as seen in p.Cycle (see the top of this file).
func (s *sqlStore) touch(ctx context.Context, tx *sql.Tx, p Page) error {
	list, err := json.Marshal(p.Touch)
	if err != nil {
		return err
	}
	transient, err := s.transientFor(ctx, tx, p.Resource, p.Cycle)
	if err != nil {
		return err
	}
	if !transient {
		_, err := tx.ExecContext(ctx, s.q(`
UPDATE seen SET last_seen = ?, missed = 0
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`), p.Cycle, p.Resource, string(list))
		return err
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO temp.cycle_seen (resource, id) SELECT ?, value FROM json_each(?) WHERE true
ON CONFLICT DO NOTHING`, p.Resource, string(list)); err != nil {
		return err
	}
	// Without the index of the marked records, the planner reads the
	// resource's rows in key order to find none.
	var marked bool
	if err := tx.QueryRowContext(ctx, `
SELECT EXISTS (SELECT 1 FROM seen INDEXED BY seen_missed WHERE resource = ? AND missed <> 0)`, p.Resource).Scan(&marked); err != nil || !marked {
		return err
	}
	_, err = tx.ExecContext(ctx, `
UPDATE seen SET missed = 0
WHERE resource = ? AND missed <> 0 AND id IN (SELECT value FROM json_each(?))`, p.Resource, string(list))
	return err
}

// unseen is the condition that the record s (of resource ?1) was not
// seen in cycle ?2.
func unseen(transient bool) string {
	if transient {
		return `s.last_seen < ?2 AND NOT EXISTS (SELECT 1 FROM temp.cycle_seen AS t WHERE t.resource = s.resource AND t.id = s.id)`
	}
	return `s.last_seen < ?2`
}

// countMissing counts the records of resource that are not tombstones,
// and those of them that cycle has not seen.
//
// With the sightings in the TEMP table, the records not written in the
// cycle, less those it touched, are a compound EXCEPT of two reads of
// the same key order (resource, id), which SQLite merges in one pass
// over each: a lookup of the sightings for each record, as unseen has
// it, cost a steady cycle's finish several times as much.
func (s *sqlStore) countMissing(ctx context.Context, q querier, resource string, cycle int64, transient bool) (known, missing int64, err error) {
	query := `
SELECT count(*), coalesce(sum(CASE WHEN ` + unseen(false) + ` THEN 1 ELSE 0 END), 0)
FROM seen AS s WHERE s.resource = ?1 AND s.deleted = 0`
	if transient {
		query = `
SELECT (SELECT count(*) FROM seen WHERE resource = ?1 AND deleted = 0),
       (SELECT count(*) FROM (
		SELECT id FROM seen WHERE resource = ?1 AND deleted = 0 AND last_seen < ?2
		EXCEPT
		SELECT id FROM temp.cycle_seen WHERE resource = ?1
		ORDER BY 1))`
	}
	err = q.QueryRowContext(ctx, s.q(query), resource, cycle).Scan(&known, &missing)
	return known, missing, err
}

// markMissed sets missed on the records of f.Resource that f.Cycle, a
// complete snapshot cycle, has not seen and that no earlier one missed
// since they were last seen.
func (s *sqlStore) markMissed(ctx context.Context, tx *sql.Tx, f Finish, transient bool) error {
	_, err := tx.ExecContext(ctx, s.q(`
UPDATE seen AS s SET missed = ?2
WHERE s.resource = ?1 AND s.deleted = 0 AND s.missed = 0 AND `+unseen(transient)), f.Resource, f.Cycle)
	if err != nil {
		return fmt.Errorf("mark missing records: %w", err)
	}
	return nil
}
