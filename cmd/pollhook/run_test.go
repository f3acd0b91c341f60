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
	"path/filepath"
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

// metricValue reads the value of one series (name{labels} as /metrics
// writes it) from a scrape; ok is false when the scrape lacks it.
func metricValue(scrape, series string) (v float64, ok bool) {
	for _, line := range strings.Split(scrape, "\n") {
		if rest, found := strings.CutPrefix(line, series+" "); found {
			_, err := fmt.Sscan(rest, &v)
			return v, err == nil
		}
	}
	return 0, false
}

// TestRunMetricsFollowTheStoreAndReloads is not parallel: its SIGHUP goes
// to the whole test process. From /metrics of a running daemon: the age of
// the oldest pending delivery of a destination a 410 disabled keeps
// growing (the backlog is read at each scrape), and after a reload that
// takes out a resource and a destination, none of their series is left.
func TestRunMetricsFollowTheStoreAndReloads(t *testing.T) {
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	up := httptest.NewServer(api)
	defer up.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer ok.Close()
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusGone) }))
	defer gone.Close()
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "pollhook.yaml")
	resource := func(name, object string) string {
		return fmt.Sprintf("  - name: %s\n    object: %s\n    url: /items\n    items: .items\n"+
			"    dates: { updated_field: updated, updated_format: rfc3339 }\n    schedule: 1s\n    start: beginning\n", name, object)
	}
	write := func(widgets bool) {
		resources := resource("things", "thing")
		destinations := fmt.Sprintf("  - { name: keep, url: %s }\n", ok.URL)
		if widgets {
			resources += resource("widgets", "widget")
			destinations += fmt.Sprintf("  - { name: gone, url: %s }\n", gone.URL)
		}
		y := fmt.Sprintf("state: { path: %s }\nhttp: { listen: %s }\nsources:\n  - { name: api, base_url: %s, retry: { attempts: 1 } }\n"+
			"resources:\n%sdestinations:\n%s", filepath.Join(dir, "state.db"), addr, up.URL, resources, destinations)
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(true)
	stop, logs := daemonRun(t, cfg)
	scrape := func() string {
		_, body := get(t, "http://"+addr+"/metrics")
		return body
	}
	oldest := `pollhook_outbox_oldest_pending_seconds{destination="gone"}`
	var first float64
	waitFor(t, "the 410 to disable gone with its deliveries pending", func() bool {
		m := scrape()
		d, _ := metricValue(m, `pollhook_destination_disabled{destination="gone"}`)
		n, _ := metricValue(m, `pollhook_outbox_backlog{destination="gone"}`)
		first, _ = metricValue(m, oldest)
		_, polled := metricValue(m, `pollhook_polls_total{outcome="ok",resource="widgets"}`)
		return d == 1 && n == 2 && polled
	})
	// Nothing happens to gone any more, and its oldest delivery ages.
	waitFor(t, oldest+" to grow", func() bool {
		v, _ := metricValue(scrape(), oldest)
		return v >= first+1
	})

	write(false)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs(), "config reloaded") })
	waitFor(t, "the series of widgets and gone to go", func() bool {
		m := scrape()
		return !strings.Contains(m, `resource="widgets"`) && !strings.Contains(m, `destination="gone"`)
	})
	m := scrape()
	for _, s := range []string{`pollhook_polls_total{outcome="ok",resource="things"}`, `pollhook_outbox_backlog{destination="keep"}`,
		`pollhook_delivery_attempts_total{destination="keep",outcome="delivered"}`} {
		if _, ok := metricValue(m, s); !ok {
			t.Errorf("after the reload /metrics lacks %s", s)
		}
	}
	// A poll of things after the reload: widgets does not come back.
	api.set("2", "2026-11-02T10:00:00Z")
	waitFor(t, "things to poll the change", func() bool {
		v, _ := metricValue(scrape(), `pollhook_events_total{resource="things",type="thing.created"}`)
		return v == 2
	})
	if m := scrape(); strings.Contains(m, `resource="widgets"`) || strings.Contains(m, `destination="gone"`) {
		t.Errorf("a series of widgets or gone came back:\n%s", m)
	}
	if err, out := stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
}
