package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/examples/democrm"
	"github.com/pollhook/pollhook/internal/runtime"
)

// token is the http.token of the scenes.
const token = "s3cret-console-token"

// receiver answers deliveries with the status it is set to.
type receiver struct {
	*httptest.Server
	status atomic.Int64
	mu     sync.Mutex
	got    int
}

func newReceiver(t *testing.T, status int) *receiver {
	rc := &receiver{}
	rc.status.Store(int64(status))
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s := r.Header.Get("X-Hook-Secret"); s != "" { // a REST Hooks handshake
			w.Header().Set("X-Hook-Secret", s)
			return
		}
		st := int(rc.status.Load())
		if st/100 == 2 {
			rc.mu.Lock()
			rc.got++
			rc.mu.Unlock()
		}
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"status":%d,"message":%q}`, st, http.StatusText(st))
	}))
	t.Cleanup(rc.Close)
	return rc
}

// scene is a running pollhook with its console: two simulated CRMs
// polled as contacts and leads, a resource whose URL the CRM does not
// serve (deals: it fails), a receiver that takes everything
// (crm-sync), one that fails until told otherwise (billing: its
// deliveries die after one retry), one that answers 410 Gone
// (legacy-erp), and a REST Hooks subscription.
type scene struct {
	t          *testing.T
	rt         *runtime.Runtime
	store      *cursor.SQLite
	base       string
	crm, sales *democrm.CRM
	ok         *receiver
	billing    *receiver
	gone       *receiver
	stop       func()
}

func newScene(t *testing.T) *scene {
	t.Helper()
	sc := &scene{t: t}
	sc.crm = democrm.New(democrm.Options{Seed: 1, Initial: 40})
	sc.sales = democrm.New(democrm.Options{Seed: 2, Initial: 25})
	crm := httptest.NewServer(sc.crm)
	t.Cleanup(crm.Close)
	sales := httptest.NewServer(sc.sales)
	t.Cleanup(sales.Close)
	sc.ok = newReceiver(t, http.StatusOK)
	sc.billing = newReceiver(t, http.StatusServiceUnavailable)
	sc.gone = newReceiver(t, http.StatusGone)
	dir := t.TempDir()
	resource := func(name, object, source, path string) string {
		return fmt.Sprintf(`  - name: %s
    source: %s
    object: %s
    url: %s
    schedule: 1h
    items: .data
    dates:
      updated_field: modified
      updated_format: %q
      updated_timezone: America/New_York
      created_field: created
      created_format: %q
      created_timezone: America/New_York
    pagination: { type: page, page_param: page, limit_param: per_page, limit: 10 }
    deletes: snapshot
    item_url: %s/${id}
`, name, source, object, path, democrm.DateFormat, democrm.DateFormat, path)
	}
	yaml := fmt.Sprintf(`state:
  path: %s
http:
  listen: 127.0.0.1:0
  token: %s
  allow_targets: [127.0.0.0/8]
sources:
  - name: crm
    base_url: %s
  - name: sales
    base_url: %s
resources:
%s%s%sdestinations:
  - name: crm-sync
    url: %s/webhooks
    events: ["contact.*"]
  - name: billing
    url: %s/hooks/pollhook
    events: ["*.created", "*.updated"]
    retry: { schedule: [100ms] }
  - name: legacy-erp
    url: %s/erp
    events: ["lead.*"]
`, filepath.Join(dir, "state.db"), token, crm.URL, sales.URL,
		resource("contacts", "contact", "crm", "/api/contacts"), resource("leads", "lead", "sales", "/api/contacts"),
		resource("deals", "deal", "crm", "/api/deals"),
		sc.ok.URL, sc.billing.URL, sc.gone.URL)
	cfg, err := config.Parse(filepath.Join(dir, "pollhook.yaml"), []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	sc.store, err = cursor.Open(context.Background(), cfg.State.Path)
	if err != nil {
		t.Fatal(err)
	}
	sc.history(cfg)
	sc.rt, err = runtime.New(sc.store, cfg, runtime.Options{
		Holder: "console-test", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := sc.rt.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	var once sync.Once
	sc.stop = func() {
		once.Do(func() {
			cancel()
			<-done
			sc.store.Close()
		})
	}
	t.Cleanup(sc.stop)
	sc.waitFor("the listener", func() bool { return sc.rt.Addr() != "" })
	sc.base = "http://" + sc.rt.Addr()
	sc.waitFor("the first cycles", func() bool {
		return sc.completed("contacts") >= 1 && sc.completed("leads") >= 1 && sc.cycles("deals") >= 1
	})

	// A Keap REST Hook, subscribed through the API as a client would.
	req, _ := http.NewRequest("POST", sc.base+"/hooks",
		strings.NewReader(`{"eventKey":"contact.created","hookUrl":"`+sc.ok.URL+`/keap"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("subscribe a REST Hook: %s", resp.Status)
	}

	// Changes in both CRMs, polled at once: billing's deliveries die,
	// legacy-erp is disabled by its 410.
	for range 6 {
		sc.crm.Step()
		sc.sales.Step()
	}
	sc.crm.Create("Grace Hopper")
	sc.sales.Create("Alan Turing")
	sc.poll("contacts")
	sc.poll("leads")
	sc.waitFor("billing's deliveries to die", func() bool {
		b, err := sc.store.Backlog(context.Background(), "billing")
		return err == nil && b.Dead > 0 && b.Pending == 0
	})
	sc.waitFor("legacy-erp to be disabled", func() bool {
		b, err := sc.store.Backlog(context.Background(), "legacy-erp")
		return err == nil && b.Disabled
	})
	return sc
}

