package cursor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// deleteChunk is how many missing records a snapshot reads at a time, so
// that a resource of any size deletes in bounded memory.
const deleteChunk = 500

// Seen returns the versions the store holds of ids in resource; an id it
// does not hold has no entry. Any number of ids may be asked at once. The
// versions come without their Content: a cycle reads every record's
// version, and only the content of those that changed (see Contents).
func (s *sqlStore) Seen(ctx context.Context, resource string, ids []string) (map[string]Seen, error) {
	out, err := s.seen(ctx, resource, ids)
	return out, s.noteRead(err, writeKind{readResource, resource})
}

func (s *sqlStore) seen(ctx context.Context, resource string, ids []string) (map[string]Seen, error) {
	out := make(map[string]Seen, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read seen records of %s: %w", resource, err)
	}
	rows, err := s.r.QueryContext(ctx, s.q(`
SELECT id, updated, hash, rev, deleted FROM seen
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`), resource, string(list))
	if err != nil {
		return nil, fmt.Errorf("read seen records of %s: %w", resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var updated int64
		var v Seen
		if err := rows.Scan(&id, &updated, &v.Hash, &v.Rev, &v.Deleted); err != nil {
			return nil, fmt.Errorf("read seen records of %s: %w", resource, err)
		}
		v.Updated = fromNanos(updated)
		out[id] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read seen records of %s: %w", resource, err)
	}
	return out, nil
}

// Contents returns the content the store keeps of each of ids in resource
// (the Content of its version); an id without one has no entry. Any
// number of ids may be asked at once.
func (s *sqlStore) Contents(ctx context.Context, resource string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read record contents of %s: %w", resource, err)
	}
	rows, err := s.r.QueryContext(ctx, s.q(`
SELECT id, data FROM seen_content
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`), resource, string(list))
	if err != nil {
		return nil, fmt.Errorf("read record contents of %s: %w", resource, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			return nil, fmt.Errorf("read record contents of %s: %w", resource, err)
		}
		out[id] = data
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read record contents of %s: %w", resource, err)
	}
	return out, nil
}

// CommitPage writes a page in one transaction: its records' versions (seen
// in p.Cycle) and the contents they carry, the sighting in p.Cycle of the
// p.Touch ids the store holds (see sightings.go), and p.Events appended to
// the outbox (an event whose ID is already there keeps its
// place and content). On error nothing of the page is written. It does not
// move the watermark; only [SQLite.FinishCycle] does.
func (s *sqlStore) CommitPage(ctx context.Context, p Page) error {
	err := s.pipelineTx(ctx, func(tx *sql.Tx) error { return s.commitPage(ctx, tx, p) }, writeKind{writeCommit, p.Resource})
	if err != nil {
		return fmt.Errorf("commit page of %s: %w", p.Resource, err)
	}
	if len(p.Events) > 0 {
		s.watchers.committed()
	}
	return nil
}

func (s *sqlStore) commitPage(ctx context.Context, tx *sql.Tx, p Page) error {
	if err := s.checkLease(ctx, tx, p.Lease, ResourceLease(p.Resource)); err != nil {
		return err
	}
	if err := s.ensureResource(ctx, tx, p.Resource); err != nil {
		return err
	}
	err := s.execRows(ctx, tx, `
INSERT INTO seen (resource, id, updated, hash, last_seen, rev, deleted) VALUES `, `
ON CONFLICT (resource, id) DO UPDATE
SET updated = excluded.updated, hash = excluded.hash, last_seen = excluded.last_seen,
    rev = excluded.rev, deleted = excluded.deleted, missed = 0`,
		7, len(p.Records), func(i int, args []any) []any {
			r := p.Records[i]
			return append(args, p.Resource, r.ID, nanos(r.Updated), r.Hash, p.Cycle, r.Rev, b2i(r.Deleted))
		})
	if err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	if err := s.writeContents(ctx, tx, p.Resource, p.Records); err != nil {
		return fmt.Errorf("write record contents: %w", err)
	}
	if len(p.Touch) > 0 {
		if err := s.touch(ctx, tx, p); err != nil {
			return fmt.Errorf("touch records: %w", err)
		}
	}
	return s.insertEvents(ctx, tx, p.Events)
}

// writeContents stores the contents of the records that carry one.
func (s *sqlStore) writeContents(ctx context.Context, tx *sql.Tx, resource string, recs []SeenRecord) error {
	var with []int
	for i := range recs {
		if recs[i].Content != "" {
			with = append(with, i)
		}
	}
	return s.execRows(ctx, tx, `
INSERT INTO seen_content (resource, id, data) VALUES `, `
ON CONFLICT (resource, id) DO UPDATE SET data = excluded.data`,
		3, len(with), func(i int, args []any) []any {
			r := &recs[with[i]]
			return append(args, resource, r.ID, r.Content)
		})
}

