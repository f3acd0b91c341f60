package cursor

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"
)

// eachBatch is how many outbox rows EachEvent reads per query. No
// connection is held while fn runs, so fn may take its time and call the
// store.
const eachBatch = 256

// rowsPerInsert is how many rows one INSERT statement writes: a page
// commits in a few statements rather than one per row.
const rowsPerInsert = 100

// execRows runs head VALUES (...), (...) tail for n rows of cols columns,
// rowsPerInsert rows a statement; row appends the arguments of row i. It
// uses the statements prepareRows prepared.
func (s *sqlStore) execRows(ctx context.Context, tx *sql.Tx, head, tail string, cols, n int, row func(i int, args []any) []any) error {
	var full *sql.Stmt
	args := make([]any, 0, cols*min(n, rowsPerInsert))
	for start := 0; start < n; start += rowsPerInsert {
		k := min(rowsPerInsert, n-start)
		args = args[:0]
		for i := start; i < start+k; i++ {
			args = row(i, args)
		}
		text := head + placeholders(cols, k) + tail
		// A full chunk's statement is prepared once (by prepareRows, or
		// here for this transaction); the last, shorter chunk runs as
		// prepareRows left it.
		var st *sql.Stmt
		if k == rowsPerInsert {
			st = full
		}
		if st == nil {
			st = s.preparedIn(ctx, tx, text)
		}
		if st == nil && k == rowsPerInsert {
			prepared, err := tx.PrepareContext(ctx, s.q(text))
			if err != nil {
				return err
			}
			defer prepared.Close()
			st = prepared
		}
		if k == rowsPerInsert {
			full = st
		}
		var err error
		if st != nil {
			_, err = st.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.q(text), args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// prepareRows prepares (see sqlStore.prepare) the statements execRows
// runs for n rows. Call it outside a transaction.
func (s *sqlStore) prepareRows(ctx context.Context, head, tail string, cols, n int) error {
	if n >= rowsPerInsert {
		if err := s.prepare(ctx, head+placeholders(cols, rowsPerInsert)+tail); err != nil {
			return err
		}
	}
	if k := n % rowsPerInsert; k > 0 {
		return s.prepare(ctx, head+placeholders(cols, k)+tail)
	}
	return nil
}

// placeholders is "(?, ?), (?, ?)" for 2 columns and 2 rows.
func placeholders(cols, rows int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(row+", ", rows-1) + row
}

// insertEvents appends events to the outbox in order (see
// dialect.insertEvents). Only a duplicate id is skipped; a broken event
// (an empty id) fails the transaction.
func (s *sqlStore) insertEvents(ctx context.Context, tx *sql.Tx, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := s.d.insertEvents(ctx, s, tx, events); err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// eventValues is the values of an outbox row but its seq: id, type,
// resource, source, object, object_id, occurred_at, detected_at, data,
// previous and changed_fields (both NULL when unknown).
func eventValues(e Event) []any {
	data := string(e.Data)
	if len(e.Data) == 0 {
		data = "null"
	}
	var prev, changed any // NULL: unknown
	if len(e.Previous) > 0 {
		prev = string(e.Previous)
	}
	if e.ChangedFields != nil {
		b, err := json.Marshal(e.ChangedFields)
		if err != nil {
			panic(err) // a []string always encodes
		}
		changed = string(b)
	}
	return []any{e.ID, e.Type, e.Resource, e.Source, e.Object, e.ObjectID,
		nanos(e.OccurredAt), nanos(e.DetectedAt), data, prev, changed}
}

// eventValueColumns are the outbox columns of eventValues, in its order.
const eventValueColumns = `id, type, resource, source, object, object_id, occurred_at, detected_at, data, previous, changed_fields`

// eventColumns are the outbox columns scanEvent reads, in its order.
const eventColumns = `seq, ` + eventValueColumns

// prefixed writes each column of a list such as eventColumns with prefix
// (a table alias and a dot).
func prefixed(prefix, columns string) string {
	return prefix + strings.ReplaceAll(columns, ", ", ", "+prefix)
}

// eventRow scans an outbox row of eventColumns, after dest (the columns of
// the query before them).
type eventRow struct {
	e                  Event
	occurred, detected int64
	data               string
	prev, changed      sql.NullString
}

// dest returns the scan destinations of eventColumns.
func (r *eventRow) dest() []any {
	e := &r.e
	return []any{&e.Seq, &e.ID, &e.Type, &e.Resource, &e.Source, &e.Object, &e.ObjectID,
		&r.occurred, &r.detected, &r.data, &r.prev, &r.changed}
}

// event returns the scanned event.
func (r *eventRow) event() (Event, error) {
	e := r.e
	e.OccurredAt, e.DetectedAt = fromNanos(r.occurred), fromNanos(r.detected)
	e.Data = []byte(r.data)
	if r.prev.Valid {
		e.Previous = []byte(r.prev.String)
	}
	if r.changed.Valid {
		if err := json.Unmarshal([]byte(r.changed.String), &e.ChangedFields); err != nil {
			return e, fmt.Errorf("event %s: changed_fields: %w", e.ID, err)
		}
		if e.ChangedFields == nil {
			e.ChangedFields = []string{}
		}
	}
	return e, nil
}

// LastSeq is the greatest outbox seq, 0 when the outbox is empty.
func (s *sqlStore) LastSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT coalesce(max(seq), 0) FROM outbox`)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("read last event seq: %w", err)
	}
	return seq, nil
}

// EachEvent calls fn for each outbox event that matches f, in seq order
// (newest first with f.Newest). f.Type is matched with [path.Match] over
// the whole type (contact.*, *.deleted). It stops at the first error of fn
// and returns it as is. Events committed while it runs are included if
// they sort after the current position.
func (s *sqlStore) EachEvent(ctx context.Context, f EventFilter, fn func(Event) error) error {
	glob := strings.ContainsAny(f.Type, `*?[\`)
	if glob {
		if _, err := path.Match(f.Type, ""); err != nil {
			return fmt.Errorf("read events: type %q: %w", f.Type, err)
		}
	}
	// The position moves in one direction: after it going forward,
	// before it going back.
	q := `SELECT ` + eventColumns + `
FROM outbox WHERE seq > ?`
	if f.Newest {
		q = `SELECT ` + eventColumns + `
FROM outbox WHERE seq < ?`
	}
	var args []any
	if f.Resource != "" {
		q += ` AND resource = ?`
		args = append(args, f.Resource)
	}
	if f.Type != "" && !glob {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if !f.Since.IsZero() {
		q += ` AND detected_at >= ?`
		args = append(args, nanos(f.Since))
	}
	var pos int64
	if f.Newest {
		q += ` AND seq > ? ORDER BY seq DESC LIMIT ?`
		args = append(args, f.AfterSeq)
		pos = f.BeforeSeq
		if pos <= 0 {
			pos = math.MaxInt64
		}
	} else {
		if f.BeforeSeq > 0 {
			q += ` AND seq < ?`
			args = append(args, f.BeforeSeq)
		}
		q += ` ORDER BY seq LIMIT ?`
		pos = f.AfterSeq
	}

	sent := 0
	batch := make([]Event, 0, eachBatch)
	for {
		var err error
		batch, err = s.readEvents(ctx, q, append([]any{pos}, append(args, eachBatch)...), batch[:0])
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		for _, e := range batch {
			if glob {
				if ok, _ := path.Match(f.Type, e.Type); !ok {
					continue
				}
			}
			if err := fn(e); err != nil {
				return err
			}
			if sent++; f.Limit > 0 && sent >= f.Limit {
				return nil
			}
		}
		if len(batch) < eachBatch {
			return nil
		}
		pos = batch[len(batch)-1].Seq
	}
}

// Event returns the outbox event of id, or an error wrapping
// ErrUnknownEvent.
func (s *sqlStore) Event(ctx context.Context, id string) (Event, error) {
	evs, err := s.readEvents(ctx, `SELECT `+eventColumns+`
FROM outbox WHERE id = ?`, []any{id}, nil)
	if err == nil && len(evs) == 0 {
		err = fmt.Errorf("%w %q", ErrUnknownEvent, id)
	}
	if err != nil {
		return Event{}, fmt.Errorf("read event: %w", err)
	}
	return evs[0], nil
}

func (s *sqlStore) readEvents(ctx context.Context, q string, args []any, out []Event) ([]Event, error) {
	rows, err := s.r.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r eventRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		e, err := r.event()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
