package cursor_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/cursor/storetest"
	"github.com/pollhook/pollhook/internal/pgtest"
)

// TestConformancePostgres runs the conformance suite against PostgreSQL:
// one fresh database for the run, a schema of its own for each store.
// Reopen opens the same schema again, as another replica would.
func TestConformancePostgres(t *testing.T) {
	db := pgtest.DSN(t)
	var mu sync.Mutex
	dsns := map[cursor.Store]string{}
	open := func(t *testing.T, dsn string) cursor.Store {
		t.Helper()
		s, err := cursor.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		mu.Lock()
		dsns[s] = dsn
		mu.Unlock()
		return s
	}
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) cursor.Store { return open(t, pgtest.Schema(t, db)) },
		Reopen: func(t *testing.T, s cursor.Store) cursor.Store {
			mu.Lock()
			dsn := dsns[s]
			mu.Unlock()
			return open(t, dsn)
		},
	})
}

// TestPostgresSchema: a fresh database is migrated once by replicas
// starting together; a database of a newer pollhook and one holding
// another program's tables are refused with errors that say so.
func TestPostgresSchema(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DSN(t)
	dsn := pgtest.Schema(t, db)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := cursor.OpenPostgres(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("replicas opening one fresh database at once: %v", err)
		}
	}

	exec(t, dsn, "UPDATE pollhook_schema SET version = version + 1")
	if _, err := cursor.OpenPostgres(ctx, dsn); !errors.Is(err, cursor.ErrSchemaTooNew) {
		t.Errorf("a newer schema: %v, want ErrSchemaTooNew", err)
	}

	other := pgtest.Schema(t, db)
	exec(t, other, "CREATE TABLE outbox (x INTEGER)")
	if _, err := cursor.OpenPostgres(ctx, other); err == nil || !contains(err.Error(), `table "outbox" that pollhook did not create`) {
		t.Errorf("a database with another program's outbox table: %v", err)
	}

	for _, bad := range []string{"postgres://u:p@host:notaport/db", "mysql://x"} {
		if _, err := cursor.ParsePostgresDSN(bad); err == nil || contains(err.Error(), ":p@") {
			t.Errorf("ParsePostgresDSN(%q) = %v, want an error without the password", bad, err)
		}
	}
	if loc, err := cursor.ParsePostgresDSN("postgres://u:secret@db.example:5433/state?sslmode=disable"); err != nil || loc != "postgres://u@db.example:5433/state" {
		t.Errorf("ParsePostgresDSN = %q, %v", loc, err)
	}
}

func exec(t *testing.T, dsn, q string) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