// FinishCycle completes a cycle in one transaction. With f.Snapshot, the
// records not seen in f.Cycle are missing, and those whose absence is
// confirmed (see [Finish]) are deleted: each gets the event f.Deleted
// builds (given its last version and content), and its record becomes a
// tombstone without content — unless the missing records are more than
// f.DeleteGuard of the known ones, in which case none is deleted and their
// number is kept as HeldDeletes (a guard of 0 holds back every delete, 1
// or more none). A snapshot cycle becomes the one whose misses the next
// one confirms. With f.DropContent, no content of the resource's records
// is kept any more. Then the watermark moves to f.Watermark if that is
// later (it never moves back), the resource's WatchFrom is set to
// f.WatchFrom if it has none, and the cycle counts as completed at f.Now.
// On error nothing is written.
func (s *sqlStore) FinishCycle(ctx context.Context, f Finish) (FinishResult, error) {
	var res FinishResult
	err := s.pipelineTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = s.finishCycle(ctx, tx, f)
		return err
	}, writeKind{writeCommit, f.Resource})
	if err != nil {
		return FinishResult{}, fmt.Errorf("finish cycle %d of %s: %w", f.Cycle, f.Resource, err)
	}
	if res.Deleted > 0 {
		s.watchers.committed()
	}
	return res, nil
}

func (s *sqlStore) finishCycle(ctx context.Context, tx *sql.Tx, f Finish) (FinishResult, error) {
	var res FinishResult
	if err := s.checkLease(ctx, tx, f.Lease, ResourceLease(f.Resource)); err != nil {
		return res, err
	}
	if err := s.ensureResource(ctx, tx, f.Resource); err != nil {
		return res, err
	}
	transient, err := s.transientFor(ctx, tx, f.Resource, f.Cycle)
	if err != nil {
		return res, err
	}
	var missing, prevSnapshot int64
	if res.Known, missing, err = s.countMissing(ctx, tx, f.Resource, f.Cycle, transient); err != nil {
		return res, fmt.Errorf("count records: %w", err)
	}
	if err := tx.QueryRowContext(ctx, s.q(`SELECT snapshot_cycle FROM resources WHERE resource = ?`), f.Resource).Scan(&prevSnapshot); err != nil {
		return res, fmt.Errorf("count records: %w", err)
	}
	snapshotCycle := prevSnapshot
	if f.Snapshot {
		res.Missing = missing
		snapshotCycle = f.Cycle
		switch {
		case missing == 0:
		case float64(missing) > f.DeleteGuard*float64(res.Known):
			res.HeldBack = missing
		case f.LookedUp:
			if len(f.Gone) > 0 {
				res.Deleted, err = s.deleteMissing(ctx, tx, f, transient, f.Gone)
			}
		case prevSnapshot > 0:
			res.Deleted, err = s.deleteMissing(ctx, tx, f, transient, nil)
		}
		if err != nil {
			return res, err
		}
		if missing > res.Deleted {
			if err := s.markMissed(ctx, tx, f, transient); err != nil {
				return res, err
			}
		}
	}
	if transient {
		if err := s.closeSightings(ctx, tx, f.Resource, f.Cycle); err != nil {
			return res, err
		}
	}

	if f.DropContent {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM seen_content WHERE resource = ?`), f.Resource); err != nil {
			return res, fmt.Errorf("drop record contents: %w", err)
		}
	}

	var old int64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT watermark FROM resources WHERE resource = ?`), f.Resource).Scan(&old); err != nil {
		return res, fmt.Errorf("read watermark: %w", err)
	}
	wm := old
	if n := nanos(f.Watermark); n != 0 && (old == 0 || n > old) {
		wm = n
	}
	_, err = tx.ExecContext(ctx, s.q(`
UPDATE resources
SET watermark = ?, completed = completed + 1, last_complete = ?, held_deletes = ?,
    snapshot_cycle = ?, watch_from = coalesce(watch_from, ?)
WHERE resource = ?`), wm, nanos(f.Now), res.HeldBack, snapshotCycle, nanos(f.WatchFrom), f.Resource)
	if err != nil {
		return res, fmt.Errorf("update resource: %w", err)
	}
	return res, nil
}

