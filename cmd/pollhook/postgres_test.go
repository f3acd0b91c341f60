package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pollhook/pollhook/internal/pgtest"
)

// TestCommandsOnPostgres runs every command that reads or writes the
// state against a PostgreSQL database of its own: check, once (and its
// dry run), events, deliveries, attempts, cursors (and reset),
// destinations, replay.
func TestCommandsOnPostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer hook.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pollhook.yaml")
	yml := fmt.Sprintf(`state:
  dsn: %s
sources:
  - name: api
    base_url: %s
    retry: { attempts: 1 }
resources:
  - name: things
    object: thing
    url: /items
    items: .items
    dates: { updated_field: updated, updated_format: rfc3339 }
    deletes: snapshot
    start: beginning
destinations:
  - name: app
    url: %s
    retry: { schedule: [1h] }
`, dsn, srv.URL, hook.URL)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cli := func(want int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runCLI(t, append(args, "-c", cfg)...)
		if code != want {
			t.Fatalf("%s: code %d, want %d\nstdout %s\nstderr %s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out, errOut
	}

	if out, _ := cli(0, "check"); !strings.Contains(out, "PostgreSQL postgres://") || strings.Contains(out, "password") {
		t.Errorf("check:\n%s", out)
	}
	// The receiver fails: the delivery stays pending; once says so and
	// exits 0 (a failed delivery is retried, not a failure of once).
	out, errOut := cli(0, "once")
	created := eventTypes(t, out)
	if len(created) != 1 || !strings.HasPrefix(created[0], "thing.created:1:") || !strings.Contains(errOut, "1 failed") {
		t.Fatalf("first once: events %v\n%s", created, errOut)
	}
	api.set("2", "2026-11-02T10:00:00Z")
	api.set("1", "2026-11-01T11:00:00Z")
	dry, _ := cli(0, "once", "--dry-run")
	real, _ := cli(0, "once", "--no-deliver")
	if d, r := eventTypes(t, dry), eventTypes(t, real); len(d) != 2 || len(r) != 2 || d[0] != r[0] || d[1] != r[1] {
		t.Errorf("dry run printed %v, the real run %v: want the same two events (the dry run commits nothing)", d, r)
	}
	// The update carries the version before it in the dry run as in the
	// real one: the scratch copy holds the records' contents.
	const before = `{"id":"1","updated":"2026-11-01T10:00:00Z"}`
	if d, r := previousOf(t, dry, "1"), previousOf(t, real, "1"); d != before || r != before {
		t.Errorf("previous of the update: dry run %s, real run %s; want %s in both", d, r, before)
	}
	if out, _ := cli(0, "events", "--json"); len(eventTypes(t, out)) != 3 {
		t.Errorf("events: %s", out)
	}
	if out, _ := cli(0, "cursors"); !strings.Contains(out, "things") || !strings.Contains(out, "2026-11-02T10:00:00Z") {
		t.Errorf("cursors:\n%s", out)
	}
	cli(0, "cursors", "reset", "things", "--to", "2026-10-01T00:00:00Z")
	if out, _ := cli(0, "deliveries", "--destination", "app", "--status", "pending"); strings.Count(out, "pending") != 1 {
		t.Errorf("deliveries (pending):\n%s", out)
	}
	if out, _ := cli(0, "attempts", "--destination", "app"); !strings.Contains(out, "500") {
		t.Errorf("attempts:\n%s", out)
	}
	if out, _ := cli(0, "destinations"); !strings.Contains(out, "app") {
		t.Errorf("destinations:\n%s", out)
	}
	// The receiver recovers; a replay of the first event sends it now.
	status.Store(http.StatusOK)
	id := strings.SplitN(created[0], ":", 3)[2]
	cli(0, "replay", "--destination", "app", "--event", id)
	_, errOut = cli(0, "once")
	if !strings.Contains(errOut, "delivery: 3 delivered") {
		t.Errorf("once after the replay:\n%s", errOut)
	}
}

// TestDryRunLeavesPostgresAlone: a dry run against a PostgreSQL database
// changes nothing in it, as one against a SQLite file leaves the file as
// it was: on a database pollhook has not used yet it creates no table (the
// scratch copy is made and migrated in a schema of its own, and dropped).
func TestDryRunLeavesPostgresAlone(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := writeStateConfig(t, t.TempDir(), "dsn: "+dsn, srv.URL, "    start: beginning\n")
	out, errOut, code := runCLI(t, "once", "--dry-run", "-c", cfg)
	if got := eventTypes(t, out); code != 0 || len(got) != 1 {
		t.Fatalf("dry run: code %d, events %v, stderr %s", code, got, errOut)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables []string
	rows, err := db.Query(`SELECT table_schema || '.' || table_name FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if len(tables) > 0 {
		t.Errorf("the dry run left tables in the database: %v", tables)
	}
}
