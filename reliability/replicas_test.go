package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/internal/pgtest"
)

// TestReplicas runs three `pollhook run` on one PostgreSQL database, with
// eight resources between them, while the upstream changes: replicas are
// killed with SIGKILL at random and started again. Then one more is
// killed and the time until every one of its resources is polled by
// another is measured (at most two lease periods), and after a drain every
// change must have arrived once, under one id, whichever replica polled
// and delivered it.
func TestReplicas(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	kills := trials(8, 40)
	fig := newFigures(t, "9. replicas: three on one PostgreSQL, SIGKILL at random")
	fig.TrialsOf = "kills"
	w := newWorld(t, UpstreamOptions{Seed: 23, RealTime: true, Initial: 120, PageDelay: 2 * time.Millisecond})
	w.rcv.SetLatency(2 * time.Millisecond)
	const lease = 3 * time.Second
	var resources []string
	for i := range 4 {
		resources = append(resources, fmt.Sprint("inc", i), fmt.Sprint("snap", i))
	}
	cfg := w.config(setup{DSN: dsn, Lease: lease.String(), Resources: resources})
	rng := rand.New(rand.NewPCG(23, 29))
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = start(t, cfg)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	stopMutating := w.mutate(30*time.Millisecond, 5*time.Second)
	for range kills {
		pause(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		i := rng.IntN(len(procs))
		if !procs[i].running() {
			t.Fatalf("a replica exited by itself: %v\n%s", procs[i].err, procs[i].tail())
		}
		procs[i].kill()
		pause(time.Duration(rng.IntN(800)) * time.Millisecond)
		procs[i] = start(t, cfg)
		fig.Trials++
	}
	stopMutating()

	// The work is shared: once settled, no replica holds more than its
	// share (8 resources over 3 replicas: 3).
	waitUntil(t, 30*time.Second, "the resources shared over the three replicas", func() bool {
		held := resourceHolders(t, db)
		if len(held) != 3 {
			return false
		}
		total := 0
		for _, n := range held {
			if n > 3 {
				return false
			}
			total += n
		}
		return total == len(resources)
	})
	// Kill one more, with resources, and time the takeover.
	before := resourceLeases(t, db)
	victim := procs[0]
	victimHolder := holderOf(t, victim)
	victim.kill()
	killed := time.Now()
	waitUntil(t, 3*lease, "another replica to poll every resource of the one killed", func() bool {
		now := resourceLeases(t, db)
		for name, h := range before {
			if h == victimHolder && (now[name] == "" || now[name] == victimHolder) {
				return false
			}
		}
		return true
	})
	takeover := time.Since(killed)
	if takeover > 2*lease {
		t.Errorf("the killed replica's resources were taken over after %s, want at most two leases (%s)", takeover, 2*lease)
	}
	procs[0] = start(t, cfg)

	w.drainAll(procs, cfg, resources, 120*time.Second)
	for _, p := range procs {
		if code := p.stop(); code != 0 {
			t.Errorf("a replica exited %d after SIGTERM\n%s", code, p.tail())
		}
	}
	results := w.check(resources...)
	requireClean(t, w, results)
	fig.add(w, results)
	fig.Note = fmt.Sprintf("8 resources on 3 replicas, lease %s; a killed replica's resources were polled by another after %s", lease, takeover.Round(100*time.Millisecond))
}

// resourceLeases returns the holder of each resource lease held now.
func resourceLeases(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		`SELECT name, holder FROM leases WHERE name LIKE 'resource/%' AND expires_at > $1`, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, holder string
		if err := rows.Scan(&name, &holder); err != nil {
			t.Fatal(err)
		}
		out[name] = holder
	}
	return out
}

// resourceHolders counts the resource leases each holder holds now.
func resourceHolders(t *testing.T, db *sql.DB) map[string]int {
	out := map[string]int{}
	for _, h := range resourceLeases(t, db) {
		out[h]++
	}
	return out
}

// holderOf reads the lease holder name a process logged at start.
func holderOf(t *testing.T, p *proc) string {
	t.Helper()
	var holder string
	waitUntil(t, 15*time.Second, "the replica's holder name", func() bool {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if i := strings.Index(line, `"holder":"`); i >= 0 && strings.Contains(line, "pollhook running") {
				holder = line[i+len(`"holder":"`):]
				holder = holder[:strings.IndexByte(holder, '"')]
				return true
			}
		}
		return false
	})
	return holder
}

// drainAll is drain for replicas: each resource completes two more cycles
// on whichever replica polls it, then every outbox event must arrive.
func (w *world) drainAll(procs []*proc, cfg string, resources []string, timeout time.Duration) {
	t := w.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	sum := func() map[string]float64 {
		out := map[string]float64{}
		for _, p := range procs {
			if !p.running() {
				t.Fatalf("a replica exited: %v\n%s", p.err, p.tail())
			}
			m, err := p.readMetrics()
			if err != nil {
				continue
			}
			for k, v := range m {
				out[k] += v
			}
		}
		return out
	}
	base := sum()
	waitUntil(t, timeout, "two more cycles of each resource", func() bool {
		m := sum()
		for _, r := range resources {
			ok := series("pollhook_polls_total", "resource", r, "outcome", "ok")
			if m[ok] < base[ok]+2 {
				return false
			}
		}
		return true
	})
	var missing []string
	defer func() {
		if t.Failed() {
			sort.Strings(missing)
			t.Logf("%d outbox events never arrived: %v", len(missing), missing[:min(len(missing), 10)])
		}
	}()
	waitUntil(t, time.Until(deadline), "every outbox event to arrive", func() bool {
		got := map[string]bool{}
		for _, d := range w.rcv.Deliveries() {
			for _, ev := range d.Events {
				got[ev.ID] = true
			}
		}
		missing = missing[:0]
		for _, id := range outbox(t, cfg) {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
}
