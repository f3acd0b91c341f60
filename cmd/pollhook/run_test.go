package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// receiver records the events delivered to it; while down it answers 503.
type receiver struct {
	mu   sync.Mutex
	ids  map[string]int // event id → deliveries
	down bool
	got  chan string
}

func newReceiver() *receiver {
	return &receiver{ids: map[string]int{}, got: make(chan string, 1000)}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get("webhook-id") {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.ids[ev.ID]++
	r.got <- ev.Type
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// waitEvents waits for n deliveries.
func (r *receiver) waitEvents(t *testing.T, n int) []string {
	t.Helper()
	var types []string
	timeout := time.After(20 * time.Second)
	for len(types) < n {
		select {
		case typ := <-r.got:
			types = append(types, typ)
		case <-timeout:
			t.Fatalf("received %v, want %d events", types, n)
		}
	}
	return types
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// daemonRun runs "pollhook run" until the returned stop is called; stop
// returns run's error and its stderr; logs reads the stderr so far.
func daemonRun(t *testing.T, cfg string) (stop func() (error, string), logs func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	w := &syncWriter{w: &errb}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"run", "-c", cfg, "--log-format", "text", "--grace", "10s"}, io.Discard, w)
	}()
	logs = func() string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return errb.String()
	}
	return func() (error, string) {
		cancel()
		select {
		case err := <-done:
			return err, errb.String()
		case <-time.After(20 * time.Second):
			t.Fatal("pollhook run did not stop within 20s of its context ending")
			return nil, ""
		}
	}, logs
}

// waitFor polls cond until it holds, for at most 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	for i := 0; ; i++ {
		resp, err := http.Get(url)
		if err != nil {
			if i < 100 {
				time.Sleep(50 * time.Millisecond) // the listener is starting
				continue
			}
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
}

func TestRunDeliversSurvivesOutageAndRestart(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	up := httptest.NewServer(api)
	defer up.Close()
	rcv := newReceiver()
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	addr := freeAddr(t)
	cfg := writeConfig(t, t.TempDir(), up.URL, fmt.Sprintf(`    schedule: 1s
    start: beginning
http:
  listen: %s
destinations:
  - name: app
    url: %s
    retry: { schedule: [100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms, 100ms] }
`, addr, hook.URL))

	stop, _ := daemonRun(t, cfg)
	if got := rcv.waitEvents(t, 1); got[0] != "thing.created" {
		t.Fatalf("first delivery %v", got)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	// The receiver may answer before the outcome is recorded.
	for _, m := range []string{`pollhook_polls_total{outcome="ok",resource="things"}`, `pollhook_delivery_attempts_total{destination="app",outcome="delivered"}`, `pollhook_events_total{resource="things",type="thing.created"}`} {
		waitFor(t, "/metrics to show "+m, func() bool {
			_, metrics := get(t, "http://"+addr+"/metrics")
			return strings.Contains(metrics, m)
		})
	}

	// The receiver goes down; changes keep coming; the daemon is stopped
	// with deliveries pending.
	rcv.setDown(true)
	api.set("2", "2026-11-02T10:00:00Z")
	api.set("1", "2026-11-03T10:00:00Z")
	waitFor(t, "a failed attempt while the receiver is down", func() bool {
		_, m := get(t, "http://"+addr+"/metrics")
		return strings.Contains(m, `pollhook_delivery_attempts_total{destination="app",outcome="failed"}`)
	})
	if err, logs := stop(); err != nil {
		t.Fatalf("run after a stop: %v\n%s", err, logs)
	}

	// Back up, and restarted: everything pending arrives, nothing twice
	// under another id.
	rcv.setDown(false)
	stop, _ = daemonRun(t, cfg)
	got := rcv.waitEvents(t, 2)
	if strings.Join(got, " ") != "thing.created thing.updated" && strings.Join(got, " ") != "thing.updated thing.created" {
		t.Fatalf("after the restart: %v", got)
	}
	if err, logs := stop(); err != nil {
		t.Fatalf("second run: %v\n%s", err, logs)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.ids) != 3 {
		t.Fatalf("received %d distinct events, want 3: %v", len(rcv.ids), rcv.ids)
	}
}

// TestRunReloadsOnSIGHUP is not parallel: its SIGHUP goes to the whole test
// process, and would reload every daemon running in it.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	up := httptest.NewServer(api)
	defer up.Close()
	first, second := newReceiver(), newReceiver()
	h1, h2 := httptest.NewServer(first), httptest.NewServer(second)
	defer h1.Close()
	defer h2.Close()
	dir := t.TempDir()
	dest := func(url string) string {
		return fmt.Sprintf("    schedule: 1s\n    start: beginning\ndestinations:\n  - name: app\n    url: %s\n", url)
	}
	cfg := writeConfig(t, dir, up.URL, dest(h1.URL))
	stop, logs := daemonRun(t, cfg)
	first.waitEvents(t, 1)

	// A broken config is refused and the running one stays.
	os.WriteFile(cfg, []byte("sources: [\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload to be refused", func() bool { return strings.Contains(logs(), "reload refused") })
	api.set("2", "2026-11-02T10:00:00Z")
	first.waitEvents(t, 1)

	// A valid one takes over.
	writeConfig(t, dir, up.URL, dest(h2.URL))
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs(), "config reloaded") })
	api.set("3", "2026-11-03T10:00:00Z")
	second.waitEvents(t, 1)
	if err, out := stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
}
