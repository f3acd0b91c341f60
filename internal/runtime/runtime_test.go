package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/pgtest"
	"github.com/pollhook/pollhook/poller"
)

// upstream is a JSON API of records {id, updated}, one list per path,
// which the tests change.
type upstream struct {
	mu    sync.Mutex
	lists map[string]map[int]time.Time // path → id → updated
	clock time.Time
}

func newUpstream() *upstream {
	return &upstream{lists: map[string]map[int]time.Time{}, clock: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

// set creates or updates record id of path, dated after every date so far.
func (u *upstream) set(path string, id int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.lists[path] == nil {
		u.lists[path] = map[int]time.Time{}
	}
	u.clock = u.clock.Add(time.Second)
	u.lists[path][id] = u.clock
}

func (u *upstream) remove(path string, id int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.lists[path], id)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []map[string]any
	for id, at := range u.lists[r.URL.Path] {
		out = append(out, map[string]any{"id": id, "updated": at.Format(time.RFC3339)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(int) < out[j]["id"].(int) })
	if out == nil {
		out = []map[string]any{}
	}
	json.NewEncoder(w).Encode(out)
}

// receiver records the webhook-id and body of every request.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	ids  []string
	body []string
	// status answers a request; 200 when nil.
	status func(body []byte) int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("X-Hook-Secret"); s != "" { // a REST Hooks handshake
			w.Header().Set("X-Hook-Secret", s)
			return
		}
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		status := http.StatusOK
		if rc.status != nil {
			status = rc.status(b)
		}
		if status/100 == 2 {
			rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
			rc.body = append(rc.body, string(b))
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() (ids, bodies []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.ids), slices.Clone(rc.body)
}

// types counts the event types of the pollhook envelopes received, and
// reports webhook-ids received twice.
func (rc *receiver) types(t *testing.T) (map[string]int, []string) {
	t.Helper()
	ids, bodies := rc.got()
	counts := map[string]int{}
	var dups []string
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			dups = append(dups, id)
			continue
		}
		seen[id] = true
		var env struct{ Type, ObjectID string }
		json.Unmarshal([]byte(bodies[i]), &env)
		counts[env.Type]++
	}
	return counts, dups
}

// testConfig is a config of resources r0…r(n-1) polled every second from
// up, in snapshot mode, delivered to the URL dest; extra is appended.
func testConfig(t *testing.T, dir, up, dest string, n int, extra string) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "state:\n  %s\nsources:\n  - name: up\n    base_url: %s\nresources:\n", stateKey(dir), up)
	for i := range n {
		fmt.Fprintf(&b, `  - name: r%d
    object: thing
    url: /r%d
    schedule: 1s
    dates: { updated_field: updated, updated_format: rfc3339 }
    deletes: snapshot
    delete_guard: 1
`, i, i)
	}
	if dest != "" {
		fmt.Fprintf(&b, "destinations:\n  - name: app\n    url: %s\n    events: [\"*.*\"]\n    retry: { schedule: [1s, 1s, 1s] }\n", dest)
	}
	b.WriteString(extra)
	return parseConfig(t, dir, b.String())
}

// stateKey is the key of the state block for a state in dir (see
// stateDir): path: for SQLite, dsn: for PostgreSQL.
func stateKey(dir string) string {
	if strings.HasPrefix(dir, "postgres") {
		return "dsn: " + dir // a database of the test's own
	}
	return "path: " + filepath.Join(dir, "state.db")
}

// parseConfig parses yaml as the config file of dir, with no environment.
func parseConfig(t testing.TB, dir, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "pollhook.yaml"), []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// backends are the state stores the tests that share a store run on:
// SQLite in a temporary directory, and a fresh PostgreSQL database when a
// server answers (see package pgtest).
var backends = []string{"sqlite", "postgres"}

// stateDir is where a test's state goes on backend: a directory for
// SQLite, the DSN of a fresh database for PostgreSQL (skipping the test
// when no server answers).
func stateDir(t *testing.T, backend string) string {
	if backend == "postgres" {
		return pgtest.DSN(t)
	}
	return t.TempDir()
}

