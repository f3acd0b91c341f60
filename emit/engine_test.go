package emit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/cputime"
	"github.com/pollhook/pollhook/internal/natstest"
)

var start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// hit is one request a sink got.
type hit struct {
	webhookID string
	events    []string // event ids (object ids for format keap)
	eventKey  string   // format keap
	status    int      // the answer
}

// sink is a receiver that records requests and answers with respond (200
// when nil).
type sink struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	respond func(h hit, n int) (int, http.Header) // n counts earlier requests
	ok      chan string                           // gets each event id answered 2xx, if not nil
}

func newSink(t *testing.T, respond func(h hit, n int) (int, http.Header)) *sink {
	t.Helper()
	s := &sink{respond: respond}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := parseHit(t, body)
		h.webhookID = r.Header.Get(HeaderWebhookID)
		s.mu.Lock()
		status, header := http.StatusOK, http.Header(nil)
		if s.respond != nil {
			status, header = s.respond(h, len(s.hits))
		}
		h.status = status
		s.hits = append(s.hits, h)
		ok := s.ok
		s.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		if ok != nil && status/100 == 2 {
			for _, id := range h.events {
				ok <- id
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) setRespond(f func(h hit, n int) (int, http.Header)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

func (s *sink) got() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// delivered lists the event ids answered 2xx, in order.
func (s *sink) delivered() []string {
	var out []string
	for _, h := range s.got() {
		if h.status/100 == 2 {
			out = append(out, h.events...)
		}
	}
	return out
}

func answer(status int) func(hit, int) (int, http.Header) {
	return func(hit, int) (int, http.Header) { return status, nil }
}

// parseHit reads the event ids of a pollhook body (an object or an array)
// or a keap body.
func parseHit(t *testing.T, body []byte) hit {
	var h hit
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var envs []Envelope
		if err := json.Unmarshal(body, &envs); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		for _, e := range envs {
			h.events = append(h.events, e.ID)
		}
		return h
	}
	var v struct {
		ID         string `json:"id"`
		EventKey   string `json:"event_key"`
		ObjectKeys []struct {
			ID any `json:"id"`
		} `json:"object_keys"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("body %s: %v", body, err)
	}
	if v.EventKey != "" {
		h.eventKey = v.EventKey
		for _, k := range v.ObjectKeys {
			h.events = append(h.events, fmt.Sprint(k.ID))
		}
		return h
	}
	h.events = []string{v.ID}
	return h
}

// harness is a store in a temporary directory and a fake clock.
type harness struct {
	t     *testing.T
	path  string
	store *cursor.SQLite
	clock *fakeClock
	n     int // events added
}

// TestStopLetsRequestsFinish: a request under way when Run's context
// ends is answered and recorded, so that the process delivering next
// does not send it again.
func TestStopLetsRequestsFinish(t *testing.T) {
	h := newHarness(t)
	arrived := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	d, err := NewDestination(destConfig("slow", slow.URL), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e := NewEngine(h.store, []*Destination{d}, EngineOptions{Leases: storeLeases{h.store}})
	h.clock.Set(time.Now())
	ev := h.addN(1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	e.Notify()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no request after 10s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if dl := h.delivery("slow", ev.ID); dl.Status != cursor.StatusDelivered || dl.Attempts != 1 {
		t.Errorf("delivery under way at the stop = %+v, want delivered at its first attempt", dl)
	}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "state.db"), clock: &fakeClock{t: start}}
	h.open()
	t.Cleanup(func() { h.store.Close() })
	return h
}

func (h *harness) open() {
	h.t.Helper()
	s, err := cursor.Open(context.Background(), h.path)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = s
}

// add commits events of the given types (contact.created when none),
// detected now; their ids are evt_0001, evt_0002… and object ids 1001,
// 1002….
func (h *harness) add(types ...string) []cursor.Event {
	h.t.Helper()
	evs := make([]cursor.Event, len(types))
	for i, typ := range types {
		h.n++
		evs[i] = cursor.Event{
			ID: fmt.Sprintf("evt_%04d", h.n), Type: typ, Resource: "contacts", Source: "keap",
			Object: "contact", ObjectID: strconv.Itoa(1000 + h.n), OccurredAt: h.clock.Now(),
			DetectedAt: h.clock.Now(), Data: json.RawMessage(`{"n":` + strconv.Itoa(h.n) + `}`),
		}
	}
	commitEvents(h.t, h.store, evs)
	return evs
}

// testHolder holds the leases of the tests.
const testHolder = "test"

// commitEvents commits evs to the outbox, as a poll of contacts does.
func commitEvents(t testing.TB, s cursor.Store, evs []cursor.Event) {
	t.Helper()
	ctx := context.Background()
	l := storeLeases{s}
	lease, ok := l.Lease(cursor.ResourceLease("contacts"))
	if !ok {
		t.Fatal("the test does not hold the lease of contacts")
	}
	if err := s.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: 1, Lease: lease, Events: evs}); err != nil {
		t.Fatal(err)
	}
}

// storeLeases holds every lease for testHolder, taking it from the store
// when asked (for a year, so that the tests' clocks never see it expire).
type storeLeases struct{ s cursor.Store }

func (l storeLeases) Lease(name string) (cursor.Lease, bool) {
	ls, err := l.s.AcquireLeases(context.Background(), testHolder, []string{name}, 365*24*time.Hour, time.Now())
	if err != nil || len(ls) != 1 || ls[0].Holder != testHolder {
		return cursor.Lease{}, false
	}
	return ls[0], true
}

func (h *harness) addN(n int) []cursor.Event {
	return h.add(slices.Repeat([]string{"contact.created"}, n)...)
}

// destConfig is a destination to url: pollhook format, one event a
// request, retried after 1m, 5m and 30m, unordered, 4 in flight.
func destConfig(name, url string, edit ...func(*config.Destination)) config.Destination {
	d := config.Destination{
		Name: name, URL: url, Format: config.FormatPollhook, Timeout: config.Duration(5 * time.Second),
		Batch:       config.Batch{MaxEvents: 1},
		Retry:       config.Retry{Schedule: []config.Duration{config.Duration(time.Minute), config.Duration(5 * time.Minute), config.Duration(30 * time.Minute)}},
		Ordering:    config.OrderingUnordered,
		MaxInFlight: 4,
	}
	for _, f := range edit {
		f(&d)
	}
	return d
}

func schedule(ds ...time.Duration) []config.Duration {
	out := make([]config.Duration, len(ds))
	for i, d := range ds {
		out[i] = config.Duration(d)
	}
	return out
}

// engine returns an engine on the harness's store and clock, with a
// jitter of 0 unless opts sets Rand.
func (h *harness) engine(opts EngineOptions, cfgs ...config.Destination) *Engine {
	h.t.Helper()
	var dests []*Destination
	for _, c := range cfgs {
		d, err := NewDestination(c, Options{Now: h.clock.Now})
		if err != nil {
			h.t.Fatal(err)
		}
		h.t.Cleanup(func() { d.Close() })
		dests = append(dests, d)
	}
	if opts.Now == nil {
		opts.Now = h.clock.Now
	}
	if opts.Rand == nil {
		opts.Rand = func() float64 { return 0.5 }
	}
	if opts.Leases == nil {
		opts.Leases = storeLeases{h.store}
	}
	return NewEngine(h.store, dests, opts)
}

// metrics returns the engine's metrics and the backlog collector,
// registered with a new registry.
func (h *harness) metrics() (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewBacklogCollector(h.store, h.clock.Now))
	return NewMetrics(reg), reg
}

func (h *harness) step(e *Engine) StepResult {
	h.t.Helper()
	res, err := e.Step(context.Background())
	if err != nil {
		h.t.Fatalf("Step: %v", err)
	}
	return res
}

func (h *harness) delivery(dest, id string) cursor.Delivery {
	h.t.Helper()
	ds, err := h.store.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: dest, EventID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(ds) != 1 {
		h.t.Fatalf("%d deliveries of %s to %s, want 1", len(ds), id, dest)
	}
	return ds[0]
}

func ids(evs []cursor.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// metric returns the value of the gauge or counter name with labels, and
// whether it exists.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

func TestRetryScheduleFollowed(t *testing.T) {
	steps := []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute}
	for _, r := range []float64{0, 0.5, 0.999999} {
		t.Run(fmt.Sprintf("rand %v", r), func(t *testing.T) {
			h := newHarness(t)
			rcv := newSink(t, answer(http.StatusInternalServerError))
			e := h.engine(EngineOptions{Rand: func() float64 { return r }}, destConfig("a", rcv.URL))
			ev := h.addN(1)[0]

			for i, step := range steps {
				now := h.clock.Now()
				res := h.step(e)
				if res.Requests != 1 || res.Failed != 1 || len(rcv.got()) != i+1 {
					t.Fatalf("attempt %d: step = %+v, %d requests in all; want one more failed request", i+1, res, len(rcv.got()))
				}
				d := h.delivery("a", ev.ID)
				wait := d.NextAt.Sub(now)
				want := time.Duration(float64(step) * (0.9 + 0.2*r))
				if d.Status != cursor.StatusPending || d.Attempts != i+1 || wait != want {
					t.Fatalf("after attempt %d: %+v, wait %v; want pending, %d attempts, wait %v", i+1, d, wait, i+1, want)
				}
				if lo, hi := step*9/10, step*11/10; wait < lo || wait > hi {
					t.Fatalf("wait %v outside ±10%% of %v", wait, step)
				}
				if !res.Next.Equal(d.NextAt) {
					t.Errorf("step next = %v, want %v", res.Next, d.NextAt)
				}
				// Not a moment early.
				h.clock.Set(d.NextAt.Add(-time.Nanosecond))
				if res := h.step(e); res.Requests != 0 {
					t.Fatalf("a delivery due at %v was retried at %v", d.NextAt, h.clock.Now())
				}
				h.clock.Set(d.NextAt)
			}
			res := h.step(e)
			if res.Requests != 1 || res.Dead != 1 || res.Failed != 0 || !res.Next.IsZero() {
				t.Fatalf("last attempt: step = %+v, want one request, one dead, nothing next", res)
			}
			if d := h.delivery("a", ev.ID); d.Status != cursor.StatusDead || d.Attempts != len(steps)+1 || d.LastStatus != 500 {
				t.Fatalf("after the last attempt: %+v, want dead after %d attempts with status 500", d, len(steps)+1)
			}
			h.clock.Advance(24 * time.Hour)
			if res := h.step(e); res.Requests != 0 {
				t.Fatalf("a dead delivery was retried")
			}
			log, err := h.store.Attempts(context.Background(), cursor.AttemptFilter{Destination: "a", EventID: ev.ID})
			if err != nil {
				t.Fatal(err)
			}
			if len(log) != len(steps)+1 {
				t.Fatalf("attempt log has %d rows, want %d", len(log), len(steps)+1)
			}
			for _, a := range log {
				if a.Status != 500 || !strings.Contains(a.Error, "500") || a.BodyID != ev.ID {
					t.Errorf("attempt %+v, want status 500 logged with its error and webhook-id", a)
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration
	}{
		{"longer than the step", 503, "120", 120 * time.Second},
		{"capped at the largest step", 429, "3600", 5 * time.Minute},
		{"shorter than the step", 503, "5", 10 * time.Second},
		{"an HTTP date", 503, start.Add(3 * time.Minute).Format(http.TimeFormat), 3 * time.Minute},
		{"not on a 500", 500, "120", 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			rcv := newSink(t, func(hit, int) (int, http.Header) {
				return tt.status, http.Header{"Retry-After": {tt.retryAfter}}
			})
			e := h.engine(EngineOptions{}, destConfig("a", rcv.URL, func(d *config.Destination) {
				d.Retry.Schedule = schedule(10*time.Second, 5*time.Minute)
			}))
			ev := h.addN(1)[0]
			h.step(e)
			if got := h.delivery("a", ev.ID).NextAt.Sub(start); got != tt.want {
				t.Errorf("retried after %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGoneDisablesUntilEnabled(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	rcv := newSink(t, answer(http.StatusGone))
	var logs bytes.Buffer
	m, reg := h.metrics()
	e := h.engine(EngineOptions{Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		destConfig("a", rcv.URL, func(d *config.Destination) { d.MaxInFlight = 1 }))
	evs := h.addN(2)

	res := h.step(e)
	if res.Disabled != 1 || !res.Next.IsZero() {
		t.Fatalf("step = %+v, want the destination disabled and nothing due", res)
	}
	st, err := h.store.Destination(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Disabled() || !strings.Contains(st.DisabledReason, "410") {
		t.Fatalf("destination = %+v, want disabled for the 410", st)
	}
	if n := len(rcv.got()); n != 1 {
		t.Errorf("%d requests, want 1: nothing after the 410", n)
	}
	for i, ev := range evs {
		d := h.delivery("a", ev.ID)
		if d.Status != cursor.StatusPending || d.Attempts != 0 || (i == 0) != (d.LastStatus == 410) {
			t.Errorf("delivery after a 410 = %+v, want pending with no attempt counted", d)
		}
	}
	if v, _ := metric(t, reg, "pollhook_destination_disabled", map[string]string{"destination": "a"}); v != 1 {
		t.Errorf("pollhook_destination_disabled = %v, want 1", v)
	}
	if v, _ := metric(t, reg, "pollhook_delivery_attempts_total", map[string]string{"destination": "a", "outcome": "gone"}); v < 1 {
		t.Errorf("gone attempts = %v, want at least 1", v)
	}

	// Nothing more is sent, not even new events, and however late.
	sent := len(rcv.got())
	rcv.setRespond(nil)
	more := h.addN(1)
	h.clock.Advance(time.Hour)
	if res := h.step(e); res.Requests != 0 || res.Queued != 1 {
		t.Fatalf("step while disabled = %+v, want the new event queued and nothing sent", res)
	}
	if len(rcv.got()) != sent {
		t.Fatalf("a disabled destination got %d more requests", len(rcv.got())-sent)
	}
	if n := strings.Count(logs.String(), "disabled"); n != 1 {
		t.Errorf("the disabling was logged %d times, want once:\n%s", n, logs.String())
	}

	if err := h.store.EnableDestination(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	res = h.step(e)
	want := append(ids(evs), more[0].ID)
	got := rcv.delivered()
	slices.Sort(got)
	if res.Delivered != 3 || !slices.Equal(got, want) {
		t.Fatalf("after enable: step = %+v, delivered %v; want %v", res, got, want)
	}
	if v, _ := metric(t, reg, "pollhook_destination_disabled", map[string]string{"destination": "a"}); v != 0 {
		t.Errorf("pollhook_destination_disabled after enable = %v, want 0", v)
	}
	if !strings.Contains(logs.String(), "destination enabled") {
		t.Errorf("no log line for the enable:\n%s", logs.String())
	}
}

func TestDeadEventReplayed(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	rcv := newSink(t, answer(http.StatusInternalServerError))
	e := h.engine(EngineOptions{}, destConfig("a", rcv.URL, func(d *config.Destination) {
		d.Retry.Schedule = schedule(time.Minute)
	}))
	ev := h.addN(1)[0]
	h.step(e)
	h.clock.Advance(time.Minute)
	if res := h.step(e); res.Dead != 1 {
		t.Fatalf("step = %+v, want the event dead", res)
	}

	rcv.setRespond(nil)
	h.clock.Advance(time.Hour)
	n, err := h.store.Replay(ctx, cursor.ReplayFilter{Destination: "a", Dead: true, Now: h.clock.Now()})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v; want 1", n, err)
	}
	if res := h.step(e); res.Delivered != 1 {
		t.Fatalf("step after replay = %+v, want it delivered", res)
	}
	hits := rcv.got()
	if len(hits) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(hits))
	}
	for _, hit := range hits {
		if hit.webhookID != ev.ID || !slices.Equal(hit.events, []string{ev.ID}) {
			t.Errorf("request %+v, want webhook-id and event id %s every time", hit, ev.ID)
		}
	}
	if d := h.delivery("a", ev.ID); d.Status != cursor.StatusDelivered || d.Attempts != 1 {
		t.Errorf("delivery = %+v, want delivered at the first attempt after the replay", d)
	}
}

func TestBatching(t *testing.T) {
	h := newHarness(t)
	rcv := newSink(t, nil)
	e := h.engine(EngineOptions{}, destConfig("a", rcv.URL, func(d *config.Destination) {
		d.Batch = config.Batch{MaxEvents: 3, MaxWait: config.Duration(time.Minute)}
		d.MaxInFlight = 1
	}))
	evs := h.addN(7)

	res := h.step(e)
	if res.Requests != 2 || res.Delivered != 6 || !res.Next.Equal(start.Add(time.Minute)) {
		t.Fatalf("step = %+v, want 2 full batches sent and the partial one due at %v", res, start.Add(time.Minute))
	}
	h.clock.Advance(time.Minute - time.Nanosecond)
	if res := h.step(e); res.Requests != 0 {
		t.Fatalf("a partial batch went before max_wait: %+v", res)
	}
	h.clock.Advance(time.Nanosecond)
	if res := h.step(e); res.Requests != 1 || res.Delivered != 1 {
		t.Fatalf("step at max_wait = %+v, want the partial batch sent", res)
	}
	want := [][]string{ids(evs[0:3]), ids(evs[3:6]), ids(evs[6:7])}
	hits := rcv.got()
	if len(hits) != len(want) {
		t.Fatalf("receiver got %d requests, want %d", len(hits), len(want))
	}
	for i, hit := range hits {
		if !slices.Equal(hit.events, want[i]) || hit.webhookID != BodyID(evs[i*3:i*3+len(want[i])]) {
			t.Errorf("request %d = %+v, want events %v under their body id", i, hit, want[i])
		}
	}
	if !strings.HasPrefix(hits[0].webhookID, BatchIDPrefix) {
		t.Errorf("a batch went with webhook-id %q, want a batch id", hits[0].webhookID)
	}

	// A failed batch is retried as soon as it is due, without waiting to
	// fill.
	rcv.setRespond(func(_ hit, n int) (int, http.Header) {
		if n == 3 {
			return 500, nil
		}
		return 200, nil
	})
	one := h.add("contact.created", "contact.created")
	if res := h.step(e); res.Queued != 2 || res.Requests != 0 {
		t.Fatalf("step = %+v, want two events queued and held", res)
	}
	h.clock.Advance(time.Minute)
	if res := h.step(e); res.Failed != 2 {
		t.Fatalf("step = %+v, want the batch of two failed", res)
	}
	h.clock.Advance(time.Minute)
	if res := h.step(e); res.Delivered != 2 {
		t.Fatalf("retry step = %+v, want the failed batch sent at once", res)
	}
	if hits := rcv.got(); hits[3].webhookID != hits[4].webhookID || !slices.Equal(hits[4].events, ids(one)) {
		t.Errorf("retry = %+v after %+v, want the same batch with the same webhook-id", hits[4], hits[3])
	}
}

func TestKeapBatchesOneType(t *testing.T) {
	types := []string{"contact.created", "contact.created", "contact.updated", "contact.created", "contact.deleted", "contact.created"}
	tests := []struct {
		ordering string
		// want are the requests as event_key: object ids; in order when
		// ordered.
		want []string
	}{
		{config.OrderingOrdered, []string{
			"contact.created: 1001 1002", "contact.updated: 1003", "contact.created: 1004",
			"contact.deleted: 1005", "contact.created: 1006"}},
		{config.OrderingUnordered, []string{
			"contact.created: 1001 1002 1004", "contact.created: 1006", "contact.deleted: 1005", "contact.updated: 1003"}},
	}
	for _, tt := range tests {
		t.Run(tt.ordering, func(t *testing.T) {
			h := newHarness(t)
			rcv := newSink(t, nil)
			e := h.engine(EngineOptions{}, destConfig("a", rcv.URL, func(d *config.Destination) {
				d.Format = config.FormatKeap
				d.Batch.MaxEvents = 3
				d.Ordering = tt.ordering
			}))
			h.add(types...)
			if res := h.step(e); res.Delivered != len(types) {
				t.Fatalf("step = %+v, want all %d delivered", res, len(types))
			}
			var got []string
			for _, hit := range rcv.got() {
				got = append(got, hit.eventKey+": "+strings.Join(hit.events, " "))
			}
			if tt.ordering == config.OrderingUnordered {
				slices.Sort(got)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestOrderedKeepsOrderAcrossFailure(t *testing.T) {
	h := newHarness(t)
	evs := h.addN(4)
	failures := 0
	rcv := newSink(t, func(hit hit, _ int) (int, http.Header) {
		if hit.events[0] == evs[1].ID && failures < 2 {
			failures++
			return 500, nil
		}
		return 200, nil
	})
	var logs bytes.Buffer
	e := h.engine(EngineOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, destConfig("a", rcv.URL, func(d *config.Destination) {
		d.Ordering = config.OrderingOrdered
		d.MaxInFlight = 4
	}))
	res := h.step(e)
	if res.Delivered != 1 || res.Failed != 1 || res.Requests != 2 {
		t.Fatalf("first step = %+v, want event 1 delivered, event 2 failed, nothing after it sent", res)
	}
	// A new event does not jump the queue either.
	late := h.addN(1)
	for range 2 {
		h.clock.Set(res.Next)
		res = h.step(e)
	}
	if res.Delivered != 4 {
		t.Fatalf("last step = %+v, want events 2 to 5 delivered", res)
	}
	var seq []string
	for _, hit := range rcv.got() {
		seq = append(seq, hit.events...)
	}
	want := []string{evs[0].ID, evs[1].ID, evs[1].ID, evs[1].ID, evs[2].ID, evs[3].ID, late[0].ID}
	if !slices.Equal(seq, want) {
		t.Errorf("receiver saw %v, want %v", seq, want)
	}
	// Two failures in a row are one streak: one warning, one recovery.
	if n, r := strings.Count(logs.String(), "level=WARN"), strings.Count(logs.String(), "delivery recovered"); n != 1 || r != 1 {
		t.Errorf("logged %d warnings and %d recoveries, want 1 and 1:\n%s", n, r, logs.String())
	}
}

func TestOrderedBatchesTheHead(t *testing.T) {
	h := newHarness(t)
	rcv := newSink(t, func(_ hit, n int) (int, http.Header) {
		if n == 0 {
			return 500, nil
		}
		return 200, nil
	})
	e := h.engine(EngineOptions{}, destConfig("a", rcv.URL, func(d *config.Destination) {
		d.Ordering = config.OrderingOrdered
		d.Batch.MaxEvents = 2
	}))
	evs := h.addN(3)
	h.step(e) // [1 2] fails
	h.addN(1)
	h.clock.Advance(time.Minute)
	h.step(e) // [1 2] [3 4]
	want := [][]string{ids(evs[:2]), ids(evs[:2]), {evs[2].ID, "evt_0004"}}
	hits := rcv.got()
	if len(hits) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(hits), len(want), hits)
	}
	for i := range want {
		if !slices.Equal(hits[i].events, want[i]) {
			t.Errorf("request %d carried %v, want %v", i, hits[i].events, want[i])
		}
	}
}

func TestUnorderedDestinationsIndependent(t *testing.T) {
	h := newHarness(t)
	down := newSink(t, answer(http.StatusInternalServerError))
	up := newSink(t, nil)
	m, reg := h.metrics()
	e := h.engine(EngineOptions{Metrics: m}, destConfig("a", down.URL), destConfig("b", up.URL))
	evs := h.addN(5)
	res := h.step(e)
	if res.Delivered != 5 || res.Failed != 5 {
		t.Fatalf("step = %+v, want 5 delivered to b and 5 failed at a", res)
	}
	got := up.delivered()
	slices.Sort(got)
	if !slices.Equal(got, ids(evs)) {
		t.Errorf("b got %v, want %v", got, ids(evs))
	}
	for _, ev := range evs {
		if d := h.delivery("a", ev.ID); d.Status != cursor.StatusPending || d.Attempts != 1 {
			t.Errorf("a's delivery = %+v, want pending after one attempt", d)
		}
	}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pollhook_outbox_backlog", map[string]string{"destination": "a"}, 5},
		{"pollhook_outbox_backlog", map[string]string{"destination": "b"}, 0},
		{"pollhook_delivery_attempts_total", map[string]string{"destination": "a", "outcome": "failed"}, 5},
		{"pollhook_delivery_attempts_total", map[string]string{"destination": "b", "outcome": "delivered"}, 5},
	} {
		if v, ok := metric(t, reg, tt.name, tt.labels); !ok || v != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, v, ok, tt.want)
		}
	}
	// Read at the scrape, not at the last step: it grows while nothing
	// happens.
	h.clock.Advance(time.Hour)
	if v, _ := metric(t, reg, "pollhook_outbox_oldest_pending_seconds", map[string]string{"destination": "a"}); v != 3600 {
		t.Errorf("oldest pending an hour later = %vs, want 3600s", v)
	}
}

func TestNewDestinationStartsAtEngineStart(t *testing.T) {
	h := newHarness(t)
	old := h.addN(2)
	h.clock.Advance(time.Minute)
	rcv := newSink(t, nil)
	e := h.engine(EngineOptions{}, destConfig("a", rcv.URL))
	fresh := h.addN(1)
	h.step(e)
	if got := rcv.delivered(); !slices.Equal(got, ids(fresh)) {
		t.Errorf("a new destination got %v, want only %v (not the older %v)", got, ids(fresh), ids(old))
	}
}

func TestRestartResumes(t *testing.T) {
	h := newHarness(t)
	rcv := newSink(t, func(_ hit, n int) (int, http.Header) {
		if n < 2 {
			return 200, nil
		}
		return 503, nil
	})
	cfg := destConfig("a", rcv.URL, func(d *config.Destination) { d.MaxInFlight = 1 })
	evs := h.addN(5)
	if res := h.step(h.engine(EngineOptions{}, cfg)); res.Delivered != 2 || res.Failed != 3 {
		t.Fatalf("first run: %+v, want 2 delivered and 3 failed", res)
	}
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	h.open()
	rcv.setRespond(nil)
	h.clock.Advance(time.Minute)
	if res := h.step(h.engine(EngineOptions{}, cfg)); res.Delivered != 3 {
		t.Fatalf("after restart: %+v, want the 3 pending delivered", res)
	}
	got := rcv.delivered()
	slices.Sort(got)
	if !slices.Equal(got, ids(evs)) {
		t.Errorf("delivered %v, want each of %v once", got, ids(evs))
	}
	for _, hit := range rcv.got() {
		if hit.webhookID != hit.events[0] {
			t.Errorf("request with webhook-id %q carried %v, want its event id", hit.webhookID, hit.events)
		}
	}
}

// TestRunDelivers runs the daemon loop on the real clock with a short
// schedule: every event arrives although each first attempt fails, and a
// receiver that hangs does not hold up another destination.
func TestRunDelivers(t *testing.T) {
	h := newHarness(t)
	tries := map[string]int{}
	flaky := newSink(t, func(hit hit, _ int) (int, http.Header) {
		tries[hit.events[0]]++ // under the sink's lock
		if tries[hit.events[0]] == 1 {
			return 500, nil
		}
		return 200, nil
	})
	flaky.ok = make(chan string, 100)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)

	short := func(d *config.Destination) { d.Retry.Schedule = schedule(10*time.Millisecond, 10*time.Millisecond) }
	var dests []*Destination
	for _, c := range []config.Destination{destConfig("flaky", flaky.URL, short), destConfig("hung", hung.URL, short)} {
		d, err := NewDestination(c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		dests = append(dests, d)
	}
	e := NewEngine(h.store, dests, EngineOptions{Leases: storeLeases{h.store}, StopGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()

	var want []string
	for i := range 5 {
		h.clock.Set(time.Now())
		want = append(want, h.addN(1)[0].ID)
		if i%2 == 0 {
			e.Notify()
		}
	}
	e.Notify()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case id := <-flaky.ok:
			got = append(got, id)
		case <-timeout:
			t.Fatalf("after 10s the receiver has %v, want %v", got, want)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	// The hung destination's requests were abandoned after the stop's
	// grace: still pending, no attempt counted.
	ds, err := h.store.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: "hung"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) == 0 {
		t.Error("the hung destination has no deliveries")
	}
	for _, d := range ds {
		if d.Status != cursor.StatusPending || d.Attempts != 0 {
			t.Errorf("hung destination's delivery = %+v, want pending with no attempt", d)
		}
	}
}

// BenchmarkDeliver delivers b.N outbox events, fan-out and store updates
// included, to a loopback HTTP receiver and to a NATS JetStream stream (the
// shared test server; the nats cases skip without one). The floor cases
// POST the same bodies (encoded beforehand) to the same kind of receiver,
// max_in_flight at a time, through the destination's own client, with no
// store: what delivery would cost if recording it were free. Each HTTP
// case reports its events/s as a fraction of its floor's in the same run
// (xfloor), when the floor ran.
func BenchmarkDeliver(b *testing.B) {
	httpDest := func(b *testing.B) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(srv.Close)
		return srv.URL
	}
	events := func(n int) []cursor.Event {
		evs := make([]cursor.Event, n)
		for i := range evs {
			evs[i] = cursor.Event{ID: fmt.Sprintf("evt_%09d", i), Type: "contact.updated", Resource: "contacts",
				ObjectID: strconv.Itoa(i), DetectedAt: start, Data: json.RawMessage(`{"id":1,"name":"a"}`)}
		}
		return evs
	}
	floor := map[int]float64{} // events a body → its floor's events/s, this run
	for _, bc := range []struct {
		name      string
		maxEvents int
		kind      string // floor, http or nats
	}{
		{"floor", 1, "floor"}, {"unbatched", 1, "http"},
		{"floor-batch100", 100, "floor"}, {"batch100", 100, "http"},
		{"nats-unbatched", 1, "nats"}, {"nats-batch100", 100, "nats"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			var cfg config.Destination
			if bc.kind == "nats" {
				url, js := natstest.Shared(b)
				stream, prefix := natstest.Names(b, js)
				cfg = destConfig("bench", url, func(d *config.Destination) { d.Subject, d.Stream = prefix+".{type}", stream })
			} else {
				cfg = destConfig("bench", httpDest(b))
			}
			cfg.Batch.MaxEvents = bc.maxEvents
			d, err := NewDestination(cfg, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			evs := events(b.N)
			var elapsed time.Duration
			if bc.kind == "floor" {
				elapsed = postFloor(b, d, evs)
				floor[bc.maxEvents] = float64(b.N) / elapsed.Seconds()
				b.ReportMetric(floor[bc.maxEvents], "events/s")
				return
			}
			store, err := cursor.Open(ctx, filepath.Join(b.TempDir(), "state.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			e := NewEngine(store, []*Destination{d}, EngineOptions{Now: func() time.Time { return start }, Leases: storeLeases{store}})
			for chunk := range slices.Chunk(evs, 1000) {
				commitEvents(b, store, chunk)
			}
			b.ResetTimer()
			begin, cpu := time.Now(), cputime.Process()
			res, err := e.Step(ctx)
			if err != nil {
				b.Fatal(err)
			}
			elapsed = time.Since(begin)
			b.StopTimer()
			// CPU time of the process (receiver included) an event: unlike
			// the rate, it hardly moves with other work on the machine.
			b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/event")
			if res.Delivered != b.N {
				b.Fatalf("delivered %d of %d", res.Delivered, b.N)
			}
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "events/s")
			if f := floor[bc.maxEvents]; f > 0 && bc.kind == "http" {
				b.ReportMetric(rate/f, "xfloor")
			}
		})
	}
}

// postFloor POSTs evs, encoded beforehand as d would encode them (batches
// of its max_events), to d's URL through d's client, max_in_flight at a
// time, and returns how long the requests took.
func postFloor(b *testing.B, d *Destination, evs []cursor.Event) time.Duration {
	b.Helper()
	h := d.t.(*httpTransport)
	var bodies []Body
	for batch := range slices.Chunk(evs, d.cfg.Batch.MaxEvents) {
		body, err := encode(d.format, batch, d.batched, d.to)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	var g errgroup.Group
	g.SetLimit(d.cfg.MaxInFlight)
	b.ResetTimer()
	begin := time.Now()
	for _, body := range bodies {
		g.Go(func() error {
			req, err := http.NewRequest(http.MethodPost, h.url, bytes.NewReader(body.Bytes))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", body.ContentType)
			resp, err := h.client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("post: %s", resp.Status)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(begin)
	b.StopTimer()
	return elapsed
}

func TestOnGoneAndOnDeadCallbacks(t *testing.T) {
	h := newHarness(t)
	gone := newSink(t, answer(http.StatusGone))
	failing := newSink(t, answer(http.StatusInternalServerError))
	var mu sync.Mutex
	var calls []string
	opts := EngineOptions{
		OnGone: func(dest, reason string) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, "gone "+dest+" "+strconv.FormatBool(strings.Contains(reason, "410")))
		},
		OnDead: func(dest, id string) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, "dead "+dest+" "+id)
		},
	}
	e := h.engine(opts,
		destConfig("g", gone.URL),
		destConfig("f", failing.URL, func(d *config.Destination) { d.Retry.Schedule = schedule(time.Minute) }))
	ev := h.addN(1)[0]
	h.step(e)
	h.clock.Advance(time.Minute)
	h.step(e)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(calls)
	want := []string{"dead f " + ev.ID, "gone g true"}
	if !slices.Equal(calls, want) {
		t.Fatalf("callbacks %v, want %v", calls, want)
	}
}

// TestFailedBatchKeepsItsWebhookID retries a failed batch with a jitter
// that differs on every draw: the retry carries the same events under the
// same webhook-id, as soon as the step that is next due runs.
func TestFailedBatchKeepsItsWebhookID(t *testing.T) {
	for _, ordering := range []string{config.OrderingUnordered, config.OrderingOrdered} {
		t.Run(ordering, func(t *testing.T) {
			h := newHarness(t)
			rcv := newSink(t, func(_ hit, n int) (int, http.Header) {
				if n == 0 {
					return http.StatusInternalServerError, nil
				}
				return http.StatusOK, nil
			})
			var mu sync.Mutex
			draws := 0
			jitter := func() float64 {
				mu.Lock()
				defer mu.Unlock()
				draws++
				return float64(draws%10) / 10
			}
			e := h.engine(EngineOptions{Rand: jitter}, destConfig("a", rcv.URL, func(d *config.Destination) {
				d.Batch.MaxEvents = 3
				d.Ordering = ordering
			}))
			evs := h.addN(3)
			res := h.step(e)
			if res.Failed != 3 || res.Requests != 1 {
				t.Fatalf("first step = %+v, want one request of 3 events failed", res)
			}
			// The engine wakes when the first delivery is due.
			h.clock.Set(res.Next)
			if res := h.step(e); res.Delivered != 3 || res.Requests != 1 {
				t.Fatalf("retry step = %+v, want the 3 events retried in one request", res)
			}
			hits := rcv.got()
			if len(hits) != 2 {
				t.Fatalf("%d requests, want 2: %+v", len(hits), hits)
			}
			if !slices.Equal(hits[1].events, ids(evs)) || hits[1].webhookID != hits[0].webhookID {
				t.Errorf("retry = %+v after %+v, want the same 3 events under the same webhook-id", hits[1], hits[0])
			}
		})
	}
}

// TestPipedriveGoneIsAFailure: a subscriber in Pipedrive's dialect that
// answers 410 is retried on the schedule, as Pipedrive does, and is not
// disabled; a 410 from a destination of another format disables it.
func TestPipedriveGoneIsAFailure(t *testing.T) {
	tests := []struct {
		format   string
		disabled bool
	}{
		{FormatPipedrive, false},
		{config.FormatPollhook, true},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t)
			rcv := newSink(t, func(_ hit, n int) (int, http.Header) {
				if n == 0 {
					return http.StatusGone, nil
				}
				return http.StatusOK, nil
			})
			var mu sync.Mutex
			var gone []string
			e := h.engine(EngineOptions{OnGone: func(dest, _ string) {
				mu.Lock()
				defer mu.Unlock()
				gone = append(gone, dest)
			}}, destConfig("a", rcv.URL, func(d *config.Destination) { d.Format = tt.format }))
			ev := h.addN(1)[0]

			res := h.step(e)
			st, err := h.store.Destination(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			called := len(gone) > 0
			mu.Unlock()
			if st.Disabled() != tt.disabled || called != tt.disabled || (res.Disabled == 1) != tt.disabled {
				t.Fatalf("after a 410: disabled %v, OnGone called %v, step %+v; want disabled and OnGone %v",
					st.Disabled(), called, res, tt.disabled)
			}
			if tt.disabled {
				return
			}
			d := h.delivery("a", ev.ID)
			if d.Status != cursor.StatusPending || d.Attempts != 1 || res.Failed != 1 {
				t.Fatalf("after a 410: %+v, step %+v; want pending after one counted attempt", d, res)
			}
			h.clock.Set(res.Next)
			later := h.addN(1)[0]
			if res := h.step(e); res.Delivered != 2 {
				t.Fatalf("retry step = %+v, want the retried and the later event delivered", res)
			}
			for _, id := range []string{ev.ID, later.ID} {
				if d := h.delivery("a", id); d.Status != cursor.StatusDelivered {
					t.Errorf("delivery of %s = %+v, want delivered", id, d)
				}
			}
		})
	}
}
