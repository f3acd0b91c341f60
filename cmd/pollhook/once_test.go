package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// tinyAPI serves /items as one page of {"items":[{id, updated}]}; fail makes
// it answer 500.
type tinyAPI struct {
	mu    sync.Mutex
	items map[string]string // id → updated (RFC 3339)
	fail  bool
}

func (a *tinyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	var list []map[string]string
	for id, u := range a.items {
		list = append(list, map[string]string{"id": id, "updated": u})
	}
	json.NewEncoder(w).Encode(map[string]any{"items": list})
}

func (a *tinyAPI) set(id, updated string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.items[id] = updated
}

func writeConfig(t *testing.T, dir, baseURL, extra string) string {
	t.Helper()
	return writeStateConfig(t, dir, "path: "+filepath.Join(dir, "state.db"), baseURL, extra)
}

// writeStateConfig is writeConfig with state, the state block's key
// (path: … or dsn: …).
func writeStateConfig(t *testing.T, dir, state, baseURL, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "pollhook.yaml")
	yml := fmt.Sprintf(`state:
  %s
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
%s`, state, baseURL, extra)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, &out, &errb)
	if err != nil {
		fmt.Fprintln(&errb, "pollhook:", err)
	}
	return out.String(), errb.String(), exitCode(err)
}

func eventTypes(t *testing.T, stdout string) []string {
	t.Helper()
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		var env struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			ObjectID string `json:"object_id"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("stdout line %q is not an event: %v", line, err)
		}
		if !strings.HasPrefix(env.ID, "evt_") {
			t.Errorf("event id %q", env.ID)
		}
		types = append(types, env.Type+":"+env.ObjectID+":"+env.ID)
	}
	sort.Strings(types) // the upstream lists records in any order
	return types
}

// previousOf returns the previous (JSON, "" when none) of the event of
// object id among the JSON lines of stdout.
func previousOf(t *testing.T, stdout, id string) string {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var env struct {
			ObjectID string          `json:"object_id"`
			Previous json.RawMessage `json:"previous"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatalf("stdout line %q is not an event: %v", line, err)
		}
		if env.ObjectID == id {
			return string(env.Previous)
		}
	}
	t.Fatalf("no event of %s in %q", id, stdout)
	return ""
}