// openState opens the store of cfg.
func openState(cfg *config.Config) (cursor.Store, error) {
	if cfg.State.DSN != "" {
		return cursor.OpenPostgres(context.Background(), string(cfg.State.DSN))
	}
	return cursor.Open(context.Background(), cfg.State.Path)
}

// process is one pollhook process: its own connection to the state file
// and its runtime.
type process struct {
	rt   *Runtime
	logs *bytes.Buffer
	stop func()
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// start opens the store of cfg and runs a runtime on it, with leases of
// ttl; stop ends it (cleanly, giving its leases back) and closes the store.
func start(t *testing.T, cfg *config.Config, holder string, ttl time.Duration) (*Runtime, *syncBuffer, func()) {
	t.Helper()
	store, err := openState(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	rt, err := New(store, cfg, Options{Holder: holder, LeaseTTL: ttl, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rt.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			store.Close()
		})
	}
	t.Cleanup(stop)
	return rt, logs, stop
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// completed reports whether every resource of store has completed n
// cycles.
func completed(t *testing.T, cfg *config.Config, n int64) bool {
	store, err := openState(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, r := range cfg.Resources {
		st, err := store.ResourceState(context.Background(), r.Name)
		if err != nil || st.Completed < n {
			return false
		}
	}
	return true
}

// TestTwoProcessesShareOneStore runs two runtimes on one state file, as
// two `pollhook run` would: each resource is polled by one of them, each
// change is delivered once, nothing is deleted that was not; when one
// stops, the other takes its work over.
func TestTwoProcessesShareOneStore(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			twoProcessesShareOneStore(t, backend)
		})
	}
}

