package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// BusyTimeout is how long a statement waits for a lock held by another
// process (another pollhook, or the CLI) before it fails with SQLITE_BUSY.
const BusyTimeout = 10 * time.Second

// maxReaders bounds the connections used for reads. Reads never hold a
// connection while calling back into the caller, so a small pool serves
// any number of goroutines.
const maxReaders = 4

// ErrSchemaTooNew is returned by [Open] for a state file written by a newer
// pollhook than this one.
var ErrSchemaTooNew = errors.New("state store schema is newer than this pollhook")

// SQLite is pollhook's state in one SQLite file. Safe for concurrent use.
//
// Writes (InitResource, BeginCycle, CommitPage, FinishCycle, ResetResource)
// go through a single connection, one transaction at a time: concurrent
// writers wait their turn (bounded by their context) instead of failing
// with SQLITE_BUSY. Reads use a small pool of their own and see the last
// committed state; they do not wait for a writer. Another process writing
// the same file is waited for up to [BusyTimeout].
type SQLite struct {
	*sqlStore
	path string
	dsn  string // URI and parameters every connection shares

	abs  string      // path, absolute
	file os.FileInfo // the file as opened, to tell it from another at path later

	locks holderLocks // see Register

	outboxPoll time.Duration // how often WatchOutbox looks for other processes' events
}

// sqliteDialect is SQLite's SQL, as this package writes it.
type sqliteDialect struct{}

func (sqliteDialect) rebind(q string) string      { return q }
func (sqliteDialect) storageError(err error) bool { return sqliteStorageError(err) }
func (sqliteDialect) ping() string                { return "PRAGMA user_version" }
func (sqliteDialect) transientSeen() bool         { return true }

// insertEvents appends events with their AUTOINCREMENT seq: SQLite has
// one writer at a time, so seqs follow the commits.
func (sqliteDialect) insertEvents(ctx context.Context, s *sqlStore, tx *sql.Tx, events []Event) error {
	return s.execRows(ctx, tx, `
INSERT INTO outbox (`+eventValueColumns+`)
VALUES `, `
ON CONFLICT (id) DO NOTHING`, 11, len(events), func(i int, args []any) []any {
		return append(args, eventValues(events[i])...)
	})
}

// Open opens the state store at path, creating the file and its parent
// directory if missing, and brings its schema up to date.
func Open(ctx context.Context, path string) (*SQLite, error) {
	s, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
	}
	uri, err := fileURI(path)
	if err != nil {
		return nil, err
	}
	params := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)", BusyTimeout.Milliseconds())

	dsn := uri + "?" + params
	w, err := sql.Open("sqlite", dsn+"&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &SQLite{sqlStore: &sqlStore{d: sqliteDialect{}, w: w, loc: path}, path: path, dsn: dsn, outboxPoll: outboxPoll}
	s.health.isStorage = s.d.storageError
	s.reads.isStorage = s.d.storageError
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	// The file exists now (the migration's connection made it): what
	// Health compares the path with later.
	if s.abs, err = filepath.Abs(path); err == nil {
		s.file, err = os.Stat(s.abs)
	}
	if err != nil {
		w.Close()
		return nil, err
	}

	// Readers open after the writer has set WAL mode, which persists in the
	// file; query_only guards against a write taking the reader path.
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)
	s.r = r
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// fileURI makes a SQLite "file:" URI of a path, escaping the characters a
// URI would take for its own.
func fileURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	return "file:" + (&url.URL{Path: p}).EscapedPath(), nil
}

// migrate checks that the file is a pollhook store (or empty) and applies
// the migrations it lacks, in one transaction.
func (s *SQLite) migrate(ctx context.Context) error {
	// journal_mode(WAL) in the DSN is applied as the connection opens; a
	// file that is not SQLite fails there or here.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	var version, appID, tables int
	if err := tx.QueryRowContext(ctx, s.q("PRAGMA user_version")).Scan(&version); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, s.q("PRAGMA application_id")).Scan(&appID); err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, s.q("SELECT count(*) FROM sqlite_schema")).Scan(&tables); err != nil {
		return err
	}
	switch {
	case appID != 0 && appID != applicationID:
		return fmt.Errorf("not a pollhook state store (application_id %#x)", appID)
	case appID == 0 && tables > 0:
		return fmt.Errorf("not a pollhook state store: the file holds other tables")
	case version > len(migrations):
		return fmt.Errorf("%w: file has schema version %d, this pollhook knows up to %d", ErrSchemaTooNew, version, len(migrations))
	case version == len(migrations):
		return nil // up to date; nothing to commit
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no parameters; both values are integers of ours.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return err
	}
	return tx.Commit()
}

// Path is the file path the store was opened with.
func (s *SQLite) Path() string { return s.path }

// Backup writes a consistent copy of the store to path (VACUUM INTO),
// while writers go on. It fails if path exists. The copy opens with [Open].
func (s *SQLite) Backup(ctx context.Context, path string) error {
	if err := s.backup(ctx, path); err != nil {
		return fmt.Errorf("back up state store to %s: %w", path, err)
	}
	return nil
}

func (s *SQLite) backup(ctx context.Context, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return os.ErrExist
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// VACUUM INTO writes, which the query_only readers refuse: it gets a
	// connection of its own. It reads in one transaction, like any reader.
	db, err := sql.Open("sqlite", s.dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, s.q("VACUUM INTO ?"), path)
	return err
}

// The smallest and greatest times an int64 of nanoseconds holds; times
// beyond are clamped to them.
var (
	minTime = time.Unix(0, math.MinInt64+1).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// nanos is how a time is stored: Unix nanoseconds, 0 for the zero time.
// Times outside 1677-09-21..2262-04-11 are clamped to those bounds.
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// b2i is how a boolean is stored: 1 or 0.
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// fromNanos is the inverse of nanos: UTC, and 0 is the zero time.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