func TestOnce(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z", "2": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, srv.URL, "")

	out, errOut, code := runCLI(t, "once", "-c", cfg)
	if code != 0 || out != "" || !strings.Contains(errOut, "first cycle recorded 2 records") {
		t.Fatalf("first once: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	api.set("2", "2026-11-02T10:00:00Z")
	api.set("3", "2026-11-02T10:00:00Z")
	out, errOut, code = runCLI(t, "once", "-c", cfg, "--dry-run")
	if got := strings.Join(eventTypes(t, out), " "); code != 0 || !strings.Contains(got, "thing.updated:2") || !strings.Contains(got, "thing.created:3") {
		t.Fatalf("dry run: code %d, events %q, stderr %q", code, got, errOut)
	}
	if !strings.Contains(errOut, "(dry run)") {
		t.Errorf("dry-run summary %q does not say so", errOut)
	}
	// The dry run committed nothing: the real run reports the same events,
	// with the same ids.
	dryOut := out
	out, errOut, code = runCLI(t, "once", "-c", cfg)
	if code != 0 || strings.Join(eventTypes(t, out), " ") != strings.Join(eventTypes(t, dryOut), " ") {
		t.Fatalf("real run after a dry run: code %d\n%s\nwant\n%s\nstderr %s", code, out, dryOut, errOut)
	}
	if !strings.Contains(errOut, "1 created, 1 updated, 0 deleted") {
		t.Errorf("summary %q", errOut)
	}

	api.mu.Lock()
	api.fail = true
	api.mu.Unlock()
	out, errOut, code = runCLI(t, "once", "-c", cfg)
	if code != 1 || out != "" || !strings.Contains(errOut, "things: failed") || !strings.Contains(errOut, "500") {
		t.Fatalf("failing upstream: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	api.mu.Lock()
	api.fail = false
	api.mu.Unlock()
	out, _, code = runCLI(t, "once", "-c", cfg)
	if code != 0 || out != "" {
		t.Fatalf("after the failure: code %d, events %q", code, out)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sources: []\nresources: []\nbogus: 1\n"), 0o600)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"check", "-c", bad}, 2, "bad.yaml:3"},
		{[]string{"check", "-c", filepath.Join(dir, "missing.yaml")}, 2, "does not exist"},
		{[]string{"once", "--nope"}, 2, "flag provided but not defined"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"once", "-c", writeConfig(t, dir, "http://127.0.0.1:1", ""), "--resource", "nope"}, 2, `no resource "nope"`},
	} {
		_, errOut, code := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

func TestEventsAndCursors(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := writeConfig(t, t.TempDir(), srv.URL, "    start: beginning\n")
	onceOut, _, code := runCLI(t, "once", "-c", cfg)
	if code != 0 {
		t.Fatalf("once: code %d", code)
	}
	api.set("2", "2026-11-02T10:00:00Z")
	runCLI(t, "once", "-c", cfg)

	out, _, code := runCLI(t, "events", "-c", cfg, "--json", "--type", "*.created")
	if got := eventTypes(t, out); code != 0 || len(got) != 2 || got[0] != strings.TrimSpace(strings.Join(eventTypes(t, onceOut), "")) {
		t.Fatalf("events --json: code %d, %v; first once printed %v", code, got, eventTypes(t, onceOut))
	}
	out, _, _ = runCLI(t, "events", "-c", cfg, "--type", "*.deleted")
	if strings.Contains(out, "thing.") {
		t.Errorf("events --type '*.deleted' listed %q", out)
	}

	out, _, code = runCLI(t, "cursors", "-c", cfg)
	if code != 0 || !strings.Contains(out, "things") || !strings.Contains(out, "2026-11-02T10:00:00Z") {
		t.Fatalf("cursors: code %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "cursors", "reset", "things", "-c", cfg, "--to", "2026-10-01T00:00:00Z")
	if code != 0 || !strings.Contains(out, "2026-10-01T00:00:00Z") {
		t.Fatalf("cursors reset: code %d, %q", code, out)
	}
	// The re-read after a reset reports nothing the store already knew.
	out, _, code = runCLI(t, "once", "-c", cfg)
	if code != 0 || out != "" {
		t.Fatalf("once after reset: code %d, events %q", code, out)
	}
	if _, errOut, code := runCLI(t, "cursors", "reset", "nope", "-c", cfg); code != 2 || !strings.Contains(errOut, `no resource "nope"`) {
		t.Errorf("reset of an unknown resource: code %d, %q", code, errOut)
	}
}

func TestCheckHidesSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pollhook.yaml")
	os.WriteFile(path, []byte(`sources:
  - name: api
    base_url: https://api.example.com
    auth: { type: bearer, token: "${TOK}" }
  - name: legacy
    base_url: https://user:pa55word@api.example.com/v1?api_key=SUPERSECRET123
  - name: crm
    base_url: https://crm.example.com
    auth:
      type: oauth2
      token_url: https://id:tokpa55@auth.example.com/token?client_secret=CLIENTSECRET9
      client_id: pollhook
      client_secret: cs_verysecret
resources:
  - name: things
    source: api
    object: thing
    url: /items
destinations:
  - name: app
    url: https://user:hunter2pass@hooks.example.com/in?token=qwertyuiop123
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - name: stream
    url: nats://natsuser:natspa55@n1.example.com:4222,nats://natstok3n@n2.example.com:4222
    subject: pollhook.{resource}.{type}
    stream: EVENTS
  - name: stream2
    url: nats://n1.example.com:4222
    subject: other.{type}
    nats: { user: u, password: natspw0rd }
`), 0o600)
	t.Setenv("TOK", "sk_live_topsecretvalue")
	out, errOut, code := runCLI(t, "check", "-c", path)
	if code != 0 {
		t.Fatalf("check: %d %s", code, errOut)
	}
	for _, secret := range []string{"sk_live_topsecretvalue", "hunter2pass", "qwertyuiop123", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"pa55word", "SUPERSECRET123", "tokpa55", "CLIENTSECRET9", "cs_verysecret", "natspa55", "natstok3n", "natspw0rd"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check printed the secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "bearer <secret>") || !strings.Contains(out, "https://hooks.example.com/in?token=REDACTED") ||
		!strings.Contains(out, "https://api.example.com/v1?api_key=REDACTED") || !strings.Contains(out, "oauth2 https://auth.example.com/token?client_secret=REDACTED") ||
		!strings.Contains(out, "nats://n1.example.com:4222,nats://n2.example.com:4222 subject pollhook.{resource}.{type} stream EVENTS") {
		t.Errorf("check summary:\n%s", out)
	}
}

// sqliteFile is what a dry run must leave as it was: a state file's bytes,
// modification time, schema version and journal mode, and the files beside
// it (no -wal or -shm left behind).
type sqliteFile struct {
	bytes       []byte
	mtime       time.Time
	userVersion int
	journalMode string
	dir         []string
}

func readSQLiteFile(t *testing.T, path string) sqliteFile {
	t.Helper()
	var f sqliteFile
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f.bytes = b
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f.mtime = st.ModTime()
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f.dir = append(f.dir, e.Name())
	}
	// Header bytes 18 and 19 are 2 in WAL mode, 1 in rollback mode; the
	// user_version is the big-endian int at 60. An empty file is neither.
	if len(b) >= 100 {
		f.journalMode = "rollback"
		if b[18] == 2 {
			f.journalMode = "wal"
		}
		f.userVersion = int(b[60])<<24 | int(b[61])<<16 | int(b[62])<<8 | int(b[63])
	}
	return f
}

// backfilled serves record 1 and runs once over it with start:
// beginning: the state of dir knows it.
func backfilled(t *testing.T) (api *tinyAPI, dir, cfg string) {
	t.Helper()
	api = &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	dir = t.TempDir()
	cfg = writeConfig(t, dir, srv.URL, "    start: beginning\n")
	if _, errOut, code := runCLI(t, "once", "-c", cfg); code != 0 {
		t.Fatalf("once: code %d, %s", code, errOut)
	}
	return api, dir, cfg
}

func TestDryRunLeavesStateFileAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
	}{
		{"wal mode, as pollhook leaves it", func(t *testing.T, path string) {}},
		{"rollback journal mode", func(t *testing.T, path string) {
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var mode string
			if err := db.QueryRow("PRAGMA journal_mode = DELETE").Scan(&mode); err != nil || mode != "delete" {
				t.Fatalf("set journal mode: %q, %v", mode, err)
			}
		}},
		{"schema version 0 (an empty file)", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, dir, cfg := backfilled(t)
			state := filepath.Join(dir, "state.db")
			tt.prepare(t, state)
			before := readSQLiteFile(t, state)
			// A later mtime would show: the clock has moved on since the
			// last write by the time the dry run starts.
			os.Chtimes(state, before.mtime.Add(-time.Hour), before.mtime.Add(-time.Hour))
			before.mtime = before.mtime.Add(-time.Hour)

			api.set("2", "2026-11-02T10:00:00Z")
			out, errOut, code := runCLI(t, "once", "-c", cfg, "--dry-run")
			if code != 0 || !strings.Contains(out, "thing.created") {
				t.Fatalf("dry run: code %d, stdout %q, stderr %s", code, out, errOut)
			}
			after := readSQLiteFile(t, state)
			if after.journalMode != before.journalMode || after.userVersion != before.userVersion {
				t.Errorf("the dry run changed the state file from %s mode, schema version %d to %s mode, schema version %d",
					before.journalMode, before.userVersion, after.journalMode, after.userVersion)
			}
			if !bytes.Equal(after.bytes, before.bytes) || !after.mtime.Equal(before.mtime) {
				t.Errorf("the dry run wrote the state file (mtime %s, was %s)", after.mtime, before.mtime)
			}
			if !slices.Equal(after.dir, before.dir) {
				t.Errorf("files beside the state file: %q, were %q", after.dir, before.dir)
			}
		})
	}
}

// TestDryRunBesideADaemon: a dry run polls a copy of the state that no
// other process writes, so it polls the resources a running daemon holds
// as any other (as on PostgreSQL, whose scratch copy has no leases), and
// shows what would be emitted; a real once beside the daemon leaves them
// to it.
func TestDryRunBesideADaemon(t *testing.T) {
	t.Parallel()
	api, dir, cfg := backfilled(t)
	// A daemon polls things: it holds its lease.
	store, err := cursor.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.AcquireLeases(context.Background(), "daemon.example:42:abcdef", []string{cursor.ResourceLease("things")}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}

	api.set("2", "2026-11-02T10:00:00Z")
	out, errOut, code := runCLI(t, "once", "-c", cfg, "--dry-run")
	if got := eventTypes(t, out); code != 0 || len(got) != 1 || !strings.HasPrefix(got[0], "thing.created:2:") || strings.Contains(errOut, "not polled") {
		t.Errorf("dry run beside a daemon: code %d, events %v, stderr %s; want thing.created of 2", code, got, errOut)
	}
	out, errOut, code = runCLI(t, "once", "-c", cfg)
	if code != 0 || out != "" || !strings.Contains(errOut, "things: not polled: another pollhook process holds it (daemon.example:42:abcdef)") {
		t.Errorf("once beside a daemon: code %d, stdout %q, stderr %s; want things left to the daemon", code, out, errOut)
	}
}

// TestOnceDropsRemovedDestination: a destination taken out of the config
// stops with its pending deliveries at the next once, as at run's next
// start, so that it holds back no pruning of the outbox; one still in the
// config keeps its deliveries.
func TestOnceDropsRemovedDestination(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	dir := t.TempDir()
	dest := func(name string) string {
		return fmt.Sprintf("  - name: %s\n    url: %s\n    retry: { schedule: [1h] }\n", name, down.URL)
	}
	cfg := writeConfig(t, dir, srv.URL, "destinations:\n"+dest("kept")+dest("removed"))
	if _, errOut, code := runCLI(t, "once", "-c", cfg); code != 0 {
		t.Fatalf("first once: %d %s", code, errOut)
	}
	api.set("2", "2026-11-02T10:00:00Z")
	if _, errOut, code := runCLI(t, "once", "-c", cfg); code != 0 || !strings.Contains(errOut, "2 failed") {
		t.Fatalf("second once: code %d, want the deliveries to both destinations failed: %s", code, errOut)
	}

	cfg = writeConfig(t, dir, srv.URL, "destinations:\n"+dest("kept"))
	_, errOut, code := runCLI(t, "once", "-c", cfg, "--no-deliver")
	if code != 0 {
		t.Fatalf("once --no-deliver: %d %s", code, errOut)
	}
	store := openTestState(t, cfg)
	if _, err := store.Destination(context.Background(), "removed"); err != nil {
		t.Fatalf("once --no-deliver dropped the destination: %v", err)
	}
	_, errOut, code = runCLI(t, "once", "-c", cfg)
	if code != 0 || !strings.Contains(errOut, "destination removed is no longer in the config: its 1 pending delivery is dropped") {
		t.Fatalf("once after removing a destination: code %d, stderr %s", code, errOut)
	}
	if _, err := store.Destination(context.Background(), "removed"); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("the removed destination is still in the state file: %v", err)
	}
	b, err := store.Backlog(context.Background(), "kept")
	if err != nil || b.Pending != 1 {
		t.Errorf("the kept destination's backlog = %+v, %v; want its 1 pending delivery", b, err)
	}
}

// TestOnceEverySkipFails: a cycle that reads records but can use none of
// them (here a misspelt id_field) reported nothing, and never will: once
// exits 1, and says why the records were skipped. A first cycle of that
// kind does not count, so that fixing id_field does not report every
// record as created.
func TestOnceEverySkipFails(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z", "2": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	misspelt := writeConfig(t, dir, srv.URL, "    id_field: idd\n")
	for _, args := range [][]string{{"once", "-c", misspelt}, {"once", "-c", misspelt, "--quiet"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, `things: failed: poll things: the first cycle skipped every record it read (2: no id at "idd")`) {
			t.Errorf("%q: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and why", args, code, out, errOut)
		}
	}
	fixed := writeConfig(t, dir, srv.URL, "")
	if out, errOut, code := runCLI(t, "once", "-c", fixed); code != 0 || out != "" || !strings.Contains(errOut, "things: first cycle recorded 2 records in 1 page") {
		t.Fatalf("once after the fix: exit %d, stdout %q, stderr %q; want the first cycle, silent", code, out, errOut)
	}
	misspelt = writeConfig(t, dir, srv.URL, "    id_field: idd\n")
	for _, args := range [][]string{{"once", "-c", misspelt}, {"once", "-c", misspelt, "--quiet"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 1 || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want exit 1 and no events", args, code, out)
		}
		for _, want := range []string{
			`: 2 records in 1 page, nothing recorded`,
			`every one skipped: no id at "idd"`,
			"pollhook: 1 failure: things: every record read was skipped (2): check id_field and dates",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%q: stderr lacks %q:\n%s", args, want, errOut)
			}
		}
	}
	// Some records skipped, not all: named, and no failure.
	fixed = writeConfig(t, dir, srv.URL, "")
	api.set("3", "not a date")
	_, errOut, code := runCLI(t, "once", "-c", fixed)
	if code != 0 || !strings.Contains(errOut, `2 records, 0 created, 0 updated, 0 deleted`) || !strings.Contains(errOut, `; 1 record skipped: updated date "not a date" at "updated"`) {
		t.Errorf("once with one bad date: exit %d, stderr:\n%s", code, errOut)
	}
}