func twoProcessesShareOneStore(t *testing.T, backend string) {
	up := newUpstream()
	for i := range 4 {
		for id := range 10 {
			up.set(fmt.Sprintf("/r%d", i), id)
		}
	}
	us := httptest.NewServer(up)
	defer us.Close()
	rcv := newReceiver(t)
	dir := stateDir(t, backend)
	cfg := testConfig(t, dir, us.URL, rcv.URL, 4, "")
	a, alogs, stopA := start(t, cfg, "a", 600*time.Millisecond)
	b, blogs, _ := start(t, cfg, "b", 600*time.Millisecond)
	waitFor(t, "the first cycles", 10*time.Second, func() bool { return completed(t, cfg, 1) })

	// The two processes share the work: two resources each (b, started
	// second, takes its share as a gives it back).
	waitFor(t, "the resources shared two and two", 10*time.Second, func() bool {
		held := map[string]int{}
		ls, err := a.store.Leases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if strings.HasPrefix(l.Name, cursor.ResourceLease("")) && l.Held(time.Now()) {
				held[l.Holder]++
			}
		}
		return held[a.Holder()] == 2 && held[b.Holder()] == 2
	})

	// 10 creates, 10 updates and 4 deletes a resource (the 4 deleted
	// were updated first: a poll sees them gone), then a stops and b goes
	// on alone: 5 more updates.
	for i := range 4 {
		path := fmt.Sprintf("/r%d", i)
		for id := range 10 {
			up.set(path, 100+id)
			up.set(path, id)
		}
		for id := 6; id < 10; id++ {
			up.remove(path, id)
		}
	}
	want := map[string]int{"thing.created": 40, "thing.updated": 24, "thing.deleted": 16}
	defer func() {
		if t.Failed() {
			got, dups := rcv.types(t)
			t.Logf("got %v dups %v", got, dups)
			t.Logf("a logs:\n%s", alogs.String())
			t.Logf("b logs:\n%s", blogs.String())
			ctx := context.Background()
			n, _ := a.store.LastSeq(ctx)
			dd, _ := a.store.Destinations(ctx)
			bl, _ := a.store.Backlogs(ctx)
			var evs []string
			a.store.EachEvent(ctx, cursor.EventFilter{}, func(e cursor.Event) error { evs = append(evs, fmt.Sprint(e.Seq, e.Resource)); return nil })
			ds, _ := a.store.Deliveries(ctx, cursor.DeliveryFilter{Limit: 1000})
			t.Logf("last seq %d, destinations %+v, backlogs %+v, %d deliveries, events %v", n, dd, bl, len(ds), evs)
		}
	}()
	waitFor(t, "the changes delivered", 20*time.Second, func() bool {
		got, _ := rcv.types(t)
		return got["thing.created"] >= 40 && got["thing.updated"] >= 24 && got["thing.deleted"] >= 16
	})
	stopA()
	if !strings.Contains(alogs.String(), "pollhook running") {
		t.Errorf("a's log:\n%s", alogs.String())
	}
	for i := range 4 {
		for id := range 5 {
			up.set(fmt.Sprintf("/r%d", i), id)
		}
	}
	want["thing.updated"] += 20
	waitFor(t, "b to take a's work over", 20*time.Second, func() bool {
		got, _ := rcv.types(t)
		return got["thing.updated"] >= want["thing.updated"]
	})
	time.Sleep(2 * time.Second) // anything extra would arrive now
	got, dups := rcv.types(t)
	// A webhook-id may come twice only where a's lease ran out under a
	// delivery (a stalled past its lease on a loaded machine): the
	// receiver answered, a could not record it under a lost lease, and
	// b sent it again with the same id, as at-least-once must.
	lapsed := strings.Contains(alogs.String(), "lease lost")
	if len(dups) > 0 && !lapsed {
		t.Errorf("webhook-ids delivered twice: %v", dups)
	} else if len(dups) > 0 {
		t.Logf("a's lease ran out under a delivery; sent again with the same webhook-id: %v", dups)
	}
	if !sameCounts(got, want) {
		t.Errorf("events delivered %v, want %v", got, want)
	}
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOnceBesideRun: a `pollhook once` on the state of a running daemon
// polls nothing the daemon holds, and says who holds it.
func TestOnceBesideRun(t *testing.T) {
	t.Parallel()
	up := newUpstream()
	up.set("/r0", 1)
	us := httptest.NewServer(up)
	defer us.Close()
	rcv := newReceiver(t)
	cfg := testConfig(t, t.TempDir(), us.URL, rcv.URL, 2, "")
	run, _, _ := start(t, cfg, "daemon", time.Minute)
	waitFor(t, "the first cycles", 10*time.Second, func() bool { return completed(t, cfg, 1) })

	store, err := openState(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	once, err := New(store, cfg, Options{Holder: "once"})
	if err != nil {
		t.Fatal(err)
	}
	polled := 0
	res, err := once.Once(context.Background(), OnceOptions{Deliver: true, OnCycle: func(_ poller.CycleResult, _ []cursor.Event, _ error) { polled++ }})
	if err != nil {
		t.Fatal(err)
	}
	if polled != 0 || len(res.Elsewhere) != 2 || res.Elsewhere["r0"] != run.Holder() {
		t.Errorf("once beside run: %d polled, elsewhere %v; want none polled, both held by %s", polled, res.Elsewhere, run.Holder())
	}
	if res.Delivery.Elsewhere != 1 || res.Delivery.Requests != 0 {
		t.Errorf("once's delivery: %+v, want the destination left to the daemon", res.Delivery)
	}
}

// hookAPI calls the REST Hooks API at base with the token.
func hookAPI(t *testing.T, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// keapKeys are the (id, timestamp) keys of the Keap bodies received.
func keapKeys(t *testing.T, rc *receiver) []string {
	t.Helper()
	_, bodies := rc.got()
	var out []string
	for _, b := range bodies {
		var body struct {
			ObjectKeys []struct {
				ID        any    `json:"id"`
				Timestamp string `json:"timestamp"`
			} `json:"object_keys"`
		}
		if err := json.Unmarshal([]byte(b), &body); err != nil {
			t.Errorf("keap body %s: %v", b, err)
		}
		for _, k := range body.ObjectKeys {
			out = append(out, fmt.Sprint(k.ID, "@", k.Timestamp))
		}
	}
	return out
}

// TestGoneHookLeavesOtherHooksAlone subscribes four Keap hooks to the same
// events; one answers 410 to its first delivery and becomes Inactive,
// while the others go on receiving: no hook gets an event twice, in any of
// several rounds.
func TestGoneHookLeavesOtherHooksAlone(t *testing.T) {
	t.Parallel()
	for round := range 5 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) {
			t.Parallel()
			goneHookRound(t, round)
		})
	}
}

