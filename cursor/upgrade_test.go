package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/internal/pgtest"
)

// olderRows are the rows TestUpgrade and TestUpgradePostgres write into
// a store of an older schema: a resource past its first cycles, two
// records seen before pollhook kept record contents, an event.
const olderRows = `
INSERT INTO resources (resource, cycle, completed) VALUES ('contacts', 3, 2);
INSERT INTO seen (resource, id, updated, hash, last_seen) VALUES
	('contacts', 'a', 1, 'h-a', 3), ('contacts', 'b', 1, 'h-b', 3);
`

// checkHistoryAfterUpgrade checks that a store migrated from a version
// without record history, holding olderRows and the event e1, works with
// it: the event reads back without history, the records seen before keep
// their versions and have no content, a change stores one, and deletes
// carry what there is (nothing for a record last seen before, the last
// content for one changed since).
func checkHistoryAfterUpgrade(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	e, err := s.Event(ctx, "e1")
	if err != nil || e.Previous != nil || e.ChangedFields != nil {
		t.Fatalf("event e1 of the older store = %+v, %v; want it without history", e, err)
	}
	seen, err := s.Seen(ctx, "contacts", []string{"a", "b"})
	if err != nil || len(seen) != 2 || seen["a"].Hash != "h-a" || seen["b"].Hash != "h-b" {
		t.Fatalf("records of the older store = %v, %v; want a and b with their hashes", seen, err)
	}
	if got, err := s.Contents(ctx, "contacts", []string{"a", "b"}); err != nil || len(got) != 0 {
		t.Fatalf("contents of records seen before record history = %v, %v; want none", got, err)
	}

	ls, err := s.AcquireLeases(ctx, "test", []string{ResourceLease("contacts")}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	lease := ls[0]
	var deleted []Seen
	finish := func(n int64, gone ...string) {
		t.Helper()
		_, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: n, Lease: lease, Snapshot: true,
			LookedUp: true, Gone: gone, DeleteGuard: 1, Now: t0,
			Deleted: func(id string, last Seen) Event {
				deleted = append(deleted, last)
				ev := event("contacts", "del-"+id, "contact.deleted")
				ev.Previous = []byte(last.Content)
				return ev
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// a changes (its event has no previous: none was kept) and is kept
	// with its content; b, missing, is found gone.
	n, err := s.BeginCycle(ctx, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	changed := SeenRecord{ID: "a", Seen: Seen{Updated: t0, Hash: "h-a2", Rev: 1, Content: `{"id":"a","v":2}`}}
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: n, Lease: lease, Records: []SeenRecord{changed},
		Events: []Event{event("contacts", "upd-a", "contact.updated")}}); err != nil {
		t.Fatal(err)
	}
	finish(n, "b")
	// a, missing in turn, is found gone: its delete has its content.
	if n, err = s.BeginCycle(ctx, "contacts", lease); err != nil {
		t.Fatal(err)
	}
	finish(n, "a")
	want := []Seen{{Updated: fromNanos(1), Hash: "h-b"}, {Updated: t0, Hash: "h-a2", Rev: 1, Content: `{"id":"a","v":2}`}}
	if !reflect.DeepEqual(deleted, want) {
		t.Errorf("the deletes were given %+v, want %+v", deleted, want)
	}
	for id, prev := range map[string]string{"del-b": "", "del-a": `{"id":"a","v":2}`} {
		e, err := s.Event(ctx, id)
		if err != nil || string(e.Previous) != prev {
			t.Errorf("event %s: previous %s, %v; want %q", id, e.Previous, err, prev)
		}
	}
}

// TestUpgradePostgres opens a PostgreSQL database written by each older
// pollhook, with rows in it: its data is kept, and record history works
// on it.
func TestUpgradePostgres(t *testing.T) {
	db := pgtest.DSN(t)
	for v := 1; v < len(pgMigrations); v++ {
		t.Run(fmt.Sprintf("from version %d", v), func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.Schema(t, db)
			raw, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			older := strings.Join(pgMigrations[:v], ";\n") + `;
CREATE TABLE pollhook_schema (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
` + olderRows + fmt.Sprintf(`
INSERT INTO outbox (seq, id, type, resource) VALUES (1, 'e1', 'contact.created', 'contacts');
UPDATE counters SET value = 1 WHERE name = 'outbox';
INSERT INTO pollhook_schema (id, version) VALUES (1, %d);`, v)
			if _, err := raw.ExecContext(ctx, older); err != nil {
				t.Fatal(err)
			}
			s, err := OpenPostgres(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got int
			if err := raw.QueryRowContext(ctx, `SELECT version FROM pollhook_schema`).Scan(&got); err != nil || got != len(pgMigrations) {
				t.Errorf("schema version = %d, %v; want %d", got, err, len(pgMigrations))
			}
			checkHistoryAfterUpgrade(t, s)
		})
	}
}

// TestPostgresScratchOfAnOlderDatabase: a dry run's copy of a database
// an older pollhook wrote is brought up to date, with the resources'
// records; the database is left at its version (replicas of the older
// pollhook may run on it), and the copy's schema is gone after drop. A
// database of a newer pollhook is refused, and leaves no copy behind.
func TestPostgresScratchOfAnOlderDatabase(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DSN(t)
	dsn := pgtest.Schema(t, db)
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const v = 4 // the version before record history
	if _, err := raw.ExecContext(ctx, strings.Join(pgMigrations[:v], ";\n")+`;
CREATE TABLE pollhook_schema (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT INTO pollhook_schema (id, version) VALUES (1, 4);`+olderRows); err != nil {
		t.Fatal(err)
	}
	// state is the database's schema version, whether it has record
	// history's table, and how many dry-run copies it holds.
	state := func() (version int, history bool, copies int) {
		t.Helper()
		err := raw.QueryRowContext(ctx, `SELECT (SELECT version FROM pollhook_schema),
	EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'seen_content'),
	(SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'pollhook_dry_run_%')`).Scan(&version, &history, &copies)
		if err != nil {
			t.Fatal(err)
		}
		return version, history, copies
	}

	scratch, drop, err := OpenPostgresScratch(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := scratch.Seen(ctx, "contacts", []string{"a", "b"})
	if err != nil || len(seen) != 2 {
		t.Errorf("records in the copy = %v, %v; want a and b", seen, err)
	}
	if _, err := scratch.Contents(ctx, "contacts", []string{"a"}); err != nil {
		t.Errorf("contents in the copy: %v; want it migrated", err)
	}
	if v, history, copies := state(); v != 4 || history || copies != 1 {
		t.Errorf("while the copy is open: the database at version %d, record history %v, %d copies; want version 4 unchanged, one copy", v, history, copies)
	}
	drop()
	if v, history, copies := state(); v != 4 || history || copies != 0 {
		t.Errorf("after drop: the database at version %d, record history %v, %d copies; want version 4 unchanged, no copy", v, history, copies)
	}

	if _, err := raw.ExecContext(ctx, `UPDATE pollhook_schema SET version = 99`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenPostgresScratch(ctx, dsn); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("a copy of a newer database: %v, want ErrSchemaTooNew", err)
	}
	if _, _, copies := state(); copies != 0 {
		t.Errorf("a refused copy left %d copies behind", copies)
	}
}