// poll polls resource now and waits for the cycle to complete.
func (sc *scene) poll(resource string) {
	sc.t.Helper()
	before := sc.completed(resource)
	if err := sc.rt.PollNow(resource); err != nil {
		sc.t.Fatal(err)
	}
	sc.waitFor("a cycle of "+resource, func() bool { return sc.completed(resource) > before })
}

func (sc *scene) completed(resource string) int64 {
	st, err := sc.store.ResourceState(context.Background(), resource)
	if err != nil {
		sc.t.Fatal(err)
	}
	return st.Completed
}

// cycles is the number of cycles of resource in the history.
func (sc *scene) cycles(resource string) int {
	cs, err := sc.store.Cycles(context.Background(), cursor.CycleFilter{Resource: resource, Limit: cursor.MaxListLimit})
	if err != nil {
		sc.t.Fatal(err)
	}
	return len(cs)
}

func (sc *scene) waitFor(what string, ok func() bool) {
	sc.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			sc.t.Fatalf("after 20s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// history writes a day of history into the store before the daemon
// starts, as a day of polling every 10 minutes would have left it — the
// cycles of both resources and a sample of each destination's backlog a
// minute — so that the charts of the console (and of the README's
// screenshot) have something to show. Everything else the scene shows
// is the daemon's own work.
func (sc *scene) history(cfg *config.Config) {
	ctx := context.Background()
	now := time.Now()
	for r, res := range []string{"contacts", "leads"} {
		ls, err := sc.store.AcquireLeases(ctx, "history", []string{cursor.ResourceLease(res)}, time.Minute, now)
		if err != nil {
			sc.t.Fatal(err)
		}
		for at := now.Add(-23 * time.Hour).Truncate(time.Hour); at.Before(now.Truncate(time.Hour)); at = at.Add(10 * time.Minute) {
			n, err := sc.store.BeginCycle(ctx, res, ls[0])
			if err != nil {
				sc.t.Fatal(err)
			}
			// Busier in the working hours of the CRM's users.
			h := float64(at.UTC().Hour())
			busy := math.Max(0, math.Sin((h-6)/24*2*math.Pi))
			events := int64(2 + busy*float64(14-6*r) + float64((n*7)%5))
			c := cursor.CycleRecord{
				Resource: res, Cycle: n, Started: at, Ended: at.Add(1200 * time.Millisecond), Pages: 5, Records: 42,
				Created: events / 4, Updated: events - events/4 - 1, Deleted: 1, Known: 40, Watermark: at.Add(-time.Minute),
			}
			if err := sc.store.RecordCycle(ctx, ls[0], c); err != nil {
				sc.t.Fatal(err)
			}
		}
		if err := sc.store.ReleaseLeases(ctx, "history", []string{ls[0].Name}); err != nil {
			sc.t.Fatal(err)
		}
	}
	var samples []cursor.BacklogSample
	for i, d := range cfg.Destinations {
		if _, err := sc.store.EnsureDestination(ctx, d.Name, now.Add(-24*time.Hour)); err != nil {
			sc.t.Fatal(err)
		}
		for at := now.Add(-24 * time.Hour).Truncate(time.Minute); at.Before(now.Add(-time.Minute)); at = at.Add(time.Minute) {
			ago := now.Sub(at).Hours()
			var pending int64
			switch i {
			case 0: // crm-sync keeps up
				pending = int64(3 + 2*math.Sin(ago*3))
			case 1: // billing was down for three hours, and caught up
				switch {
				case ago >= 7 && ago < 10:
					pending = int64(50 * (10 - ago))
				case ago >= 6 && ago < 7:
					pending = int64(150 * (ago - 6))
				}
			}
			samples = append(samples, cursor.BacklogSample{Destination: d.Name, At: at, Pending: pending})
		}
	}
	if err := sc.store.RecordBacklog(ctx, samples); err != nil {
		sc.t.Fatal(err)
	}
}