// deleteMissing emits a delete event for, and tombstones, each record of
// the resource that f.Cycle has not seen and that, when only is nil, an
// earlier complete snapshot cycle missed too with no sighting since (its
// missed is set), or else that only names — a chunk at a time.
func (s *sqlStore) deleteMissing(ctx context.Context, tx *sql.Tx, f Finish, transient bool, only []string) (int64, error) {
	if f.Deleted == nil {
		return 0, errors.New("snapshot finish without a Deleted function")
	}
	q := missingSelect(true, transient)
	var list []byte
	if only != nil {
		var err error
		if list, err = json.Marshal(only); err != nil {
			return 0, err
		}
		q += ` AND s.id IN (SELECT value FROM json_each(?5))`
	} else {
		q += ` AND s.missed <> 0`
	}
	sel, err := tx.PrepareContext(ctx, s.q(q+` ORDER BY s.id LIMIT ?4`))
	if err != nil {
		return 0, err
	}
	defer sel.Close()
	args := []any{f.Resource, f.Cycle, "", deleteChunk}
	if only != nil {
		args = append(args, string(list))
	}
	// Keyset pagination over the primary key (resource, id): each chunk
	// starts where the last one ended, so the whole scan reads the
	// resource's records once, whatever the number of deletes.
	var deleted int64
	chunk := make([]SeenRecord, 0, deleteChunk)
	events := make([]Event, 0, deleteChunk)
	gone := make([]string, 0, deleteChunk)
	for {
		chunk, err = s.readMissing(ctx, sel, args, chunk[:0])
		if err != nil {
			return deleted, err
		}
		if len(chunk) == 0 {
			return deleted, nil
		}
		events, gone = events[:0], gone[:0]
		for _, r := range chunk {
			events = append(events, f.Deleted(r.ID, r.Seen))
			gone = append(gone, r.ID)
		}
		if err := s.insertEvents(ctx, tx, events); err != nil {
			return deleted, err
		}
		list, err := json.Marshal(gone)
		if err != nil {
			return deleted, err
		}
		if _, err := tx.ExecContext(ctx, s.q(`
UPDATE seen SET deleted = 1, rev = rev + 1, missed = 0
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`), f.Resource, string(list)); err != nil {
			return deleted, fmt.Errorf("delete records: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.q(`
DELETE FROM seen_content
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`), f.Resource, string(list)); err != nil {
			return deleted, fmt.Errorf("delete record contents: %w", err)
		}
		deleted += int64(len(chunk))
		args[2] = chunk[len(chunk)-1].ID
	}
}

// Missing returns the records of resource that cycle has not seen
// (neither written nor touched in it) and that are not deleted, in id order from the
// first id after after (all when after is ""), at most limit: the records
// a complete snapshot cycle would look up before deleting them. It also
// returns how many records the store holds (deleted ones left out) and
// how many of them are missing, all told.
func (s *sqlStore) Missing(ctx context.Context, resource string, cycle int64, after string, limit int) (MissingRecords, error) {
	m, err := s.missing(ctx, resource, cycle, after, limit)
	if err != nil {
		return MissingRecords{}, fmt.Errorf("read missing records of %s: %w", resource, err)
	}
	return m, nil
}

func (s *sqlStore) missing(ctx context.Context, resource string, cycle int64, after string, limit int) (MissingRecords, error) {
	var m MissingRecords
	var q querier = s.r
	if s.d.transientSeen() {
		// The cycle's sightings are the writer connection's.
		conn, err := s.w.Conn(ctx)
		if err != nil {
			return m, err
		}
		defer conn.Close()
		q = conn
	}
	transient, err := s.transientFor(ctx, q, resource, cycle)
	if err != nil {
		return m, err
	}
	if m.Known, m.Missing, err = s.countMissing(ctx, q, resource, cycle, transient); err != nil {
		return m, err
	}
	if m.Missing == 0 || limit <= 0 {
		return m, nil
	}
	sel, err := q.PrepareContext(ctx, s.q(missingSelect(false, transient)+` ORDER BY s.id LIMIT ?4`))
	if err != nil {
		return m, err
	}
	defer sel.Close()
	m.Records, err = s.readMissing(ctx, sel, []any{resource, cycle, after, limit}, nil)
	return m, err
}

// missingSelect is the query of the records of resource ?1 not seen
// in cycle ?2 (see unseen), after id ?3: with their content (the delete
// events carry it) or with an empty one (a lookup needs only the ids).
func missingSelect(content, transient bool) string {
	if !content {
		return `
SELECT s.id, s.updated, s.hash, s.rev, '' FROM seen AS s
WHERE s.resource = ?1 AND s.id > ?3 AND s.deleted = 0 AND ` + unseen(transient)
	}
	return `
SELECT s.id, s.updated, s.hash, s.rev, coalesce(c.data, '')
FROM seen AS s LEFT JOIN seen_content AS c ON c.resource = s.resource AND c.id = s.id
WHERE s.resource = ?1 AND s.id > ?3 AND s.deleted = 0 AND ` + unseen(transient)
}

func (s *sqlStore) readMissing(ctx context.Context, sel *sql.Stmt, args []any, chunk []SeenRecord) ([]SeenRecord, error) {
	rows, err := sel.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("read missing records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r SeenRecord
		var updated int64
		if err := rows.Scan(&r.ID, &updated, &r.Hash, &r.Rev, &r.Content); err != nil {
			return nil, fmt.Errorf("read missing records: %w", err)
		}
		r.Updated = fromNanos(updated)
		chunk = append(chunk, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read missing records: %w", err)
	}
	return chunk, nil
}
