package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/examples/democrm"
	"github.com/pollhook/pollhook/internal/runtime"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "watch pollhook turn a changing API into signed webhooks (offline)",
		usage: `Usage: pollhook demo [--duration D] [--poll 2s] [--mutate 1s] [--seed N] [--keep]

Starts, all in this process and on loopback only:
  - a simulated CRM API whose contacts are created, edited and deleted
    every second or so (paginated, dates in New York local time);
  - pollhook, polling it every 2s with snapshot deletes, into a temporary
    SQLite file;
  - a webhook receiver that verifies each event's Standard Webhooks
    signature and prints it as one line.
Runs until Ctrl-C (or for --duration), then prints a summary.

  --keep   keep the temporary state file, and print how to browse it
           (pollhook events --state FILE)

Example:
  go run ./cmd/pollhook demo --duration 30s
`,
		run: runDemo,
	})
}

func runDemo(ctx context.Context, e *env, args []string) error {
	c := commands["demo"]
	fs := c.flags(e)
	duration := fs.Duration("duration", 0, "stop after `D` (0 = at Ctrl-C)")
	poll := fs.Duration("poll", 2*time.Second, "how often pollhook polls the CRM: every `D`")
	mutate := fs.Duration("mutate", time.Second, "how often the CRM changes: every `D`")
	keep := fs.Bool("keep", false, "keep the state file, and say how to browse it")
	seed := fs.Int64("seed", 0, "the seed `N` of the CRM's changes, for a repeatable run (0 = random)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *poll < time.Second {
		return &usageError{"demo: --poll must be at least 1s"}
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	dir, err := os.MkdirTemp("", "pollhook-demo-")
	if err != nil {
		return fmt.Errorf("create demo state dir: %w", err)
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}

	if *seed == 0 {
		*seed = time.Now().UnixNano()
	}
	crm := democrm.New(democrm.Options{Seed: *seed})
	crmURL, stopCRM, err := serveLoopback(crm)
	if err != nil {
		return err
	}
	defer stopCRM()

	secret := newSecret()
	rcv, err := newDemoReceiver(e.stdout, secret)
	if err != nil {
		return err
	}
	hookURL, stopHook, err := serveLoopback(rcv)
	if err != nil {
		return err
	}
	defer stopHook()

	cfg, err := config.Parse("demo.yaml", []byte(demoConfig(crmURL, hookURL+"/webhooks", filepath.Join(dir, "pollhook.db"), *poll)),
		func(name string) (string, bool) { return secret, name == "DEMO_SECRET" })
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	store, err := openState(ctx, cfg.State)
	if err != nil {
		return err
	}
	defer store.Close()

	fmt.Fprintf(e.stdout, `pollhook demo
  simulated CRM   %s/api/contacts  (%d contacts; one changes every %s)
  pollhook        polls every %s, snapshot deletes, state in %s
  receiver        %s/webhooks  (verifies Standard Webhooks signatures)
The first poll records what exists; changes after it arrive below. Ctrl-C to stop.

`, crmURL, crm.Len(), *mutate, *poll, cfg.State.Path, hookURL)

	log := newLogger(e.stderr, "text", slog.LevelWarn)
	rt, err := runtime.New(store, cfg, runtime.Options{Logger: log, Stdout: e.stdout, LeaseTTL: cfg.State.Lease.D()})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// Let the first poll record the starting state before changes begin.
		select {
		case <-ctx.Done():
			return
		case <-time.After(*poll / 2):
		}
		crm.Run(ctx, *mutate)
	})
	err = rt.Run(ctx)
	wg.Wait()
	if err != nil {
		return err
	}

	polls := 0
	for _, r := range gatherPolls(rt) {
		polls += r
	}
	rcv.summary(e.stdout, polls, len(crm.Log()))
	if *keep {
		fmt.Fprintf(e.stdout, "state kept in %s; browse it with\n"+
			"  pollhook events --state %s\n"+
			"  (deliveries, attempts, cursors and destinations take --state too)\n", cfg.State.Path, cfg.State.Path)
	}
	if rcv.bad > 0 {
		return fmt.Errorf("demo: %s failed signature verification", plural(rcv.bad, "delivery", "deliveries"))
	}
	return nil
}

