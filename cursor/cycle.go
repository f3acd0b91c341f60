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
func (s *SQLite) Seen(ctx context.Context, resource string, ids []string) (map[string]Seen, error) {
	out := make(map[string]Seen, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read seen records of %s: %w", resource, err)
	}
	rows, err := s.r.QueryContext(ctx, `
SELECT id, updated, hash, rev, deleted FROM seen
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`, resource, string(list))
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
func (s *SQLite) Contents(ctx context.Context, resource string, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("read record contents of %s: %w", resource, err)
	}
	rows, err := s.r.QueryContext(ctx, `
SELECT id, data FROM seen_content
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`, resource, string(list))
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
// in p.Cycle) and the contents they carry, the last_seen of p.Touch ids
// the store holds, and p.Events
// appended to the outbox (an event whose ID is already there keeps its
// place and content). On error nothing of the page is written. It does not
// move the watermark; only [SQLite.FinishCycle] does.
func (s *SQLite) CommitPage(ctx context.Context, p Page) error {
	err := s.pipelineTx(ctx, func(tx *sql.Tx) error { return commitPage(ctx, tx, p) }, writeKind{writeCommit, p.Resource})
	if err != nil {
		return fmt.Errorf("commit page of %s: %w", p.Resource, err)
	}
	return nil
}

func commitPage(ctx context.Context, tx *sql.Tx, p Page) error {
	if err := checkLease(ctx, tx, p.Lease, ResourceLease(p.Resource)); err != nil {
		return err
	}
	if err := ensureResource(ctx, tx, p.Resource); err != nil {
		return err
	}
	err := execRows(ctx, tx, `
INSERT INTO seen (resource, id, updated, hash, last_seen, rev, deleted) VALUES `, `
ON CONFLICT (resource, id) DO UPDATE
SET updated = excluded.updated, hash = excluded.hash, last_seen = excluded.last_seen,
    rev = excluded.rev, deleted = excluded.deleted`,
		7, len(p.Records), func(i int, args []any) []any {
			r := p.Records[i]
			return append(args, p.Resource, r.ID, nanos(r.Updated), r.Hash, p.Cycle, r.Rev, r.Deleted)
		})
	if err != nil {
		return fmt.Errorf("write records: %w", err)
	}
	if err := writeContents(ctx, tx, p.Resource, p.Records); err != nil {
		return fmt.Errorf("write record contents: %w", err)
	}
	if len(p.Touch) > 0 {
		list, err := json.Marshal(p.Touch)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
UPDATE seen SET last_seen = ?
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`, p.Cycle, p.Resource, string(list)); err != nil {
			return fmt.Errorf("touch records: %w", err)
		}
	}
	return insertEvents(ctx, tx, p.Events)
}

// writeContents stores the contents of the records that carry one.
func writeContents(ctx context.Context, tx *sql.Tx, resource string, recs []SeenRecord) error {
	var with []int
	for i := range recs {
		if recs[i].Content != "" {
			with = append(with, i)
		}
	}
	return execRows(ctx, tx, `
INSERT INTO seen_content (resource, id, data) VALUES `, `
ON CONFLICT (resource, id) DO UPDATE SET data = excluded.data`,
		3, len(with), func(i int, args []any) []any {
			r := &recs[with[i]]
			return append(args, resource, r.ID, r.Content)
		})
}

// FinishCycle completes a cycle in one transaction. With f.Snapshot, the
// records not seen in f.Cycle are deleted: each gets the event f.Deleted
// builds (given its last version and content), and its record becomes a
// tombstone without content — unless they are more than
// f.DeleteGuard of the known records, in which case none is and their
// number is kept as HeldDeletes (a guard of 0 holds back every delete, 1
// or more none). Then the watermark moves to f.Watermark if that is later
// (it never moves back), and the cycle counts as completed at f.Now.
// With f.DropContent, no content of the resource's records is kept any
// more. On error nothing is written.
func (s *SQLite) FinishCycle(ctx context.Context, f Finish) (FinishResult, error) {
	var res FinishResult
	err := s.pipelineTx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = finishCycle(ctx, tx, f)
		return err
	}, writeKind{writeCommit, f.Resource})
	if err != nil {
		return FinishResult{}, fmt.Errorf("finish cycle %d of %s: %w", f.Cycle, f.Resource, err)
	}
	return res, nil
}

func finishCycle(ctx context.Context, tx *sql.Tx, f Finish) (FinishResult, error) {
	var res FinishResult
	if err := checkLease(ctx, tx, f.Lease, ResourceLease(f.Resource)); err != nil {
		return res, err
	}
	if err := ensureResource(ctx, tx, f.Resource); err != nil {
		return res, err
	}
	var missing int64
	err := tx.QueryRowContext(ctx, `
SELECT (SELECT count(*) FROM seen WHERE resource = ?1 AND deleted = 0),
       (SELECT count(*) FROM seen WHERE resource = ?1 AND deleted = 0 AND last_seen < ?2)`,
		f.Resource, f.Cycle).Scan(&res.Known, &missing)
	if err != nil {
		return res, fmt.Errorf("count records: %w", err)
	}
	if f.Snapshot && missing > 0 {
		if float64(missing) > f.DeleteGuard*float64(res.Known) {
			res.HeldBack = missing
		} else {
			if res.Deleted, err = deleteMissing(ctx, tx, f); err != nil {
				return res, err
			}
		}
	}

	if f.DropContent {
		if _, err := tx.ExecContext(ctx, `DELETE FROM seen_content WHERE resource = ?`, f.Resource); err != nil {
			return res, fmt.Errorf("drop record contents: %w", err)
		}
	}

	var old int64
	if err := tx.QueryRowContext(ctx, `SELECT watermark FROM resources WHERE resource = ?`, f.Resource).Scan(&old); err != nil {
		return res, fmt.Errorf("read watermark: %w", err)
	}
	wm := old
	if n := nanos(f.Watermark); n != 0 && (old == 0 || n > old) {
		wm = n
	}
	_, err = tx.ExecContext(ctx, `
UPDATE resources
SET watermark = ?, completed = completed + 1, last_complete = ?, held_deletes = ?
WHERE resource = ?`, wm, nanos(f.Now), res.HeldBack, f.Resource)
	if err != nil {
		return res, fmt.Errorf("update resource: %w", err)
	}
	return res, nil
}

// deleteMissing emits a delete event for, and tombstones, each record of the
// resource not seen in f.Cycle, a chunk at a time.
func deleteMissing(ctx context.Context, tx *sql.Tx, f Finish) (int64, error) {
	if f.Deleted == nil {
		return 0, errors.New("snapshot finish without a Deleted function")
	}
	sel, err := tx.PrepareContext(ctx, `
SELECT s.id, s.updated, s.hash, s.rev, coalesce(c.data, '')
FROM seen AS s LEFT JOIN seen_content AS c ON c.resource = s.resource AND c.id = s.id
WHERE s.resource = ?1 AND s.id > ?3 AND s.last_seen < ?2 AND s.deleted = 0
ORDER BY s.id LIMIT ?4`)
	if err != nil {
		return 0, err
	}
	defer sel.Close()
	// Keyset pagination over the primary key (resource, id): each chunk
	// starts where the last one ended, so the whole scan reads the
	// resource's records once, whatever the number of deletes.
	var deleted int64
	after := ""
	chunk := make([]SeenRecord, 0, deleteChunk)
	events := make([]Event, 0, deleteChunk)
	gone := make([]string, 0, deleteChunk)
	for {
		chunk, err = readMissing(ctx, sel, f, after, chunk[:0])
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
		if err := insertEvents(ctx, tx, events); err != nil {
			return deleted, err
		}
		list, err := json.Marshal(gone)
		if err != nil {
			return deleted, err
		}
		if _, err := tx.ExecContext(ctx, `
UPDATE seen SET deleted = 1, rev = rev + 1
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`, f.Resource, string(list)); err != nil {
			return deleted, fmt.Errorf("delete records: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `
DELETE FROM seen_content
WHERE resource = ? AND id IN (SELECT value FROM json_each(?))`, f.Resource, string(list)); err != nil {
			return deleted, fmt.Errorf("delete record contents: %w", err)
		}
		deleted += int64(len(chunk))
		after = chunk[len(chunk)-1].ID
	}
}

func readMissing(ctx context.Context, sel *sql.Stmt, f Finish, after string, chunk []SeenRecord) ([]SeenRecord, error) {
	rows, err := sel.QueryContext(ctx, f.Resource, f.Cycle, after, deleteChunk)
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

// inTx runs fn in a write transaction, and commits if it returns nil.
func (s *SQLite) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
