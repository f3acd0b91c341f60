package cursor

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Postgres is pollhook's state in a PostgreSQL database, which several
// pollhook processes (replicas) share: leases decide which of them polls
// each resource and delivers to each destination. It implements Store,
// and passes the same conformance suite as SQLite. Safe for concurrent
// use.
//
// The tables are SQLite's (see the package documentation) in PostgreSQL's
// types: times are BIGINT Unix nanoseconds, records' JSON is TEXT (kept
// byte for byte), names and ids compare by byte ("C" collation), as in
// SQLite. Outbox seqs are given under a lock of one counter row, held to
// the commit, so that they follow the order of the commits with no gaps:
// a fan-out never passes over an event committed later with a smaller
// seq. The schema version is in the table pollhook_schema; migrations run
// in one transaction under an advisory lock, so replicas starting
// together migrate once, and a database migrated by a newer pollhook is
// refused with ErrSchemaTooNew.
//
// Statements run in pgx's exec mode (parameter types from the Go values,
// no prepared statement cache), which also works through PgBouncer in
// transaction pooling.
type Postgres struct {
	*sqlStore
	dsn string
}

// PostgresMaxConns bounds the connections a Postgres store opens.
const PostgresMaxConns = 16

// schemaLockID is the key of the advisory lock taken while migrating.
const schemaLockID = 0x50484b31 // "PHK1", as SQLite's application id

// ParsePostgresDSN checks a PostgreSQL connection string (a
// postgres:// URL or key=value pairs) and returns where it points,
// without its password, for messages.
func ParsePostgresDSN(dsn string) (string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgconn's errors quote the string, password included.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			return "", fmt.Errorf("parse postgres dsn: %w", pe.Unwrap())
		}
		return "", errors.New("parse postgres dsn: want postgres://user@host:5432/db?sslmode=disable or host=… dbname=… pairs")
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database), nil
}

// OpenPostgres opens the state store in the PostgreSQL database dsn
// points at, and brings its schema up to date. The database (or the
// schema that dsn's search_path names) should be pollhook's own: a table
// of pollhook's names that pollhook did not create is refused.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	loc, err := ParsePostgresDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg, _ := pgx.ParseConfig(dsn)
	return openPostgres(ctx, cfg, loc, dsn)
}

func openPostgres(ctx context.Context, cfg *pgx.ConnConfig, loc, dsn string) (*Postgres, error) {
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(PostgresMaxConns)
	db.SetMaxIdleConns(PostgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Postgres{sqlStore: &sqlStore{d: postgresDialect{}, w: db, r: db, loc: loc}, dsn: dsn}
	s.health.isStorage = s.d.storageError
	s.reads.isStorage = s.d.storageError
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state store %s: %w", loc, err)
	}
	return s, nil
}

