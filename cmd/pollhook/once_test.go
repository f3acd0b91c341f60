package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
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
	path := filepath.Join(dir, "pollhook.yaml")
	yml := fmt.Sprintf(`state:
  path: %s
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
%s`, filepath.Join(dir, "state.db"), baseURL, extra)
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

func TestOnce(t *testing.T) {
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
resources:
  - name: things
    object: thing
    url: /items
destinations:
  - name: app
    url: https://user:hunter2pass@hooks.example.com/in?token=qwertyuiop123
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
`), 0o600)
	t.Setenv("TOK", "sk_live_topsecretvalue")
	out, errOut, code := runCLI(t, "check", "-c", path)
	if code != 0 {
		t.Fatalf("check: %d %s", code, errOut)
	}
	for _, secret := range []string{"sk_live_topsecretvalue", "hunter2pass", "qwertyuiop123", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("check printed the secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "bearer <secret>") || !strings.Contains(out, "hooks.example.com/in?…") {
		t.Errorf("check summary:\n%s", out)
	}
}
