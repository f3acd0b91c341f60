package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dialect is what differs between the SQL backends; the rest of the store
// is one implementation over database/sql ([sqlStore]), whose statements
// are written in SQLite's SQL and rebound for the others.
type dialect interface {
	// rebind turns a statement as written in this package into the
	// backend's SQL.
	rebind(q string) string
	// storageError reports whether err says the backend cannot store
	// (a full disk, a read-only or damaged store): see WriteErr.
	storageError(err error) bool
	// insertEvents appends events to the outbox in a write transaction,
	// giving each a seq that follows the order of the commits (no event
	// committed later has a smaller seq) with no gaps; an event whose id
	// is already there is skipped.
	insertEvents(ctx context.Context, s *sqlStore, tx *sql.Tx, events []Event) error
	// ping is a statement that reads the store.
	ping() string
	// transientSeen reports whether a cycle begun by BeginCycle keeps
	// the records it lists unchanged in TEMP tables of the one writer
	// connection (see transientFor) rather than in their last_seen.
	transientSeen() bool
}

// sqlStore implements Store over database/sql for every SQL backend.
// Safe for concurrent use.
type sqlStore struct {
	d   dialect
	w   *sql.DB // writes (SQLite: one connection; PostgreSQL: the pool)
	r   *sql.DB // reads (SQLite: query_only connections; PostgreSQL: the pool)
	loc string  // Location

	health writeHealth // storage errors of pipeline writes; see WriteErr
	reads  writeHealth // storage errors of pipeline reads; see Health
	stmts  sync.Map    // statement as written → rebound
	// prepared holds the statements of hot paths, prepared once on the
	// writer: statement as written → *sql.Stmt (see prepare).
	prepared sync.Map

	watchers outboxWatchers // WatchOutbox calls, told of this value's commits of events
}

// prepare prepares statement q (as written in this package) on the
// writer, once, so that the transactions that use it (see preparedIn)
// skip parsing it: SQLite parses a statement each time it is run
// unprepared. Call it outside a transaction: SQLite's writer is one
// connection, which a transaction holds.
func (s *sqlStore) prepare(ctx context.Context, q string) error {
	if _, ok := s.prepared.Load(q); ok {
		return nil
	}
	st, err := s.w.PrepareContext(ctx, s.q(q))
	if err != nil {
		return err
	}
	if _, loaded := s.prepared.LoadOrStore(q, st); loaded {
		st.Close()
	}
	return nil
}

// preparedIn returns statement q for tx when prepare prepared it, or nil.
func (s *sqlStore) preparedIn(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if v, ok := s.prepared.Load(q); ok {
		return tx.StmtContext(ctx, v.(*sql.Stmt))
	}
	return nil
}

// q returns statement q in the backend's SQL.
func (s *sqlStore) q(q string) string {
	if v, ok := s.stmts.Load(q); ok {
		return v.(string)
	}
	out := s.d.rebind(q)
	s.stmts.Store(q, out)
	return out
}

// Location names the store: its file path or its database address.
func (s *sqlStore) Location() string { return s.loc }

// Close closes the store. Calls in flight may fail; calls after Close do.
func (s *sqlStore) Close() error {
	var errs []error
	s.prepared.Range(func(q, st any) bool {
		errs = append(errs, st.(*sql.Stmt).Close())
		s.prepared.Delete(q)
		return true
	})
	if s.r != nil && s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close state store %s: %w", s.loc, err)
	}
	return nil
}

// Ping checks that the store can still be read. It does not wait for a
// writer, so it suits a readiness probe.
func (s *sqlStore) Ping(ctx context.Context) error {
	var v int64
	if err := s.r.QueryRowContext(ctx, s.d.ping()).Scan(&v); err != nil {
		return fmt.Errorf("ping state store %s: %w", s.loc, err)
	}
	return nil
}

// PingWrite checks that the store takes writes: it commits a one-row
// write, so a read-only store or a lost lock shows here rather than at the
// next page. A full disk may not: the row fits in space the store already
// holds while a page of records does not; [sqlStore.WriteErr] tells that.
// /readyz calls both.
func (s *sqlStore) PingWrite(ctx context.Context, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO health (id, at) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET at = excluded.at`), nanos(now))
		return err
	})
	if err != nil {
		return fmt.Errorf("write to state store %s: %w", s.loc, err)
	}
	return nil
}

// inTx runs fn in a write transaction, and commits if it returns nil.
func (s *sqlStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
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

// rebindNumbered turns SQLite's parameters (? and ?N) into PostgreSQL's
// ($N), and the row-lock markers /*FOR UPDATE*/ and /*FOR SHARE*/ (comments
// to SQLite) into clauses. The statements of this package hold no ? in
// string literals.
func rebindNumbered(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	next := 1
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		j := i + 1
		for j < len(q) && q[j] >= '0' && q[j] <= '9' {
			j++
		}
		n := next
		if j > i+1 {
			n, _ = strconv.Atoi(q[i+1 : j])
		}
		next = n + 1
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		i = j - 1
	}
	out := b.String()
	out = strings.ReplaceAll(out, "/*FOR UPDATE*/", "FOR UPDATE")
	return strings.ReplaceAll(out, "/*FOR SHARE*/", "FOR SHARE")
}