func goneHookRound(t *testing.T, round int) {
	up := newUpstream()
	for id := range 30 {
		up.set("/r0", id)
	}
	us := httptest.NewServer(up)
	rcvs := make([]*receiver, 4)
	for i := range rcvs {
		rcvs[i] = newReceiver(t)
	}
	rcvs[0].status = func([]byte) int { return http.StatusGone }
	cfg := testConfig(t, t.TempDir(), us.URL, "", 1, `http:
  listen: 127.0.0.1:0
  token: s3cret
  allow_targets: [127.0.0.0/8]
`)
	rt, _, stop := start(t, cfg, "daemon", time.Minute)
	waitFor(t, "the listener", 5*time.Second, func() bool { return rt.Addr() != "" })
	waitFor(t, "the first cycle", 10*time.Second, func() bool { return completed(t, cfg, 1) })
	base := "http://" + rt.Addr()
	for _, rc := range rcvs {
		code, h := hookAPI(t, "POST", base+"/hooks", map[string]string{"eventKey": "thing.updated", "hookUrl": rc.URL})
		if code != http.StatusCreated || h["status"] != "Verified" {
			t.Fatalf("POST /hooks: %d %v", code, h)
		}
	}
	// 30 updates in bursts, while one hook goes.
	for burst := range 6 {
		for id := range 5 {
			up.set("/r0", 5*burst+id)
		}
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, "the three hooks to get every update", 20*time.Second, func() bool {
		for _, rc := range rcvs[1:] {
			if len(keapKeys(t, rc)) < 30 {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond)
	for i, rc := range rcvs {
		seen := map[string]bool{}
		for _, k := range keapKeys(t, rc) {
			if seen[k] {
				t.Errorf("round %d: hook %d got %s twice", round, i, k)
			}
			seen[k] = true
		}
	}
	stop()
	us.Close()
}

// TestReloadChangesDestinationsOnly reloads a running daemon with a
// destination added and its first one moved: the new destination gets the
// events detected after the reload, the others stay undisturbed.
func TestReloadChangesDestinations(t *testing.T) {
	t.Parallel()
	up := newUpstream()
	up.set("/r0", 1)
	us := httptest.NewServer(up)
	defer us.Close()
	one, two := newReceiver(t), newReceiver(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, us.URL, one.URL, 1, "")
	rt, _, _ := start(t, cfg, "daemon", time.Minute)
	waitFor(t, "the first cycle", 10*time.Second, func() bool { return completed(t, cfg, 1) })
	up.set("/r0", 2)
	waitFor(t, "the first event", 10*time.Second, func() bool { ids, _ := one.got(); return len(ids) == 1 })

	next := testConfig(t, dir, us.URL, one.URL, 1, "  - name: two\n    url: "+two.URL+"\n")
	if err := rt.Reload(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	up.set("/r0", 3)
	waitFor(t, "the second event at both", 10*time.Second, func() bool {
		a, _ := one.got()
		b, _ := two.got()
		return len(a) == 2 && len(b) == 1
	})
}

// TestSourceRateLimitIsShared: two resources of one source, polled at
// once, keep to the source's rate limit together, not each to its own.
func TestSourceRateLimitIsShared(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var at []time.Time
	us := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		w.Write([]byte(`[{"id":1,"updated":"2026-11-01T10:00:00Z"}]`))
	}))
	defer us.Close()
	dir := t.TempDir()
	cfg := testConfig(t, dir, us.URL, "", 3, "")
	cfg.Sources[0].RateLimit = &config.RateLimit{PerSecond: 4, Burst: 1}
	_, _, stop := start(t, cfg, "daemon", time.Minute)
	waitFor(t, "three cycles", 10*time.Second, func() bool { return completed(t, cfg, 1) })
	stop()
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := 1; i < len(at); i++ {
		// 4 a second: 250 ms apart, with a little slack for the clock.
		if gap := at[i].Sub(at[i-1]); gap < 200*time.Millisecond {
			t.Fatalf("requests %d and %d of the source %s apart, under its rate limit of 4/s", i, i+1, gap)
		}
	}
}

// TestSubscriptionThroughAnyReplica subscribes through one of two
// replicas, stops it, and checks that the other delivers the events that
// follow to the subscriber.
func TestSubscriptionThroughAnyReplica(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			up := newUpstream()
			for id := range 5 {
				up.set("/r0", id)
			}
			us := httptest.NewServer(up)
			defer us.Close()
			hook := newReceiver(t)
			cfg := testConfig(t, stateDir(t, backend), us.URL, "", 1, `http:
  listen: 127.0.0.1:0
  token: s3cret
  allow_targets: [127.0.0.0/8]
`)
			a, _, stopA := start(t, cfg, "a", 3*time.Second)
			b, blogs, _ := start(t, cfg, "b", 3*time.Second)
			defer func() {
				if t.Failed() {
					t.Logf("b:\n%s", blogs.String())
					ds, err := b.store.Deliveries(context.Background(), cursor.DeliveryFilter{})
					t.Logf("deliveries %+v %v", ds, err)
					dd, err := b.store.Destinations(context.Background())
					t.Logf("destinations %+v %v", dd, err)
					n, _ := b.store.LastSeq(context.Background())
					t.Logf("last seq %d", n)
				}
			}()
			waitFor(t, "the listeners", 5*time.Second, func() bool { return a.Addr() != "" && b.Addr() != "" })
			waitFor(t, "the first cycle", 10*time.Second, func() bool { return completed(t, cfg, 1) })
			code, h := hookAPI(t, "POST", "http://"+a.Addr()+"/hooks", map[string]string{"eventKey": "thing.updated", "hookUrl": hook.URL})
			if code != http.StatusCreated {
				t.Fatalf("POST /hooks through a: %d %v", code, h)
			}
			stopA()
			for id := range 5 {
				up.set("/r0", id)
			}
			waitFor(t, "b to deliver the updates to the subscriber made through a", 20*time.Second, func() bool {
				return len(keapKeys(t, hook)) >= 5
			})
			if keys := keapKeys(t, hook); len(keys) != 5 {
				t.Errorf("the subscriber got %v, want the 5 updates once each", keys)
			}
			_ = b
		})
	}
}