// migrate applies the migrations the database lacks, in one transaction,
// under an advisory lock.
func (s *Postgres) migrate(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLockID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS pollhook_schema (
	id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
)`); err != nil {
			return err
		}
		var version int
		err := tx.QueryRowContext(ctx, `SELECT version FROM pollhook_schema WHERE id = 1`).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			version = 0
		} else if err != nil {
			return err
		}
		switch {
		case version > len(pgMigrations):
			return fmt.Errorf("%w: database has schema version %d, this pollhook knows up to %d", ErrSchemaTooNew, version, len(pgMigrations))
		case version == len(pgMigrations):
			return nil
		case version == 0:
			var other string
			err := tx.QueryRowContext(ctx, `
SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = ANY($1) LIMIT 1`, pgTables).Scan(&other)
			if err == nil {
				return fmt.Errorf("not a pollhook state store: the database holds a table %q that pollhook did not create; give pollhook a database of its own, or a schema (search_path=… in the dsn)", other)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		for v := version; v < len(pgMigrations); v++ {
			if _, err := tx.ExecContext(ctx, pgMigrations[v]); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, `
INSERT INTO pollhook_schema (id, version) VALUES (1, $1)
ON CONFLICT (id) DO UPDATE SET version = excluded.version`, len(pgMigrations))
		return err
	})
}

// scratchTables are the tables a scratch copy takes the rows of: what a
// cycle reads (the records' contents too: an update's previous, and the
// comparison of a record whose hash was made under other rules). The
// others are copied empty.
var scratchTables = []string{"pollhook_schema", "resources", "seen", "seen_content", "counters"}

// OpenPostgresScratch returns a store on a copy of the resources' state in
// the PostgreSQL database dsn points at — watermarks, cycles, the records
// seen and their contents, not the outbox, deliveries, subscriptions or
// leases — for a dry run: the copy is a new schema of that database,
// brought up to this pollhook's schema version. The database itself is not
// changed: its schema is not migrated (replicas of an older pollhook may
// be running on it), and one that pollhook has not used yet gives an empty
// copy. drop closes the copy and drops its schema.
func OpenPostgresScratch(ctx context.Context, dsn string) (scratch *Postgres, drop func(), err error) {
	loc, err := ParsePostgresDSN(dsn)
	if err != nil {
		return nil, nil, err
	}
	cfg, _ := pgx.ParseConfig(dsn)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	name := "pollhook_dry_run_" + strings.ToLower(randomWord())
	dropSchema := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		db.Close()
	}
	if err := copyForDryRun(ctx, db, name); err != nil {
		dropSchema()
		return nil, nil, fmt.Errorf("copy state %s for a dry run: %w", loc, err)
	}
	cfg.RuntimeParams["search_path"] = name
	scratch, err = openPostgres(ctx, cfg, loc+" (a dry-run copy)", dsn)
	if err != nil {
		dropSchema()
		return nil, nil, err
	}
	return scratch, func() { scratch.Close(); dropSchema() }, nil
}

// copyForDryRun creates schema name and copies into it the tables of
// pollhook that the current schema holds, as they are: the rows of
// scratchTables, the others empty. A schema without pollhook_schema is
// not (yet) pollhook's: its tables are copied empty, so that the copy
// refuses, as the database would, tables pollhook did not create.
func copyForDryRun(ctx context.Context, db *sql.DB, name string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var from string
	if err := tx.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&from); err != nil {
		return err
	}
	all := append(slices.Clone(pgTables), "pollhook_schema")
	exists, err := stringSet(ctx, tx, `
SELECT table_name FROM information_schema.tables
WHERE table_schema = $1 AND table_name = ANY($2)`, from, all)
	if err != nil {
		return err
	}
	src, dst := pgx.Identifier{from}.Sanitize(), pgx.Identifier{name}.Sanitize()
	if _, err := tx.ExecContext(ctx, "CREATE SCHEMA "+dst); err != nil {
		return err
	}
	for _, t := range all {
		if !exists[t] {
			continue
		}
		tbl := pgx.Identifier{t}.Sanitize()
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s.%s (LIKE %s.%s INCLUDING ALL)", dst, tbl, src, tbl)); err != nil {
			return err
		}
		if exists["pollhook_schema"] && slices.Contains(scratchTables, t) {
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM %s.%s", dst, tbl, src, tbl)); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

func randomWord() string { return rand.Text()[:12] }

// postgresDialect is PostgreSQL's SQL.
type postgresDialect struct{}

var jsonEach = regexp.MustCompile(`json_each\((\?\d*)\)`)

// rebind turns the package's SQLite statements into PostgreSQL's:
// json_each(?) of a JSON array becomes json_array_elements_text, whose
// column is also named value; ? and ?N become $N; the row-lock markers
// become clauses.
func (postgresDialect) rebind(q string) string {
	q = jsonEach.ReplaceAllString(q, "json_array_elements_text(CAST(${1} AS json))")
	return rebindNumbered(q)
}

func (postgresDialect) ping() string { return "SELECT 1" }

// transientSeen is false: replicas share no connection that could hold
// a cycle's sightings, and a pool hands each statement any connection.
func (postgresDialect) transientSeen() bool { return false }

// storageError reports errors that say the database cannot store or
// cannot be reached: insufficient resources (disk full), system and I/O
// errors, a read-only transaction, data corruption, a shutdown, a
// connection that failed or broke.
func (postgresDialect) storageError(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "58"),
			strings.HasPrefix(pe.Code, "57P"), strings.HasPrefix(pe.Code, "08"),
			pe.Code == "25006", pe.Code == "XX001", pe.Code == "XX002":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || pgconn.Timeout(err)
}

// outboxChannel is the channel of PostgreSQL's NOTIFY that a commit of
// outbox events sends.
const outboxChannel = "pollhook_outbox"

// WatchOutbox calls notify when a transaction that added outbox events
// commits, in any replica: it LISTENs on a connection of its own. While
// that connection is down it looks at the outbox's last seq every second
// instead, and listens again as soon as it can. The commits of this store
// value are told at once, whatever the connection.
func (s *Postgres) WatchOutbox(ctx context.Context, notify func()) {
	var local sync.WaitGroup
	defer local.Wait()
	local.Go(func() { s.watchLocal(ctx, notify) })
	for ctx.Err() == nil {
		err := s.listen(ctx, notify)
		if ctx.Err() != nil || err == nil {
			return
		}
		// Poll until the next try to listen.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s.pollOutbox(pctx, time.Second, nil, notify)
		cancel()
		notify() // what was committed while nobody listened
	}
}

// listen LISTENs for outbox commits on a dedicated connection until ctx
// is done or the connection fails.
func (s *Postgres) listen(ctx context.Context, notify func()) error {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{outboxChannel}.Sanitize()); err != nil {
			return err
		}
		defer pc.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
		notify() // what was committed before the LISTEN
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return err
			}
			notify()
		}
	})
}

// Unreachable reports whether err says a PostgreSQL store could not be
// reached (a refused or failed connection, a timeout, a server starting
// or shutting down): worth trying again, unlike an answer such as a wrong
// password or a newer schema.
func Unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08") || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// A connect error wraps the server's answer when there was one.
		return !errors.As(ce.Unwrap(), &pe)
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.Timeout(err) || errors.Is(err, io.ErrUnexpectedEOF)
}

// insertEvents takes the outbox counter's row lock, held to the commit,
// skips the events already there (or twice in events), and inserts the
// others with the next seqs: seqs follow the commits, with no gaps.
func (postgresDialect) insertEvents(ctx context.Context, s *sqlStore, tx *sql.Tx, events []Event) error {
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'outbox' FOR UPDATE`).Scan(&last); err != nil {
		return fmt.Errorf("lock the outbox: %w", err)
	}
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	there, err := stringSet(ctx, tx, `SELECT id FROM outbox WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	fresh := make([]Event, 0, len(events))
	for _, e := range events {
		if !there[e.ID] {
			there[e.ID] = true
			fresh = append(fresh, e)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = $1 WHERE name = 'outbox'`, last+int64(len(fresh))); err != nil {
		return err
	}
	// Told to every listener when the transaction commits (see
	// WatchOutbox); several in one transaction are told once.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, '')`, outboxChannel); err != nil {
		return err
	}
	return s.execRows(ctx, tx, `
INSERT INTO outbox (seq, `+eventValueColumns+`)
VALUES `, ``, 12, len(fresh), func(i int, args []any) []any {
		return append(append(args, last+int64(i)+1), eventValues(fresh[i])...)
	})
}

// stringSet returns the values of the one text column that query q
// gives.
func stringSet(ctx context.Context, tx *sql.Tx, q string, args ...any) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		set[v] = true
	}
	return set, rows.Err()
}

// pgTables are the tables of the schema, for the check that a database is
// pollhook's.
var pgTables = []string{"resources", "seen", "outbox", "counters", "destinations", "deliveries",
	"attempts", "subscriptions", "health", "leases", "cycles", "resource_hours", "backlog_samples", "removed_destinations",
	"seen_content"}