// TestOnceQuiet: --quiet prints nothing for a run that needs no one —
// events, summaries and skipped-record warnings stay out of cron's mail —
// and what needs a person while it is so.
// TestOnceStdoutDestination: with a stdout destination, once prints each
// event once, as the destination writes it, not its own line besides.
func TestOnceStdoutDestination(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z", "2": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, srv.URL, "    start: beginning\ndestinations:\n  - name: out\n    url: stdout\n    format: cloudevents\n")
	out, errOut, code := runCLI(t, "once", "-c", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("once: exit %d, stdout %q, stderr %q; want the 2 events, once each", code, out, errOut)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"specversion":"1.0"`) {
			t.Errorf("line %q: want the destination's CloudEvent", l)
		}
	}
}

func TestOnceQuiet(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z", "2": "2026-11-01T10:00:00Z", "3": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	rcv := &statusReceiver{status: http.StatusNoContent}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, srv.URL, "    start: beginning\n    delete_guard: 0.5\ndestinations:\n  - name: app\n    url: "+hook.URL+"\n")
	quiet := func() (string, string, int) { return runCLI(t, "once", "-c", cfg, "--quiet") }

	// Three events delivered, one record with a bad date: nothing to say.
	api.set("4", "not a date")
	if out, errOut, code := quiet(); code != 0 || out != "" || errOut != "" || len(rcv.accepted) != 3 {
		t.Errorf("quiet once with nothing to report: exit %d, stdout %q, stderr %q, %d delivered", code, out, errOut, len(rcv.accepted))
	}
	// A 410 disables the destination: said, while it is so.
	rcv.set(http.StatusGone)
	api.set("1", "2026-11-02T10:00:00Z")
	for range 2 {
		if out, errOut, code := quiet(); code != 0 || out != "" || !strings.Contains(errOut, "1 destination disabled by a 410") || strings.Contains(errOut, "things: cycle") {
			t.Errorf("quiet once with a destination disabled: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}
	// Every record gone: the deletes are held back, and that is said.
	api.mu.Lock()
	api.items = map[string]string{}
	api.mu.Unlock()
	if out, errOut, code := quiet(); code != 0 || out != "" || !strings.Contains(errOut, "3 deletes HELD BACK by delete_guard") {
		t.Errorf("quiet once with deletes held back: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The upstream fails: said, exit 1.
	api.mu.Lock()
	api.fail = true
	api.mu.Unlock()
	if _, errOut, code := quiet(); code != 1 || !strings.Contains(errOut, "things: failed") {
		t.Errorf("quiet once with a failing upstream: exit %d, stderr %q", code, errOut)
	}
}