// TestReadyFollowsTheStore: /readyz says what the store's Health says, as
// of the last probe: 503 with the reason while the state file is moved
// away under the running process (what it writes then is lost), 200 again
// once it is back.
func TestReadyFollowsTheStore(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	cfg := testConfig(t, dir, srv.URL, "", 1, "")
	rt, _, _ := start(t, cfg, "a", DefaultLeaseTTL)
	waitFor(t, "ready", 10*time.Second, func() bool { return rt.Ready() == nil })

	away := cfg.State.Path + ".moved"
	if err := os.Rename(cfg.State.Path, away); err != nil {
		t.Fatal(err)
	}
	var err error
	waitFor(t, "not ready with the state file gone", 3*ReadinessInterval, func() bool {
		err = rt.Ready()
		return err != nil
	})
	if !strings.Contains(err.Error(), "state file "+cfg.State.Path+" is gone") {
		t.Errorf("Ready = %v, want it to say the state file is gone", err)
	}
	rec := httptest.NewRecorder()
	rt.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "is gone") {
		t.Errorf("/readyz = %d %q, want 503 with the reason", rec.Code, rec.Body)
	}
	if err := os.Rename(away, cfg.State.Path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready again with the file back", 3*ReadinessInterval, func() bool { return rt.Ready() == nil })
}

