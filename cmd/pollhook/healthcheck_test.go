package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// TestHealthcheckWithoutListener: with no http.listen (as in every shipped
// example), healthcheck reads the leases of the state file: healthy while
// a daemon of this host runs, unhealthy once it stopped or when another
// host's process holds them; every failure exits 1, never 2. It needs
// only state.path of the config: its secrets may be unset.
func TestHealthcheckWithoutListener(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, srv.URL, "    schedule: 1s\n")
	state := filepath.Join(dir, "state.db")
	secretive := filepath.Join(dir, "secretive.yaml")
	os.WriteFile(secretive, []byte(fmt.Sprintf(`state: { path: %s }
sources:
  - name: api
    base_url: %s
    auth: { type: bearer, token: "${PH_TEST_UNSET_TOKEN}" }
resources:
  - { name: things, object: thing, url: /items }
`, state, srv.URL)), 0o600)

	if _, errOut, code := runCLI(t, "healthcheck", "-c", cfg); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("healthcheck before any run: exit %d, %q; want 1 and why", code, errOut)
	}
	stop, _ := daemonRun(t, cfg)
	var out, errOut string
	code := -1
	waitFor(t, "healthcheck to find the daemon alive", func() bool {
		out, errOut, code = runCLI(t, "healthcheck", "-c", secretive)
		return code == 0
	})
	// A daemon holds its member lease, and its resources' (see the README's
	// "Several processes on one state").
	if !strings.Contains(out, " holds "+cursor.ResourceLease("things")+" until ") && !strings.Contains(out, " holds "+cursor.MemberLease("")) {
		t.Errorf("healthcheck of a running daemon says %q, %q", out, errOut)
	}
	if out, errOut, code := runCLI(t, "healthcheck", "--state", state); code != 0 {
		t.Errorf("healthcheck --state of a running daemon: exit %d, %q %q", code, out, errOut)
	}
	if err, logs := stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, logs)
	}
	if _, errOut, code = runCLI(t, "healthcheck", "-c", secretive); code != 1 || !strings.Contains(errOut, "no pollhook process holds a lease") {
		t.Errorf("healthcheck after the daemon stopped: exit %d, %q; want 1 and why", code, errOut)
	}

	// Another host's process at work on the same state: not this one.
	store, err := cursor.Open(context.Background(), state)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.AcquireLeases(context.Background(), "elsewhere.example:42:abcdef", []string{cursor.ResourceLease("things")}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = runCLI(t, "healthcheck", "-c", secretive); code != 1 || !strings.Contains(errOut, "elsewhere.example:42:abcdef do") {
		t.Errorf("healthcheck with another host's lease: exit %d, %q", code, errOut)
	}

	for _, args := range [][]string{
		{"healthcheck", "--nope"},
		{"healthcheck", "-c", filepath.Join(dir, "missing.yaml")},
		{"healthcheck", "--addr", "no-port"},
		{"healthcheck", "--addr", freeAddr(t), "--timeout", "1s"},
	} {
		if _, errOut, code := runCLI(t, args...); code != 1 {
			t.Errorf("%q: exit %d (%q), want 1: Docker reserves 2", args, code, errOut)
		}
	}
}

// TestHealthcheckListener: with http.listen, healthcheck asks the daemon.
func TestHealthcheckListener(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	addr := freeAddr(t)
	cfg := writeConfig(t, t.TempDir(), srv.URL, fmt.Sprintf("http:\n  listen: %s\n", addr))
	stop, _ := daemonRun(t, cfg)
	defer stop()
	waitFor(t, "the listener", func() bool {
		out, _, code := runCLI(t, "healthcheck", "-c", cfg)
		return code == 0 && strings.Contains(out, "http://"+addr+"/healthz")
	})
	waitFor(t, "/readyz", func() bool {
		_, _, code := runCLI(t, "healthcheck", "--addr", addr, "--path", "/readyz")
		return code == 0
	})
	if _, errOut, code := runCLI(t, "healthcheck", "--addr", addr, "--path", "/nope"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("healthcheck of a path that is not there: exit %d, %q", code, errOut)
	}
}