// demoConfig is the pollhook config the demo runs.
func demoConfig(crmURL, hookURL, state string, poll time.Duration) string {
	return fmt.Sprintf(`state:
  path: %s
sources:
  - name: democrm
    base_url: %s
    timeout: 5s
resources:
  - name: contacts
    object: contact
    url: /api/contacts
    schedule: %s
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
    # Page numbers shift when a contact is deleted during a walk: a contact
    # the walk missed is looked up before it is taken for deleted.
    item_url: /api/contacts/${id}
    start: now
destinations:
  - name: demo-receiver
    url: %s
    events: ["contact.*"]
    secret: ${DEMO_SECRET}
    retry: { schedule: [1s, 2s, 5s] }
`, state, crmURL, poll, democrm.DateFormat, democrm.DateFormat, hookURL)
}

// newSecret makes a Standard Webhooks signing secret.
func newSecret() string {
	b := make([]byte, 24)
	rand.Read(b)
	return emit.SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// serveLoopback serves h on a free loopback port.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// gatherPolls reads the poll counter of each resource from the metrics.
func gatherPolls(rt *runtime.Runtime) map[string]int {
	out := map[string]int{}
	mfs, err := rt.Registry().Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "pollhook_polls_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "resource" {
					out[l.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// demoReceiver verifies and prints the webhooks the demo delivers.
type demoReceiver struct {
	out io.Writer
	wh  *standardwebhooks.Webhook

	mu     sync.Mutex
	byType map[string]int
	seen   map[string]bool
	redeliveries,
	bad int
}

func newDemoReceiver(out io.Writer, secret string) (*demoReceiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("demo receiver: %w", err)
	}
	return &demoReceiver{out: out, wh: wh, byType: map[string]int{}, seen: map[string]bool{}}, nil
}

func (d *demoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var ev emit.Envelope
	if err := d.wh.Verify(body, r.Header); err != nil {
		d.bad++
		fmt.Fprintf(d.out, "✗ delivery %s: signature invalid: %s\n", r.Header.Get("webhook-id"), err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if d.seen[ev.ID] {
		d.redeliveries++
	}
	d.seen[ev.ID] = true
	d.byType[ev.Type]++
	var rec struct {
		Email   string `json:"email"`
		Company string `json:"company"`
	}
	// A deleted contact's email is in the last version pollhook saw.
	data := ev.Data
	if ev.Previous != nil && strings.HasSuffix(ev.Type, ".deleted") {
		data = ev.Previous
	}
	json.Unmarshal(data, &rec)
	detail := ""
	if rec.Email != "" {
		detail = "  email=" + rec.Email
	}
	if ev.ChangedFields != nil {
		detail += "  changed=" + strings.Join(ev.ChangedFields, ",")
	}
	fmt.Fprintf(d.out, "✓ %-16s id=%-4s%s  (signature ok, %s)\n", ev.Type, ev.ObjectID, detail, ev.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (d *demoReceiver) summary(w io.Writer, polls, changes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	types := make([]string, 0, len(d.byType))
	total := 0
	for t, n := range d.byType {
		types = append(types, fmt.Sprintf("%s %d", t, n))
		total += n
	}
	sort.Strings(types)
	sig := "all signatures valid"
	switch {
	case d.bad > 0:
		sig = plural(d.bad, "INVALID signature", "INVALID signatures")
	case total == 0:
		sig = "nothing to verify (the first poll records what exists; run longer to see changes)"
	}
	delivered := plural(total, "event", "events") + " delivered"
	if total > 0 {
		delivered += " (" + strings.Join(types, ", ") + ")"
	}
	fmt.Fprintf(w, "\nsummary: %s, %s made in the CRM, %s, %s; %s\n",
		plural(polls, "poll", "polls"), plural(changes, "change", "changes"), delivered,
		plural(d.redeliveries, "redelivery", "redeliveries"), sig)
}