// TestRollingConfigChange: two processes share a state; one restarts with
// a config that drops a destination (it deletes it from the state) while
// the other's config still names it. The other goes on delivering to it
// what is detected from then on, and never sends again what it received
// before — seen from outside as the whole history sent again, batched
// under new webhook-ids.
func TestRollingConfigChange(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			up := newUpstream()
			for id := range 10 {
				up.set("/r0", id)
			}
			us := httptest.NewServer(up)
			defer us.Close()
			keep, one := newReceiver(t), newReceiver(t)
			dir := stateDir(t, backend)
			oneDest := "  - name: one\n    url: " + one.URL + "\n    batch: { max_events: 5, max_wait: 200ms }\n"
			old := testConfig(t, dir, us.URL, keep.URL, 1, oneDest)
			_, blogs, _ := start(t, old, "b", 2*time.Second)
			waitFor(t, "the first cycle", 10*time.Second, func() bool { return completed(t, old, 1) })
			for id := range 10 {
				up.set("/r0", id)
			}
			batched := func() map[string]int {
				_, bodies := one.got()
				seen := map[string]int{}
				for _, b := range bodies {
					var envs []struct{ ID string }
					json.Unmarshal([]byte(b), &envs)
					for _, e := range envs {
						seen[e.ID]++
					}
				}
				return seen
			}
			waitFor(t, "both destinations to get the first 10 updates", 20*time.Second, func() bool {
				k, _ := keep.types(t)
				return k["thing.updated"] >= 10 && len(batched()) >= 10
			})

			// a second process starts with one dropped (as a first one
			// restarts with the new config), deleting it from the state;
			// b still names it, and delivers to it.
			start(t, testConfig(t, dir, us.URL, keep.URL, 1, ""), "a2", 2*time.Second)
			time.Sleep(2 * time.Second)
			for id := range 10 {
				up.set("/r0", id)
			}
			waitFor(t, "keep to get the next 10 updates", 20*time.Second, func() bool {
				k, _ := keep.types(t)
				return k["thing.updated"] >= 20
			})
			time.Sleep(3 * time.Second) // a replay of one's history would arrive now
			ids, _ := one.got()
			for id, n := range batched() {
				if n > 1 {
					t.Errorf("one got event %s %d times (requests %v)", id, n, ids)
					break
				}
			}
			if t.Failed() {
				t.Logf("b:\n%s", blogs.String())
			}
		})
	}
}

// TestReloadRemovesADestinationInFlight: a destination removed by a
// reload while a request to it is in flight has that request answered and
// recorded before its lease goes and it is deleted: nothing is logged as
// a lost lease or a store error.
func TestReloadRemovesADestinationInFlight(t *testing.T) {
	t.Parallel()
	up := newUpstream()
	up.set("/r0", 1)
	us := httptest.NewServer(up)
	defer us.Close()
	arrived, release := make(chan struct{}, 10), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	defer slow.Close()
	keep := newReceiver(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, us.URL, keep.URL, 1, "  - name: rm\n    url: "+slow.URL+"\n    max_in_flight: 1\n")
	rt, logs, _ := start(t, cfg, "a", time.Minute)
	waitFor(t, "the first cycle", 10*time.Second, func() bool { return completed(t, cfg, 1) })
	up.set("/r0", 1)
	<-arrived
	reloaded := make(chan error, 1)
	go func() { reloaded <- rt.Reload(context.Background(), testConfig(t, dir, us.URL, keep.URL, 1, "")) }()
	time.Sleep(200 * time.Millisecond)
	close(release)
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"lease lost", "level=ERROR"} {
		if strings.Contains(logs.String(), bad) {
			t.Errorf("the reload logged %q:\n%s", bad, logs.String())
		}
	}
	if _, err := rt.store.Destination(context.Background(), "rm"); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("rm after the reload: %v, want it deleted", err)
	}
}
