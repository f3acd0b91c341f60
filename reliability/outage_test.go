package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// outage is how long the receiver stays down: ten steps of the 300ms
// retry schedule, and a third of its length.
const outage = 3 * time.Second

// TestReceiverOutage takes the receiver down (503, a hang past the
// destination's timeout, a connection reset) for several retry intervals
// while the upstream changes, then brings it back: everything arrives,
// once per id; with ordering: ordered, in outbox order.
func TestReceiverOutage(t *testing.T) {
	t.Parallel()
	for _, ordering := range []string{"unordered", "ordered"} {
		t.Run(ordering, func(t *testing.T) {
			t.Parallel()
			fig := newFigures(t, "3. receiver outage, "+ordering)
			fig.TrialsOf = "outages"
			w := newWorld(t, UpstreamOptions{Seed: 4, RealTime: true, Initial: 40})
			cfg := w.config(setup{Ordering: ordering, DestTimeout: "500ms"})
			p := startReady(t, cfg)
			waitClean(t, w, 30*time.Second)

			var downs []func() (up func())
			for _, mode := range []FailMode{Fail5xx, FailHang, FailReset} {
				downs = append(downs, func() func() {
					w.rcv.Fail(mode, -1)
					return w.rcv.Recover
				})
			}
			w.outages(t, p, fig, downs)
			w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
			st := w.rcv.Stats()
			fig.Faults = st.Failed[Fail5xx] + st.Failed[FailHang] + st.Failed[FailReset]
			fig.Note = fmt.Sprintf("%s each; failed requests %v", outage, st.Failed)
			if ordering == "ordered" {
				if msg := outOfOrder(t, cfg, w.rcv.Deliveries()); msg != "" {
					t.Error(msg)
					fig.Note += "; OUT OF ORDER"
				} else {
					fig.Note += "; arrived in outbox order"
				}
			}
		})
	}
}

// TestReceiverGone answers 410 once: the destination is disabled and gets
// nothing until `pollhook destinations enable`, then gets everything.
func TestReceiverGone(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "3. receiver 410 Gone, then enabled")
	fig.TrialsOf = "410s"
	w := newWorld(t, UpstreamOptions{Seed: 5, RealTime: true, Initial: 20})
	cfg := w.config(setup{})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)

	w.rcv.Fail(FailGone, 1)
	w.up.Step()
	waitUntil(t, 20*time.Second, "the destination to be disabled", func() bool {
		return p.metrics()[series("pollhook_destination_disabled", "destination", "app")] == 1
	})
	fig.Trials, fig.Faults = 1, 1
	asked := w.rcv.Stats().Requests
	for range 20 {
		w.up.Step()
	}
	pause(2500 * time.Millisecond) // two cycles: the changes are in the outbox
	if n := w.rcv.Stats().Requests - asked; n > 0 {
		t.Errorf("a disabled destination got %d requests", n)
	}
	if _, errOut, code := cli(t, nil, "destinations", "enable", "app", "-c", cfg); code != 0 {
		t.Fatalf("pollhook destinations enable: exit %d: %s", code, errOut)
	}
	w.up.Step() // a new event wakes the delivery engine
	waitClean(t, w, 40*time.Second)
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	fig.Note = "nothing sent while disabled; all delivered after enable"
}

// TestReceiverDeadThenReplay keeps the receiver down past the whole retry
// schedule: the deliveries die; `pollhook replay --status dead` sends them
// again under the same ids.
func TestReceiverDeadThenReplay(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "3. receiver down past the retry schedule, replay")
	fig.TrialsOf = "outages"
	w := newWorld(t, UpstreamOptions{Seed: 6, RealTime: true, Initial: 20})
	cfg := w.config(setup{Retry: "[100ms, 100ms]"})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)

	w.rcv.Fail(Fail5xx, -1)
	for range 15 {
		w.up.Step()
	}
	waitUntil(t, 20*time.Second, "deliveries to die", func() bool {
		m := p.metrics()
		return m[series("pollhook_outbox_backlog", "destination", "app")] == 0 &&
			m[series("pollhook_delivery_attempts_total", "destination", "app", "outcome", "dead")] > 0
	})
	w.rcv.Recover()
	fig.Trials = 1
	fig.Faults = w.rcv.Stats().Failed[Fail5xx]
	out, errOut, code := cli(t, nil, "replay", "--destination", "app", "--status", "dead", "-c", cfg)
	if code != 0 {
		t.Fatalf("pollhook replay: exit %d: %s", code, errOut)
	}
	w.up.Step() // a new event wakes the delivery engine
	waitClean(t, w, 40*time.Second)
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	fig.Note = "replay: " + strings.TrimSpace(out)
}

// outages takes the destination down with each of downs in turn (each
// returns what brings it back) for outage, while the upstream changes;
// after each, everything must arrive. Failed attempts must be counted and
// no event may die. It returns the failed attempts.
func (w *world) outages(t *testing.T, p *proc, fig *figures, downs []func() (up func())) float64 {
	t.Helper()
	for _, down := range downs {
		up := down()
		stop := w.mutate(100*time.Millisecond, 0)
		pause(outage)
		stop()
		up()
		fig.Trials++
		waitClean(t, w, 30*time.Second)
	}
	m := p.metrics()
	failed := m[series("pollhook_delivery_attempts_total", "destination", "app", "outcome", "failed")]
	if failed == 0 {
		t.Error("no failed delivery attempt counted during the outages")
	}
	if dead := m[series("pollhook_delivery_attempts_total", "destination", "app", "outcome", "dead")]; dead > 0 {
		t.Errorf("%g events died during outages shorter than the retry schedule", dead)
	}
	return failed
}

// waitClean waits until the receiver holds every change of both resources
// (Check finds nothing wrong).
func waitClean(t *testing.T, w *world, timeout time.Duration) {
	t.Helper()
	waitCleanOf(t, w, []string{"inc", "snap"}, timeout)
}

// outOfOrder compares the order in which events first arrived with the
// outbox order `pollhook events` lists; it returns "" when they agree.
func outOfOrder(t *testing.T, cfg string, got []Delivery) string {
	t.Helper()
	outbox := outbox(t, cfg)
	seen := map[string]bool{}
	var arrived []string
	for _, d := range got {
		for _, ev := range d.Events {
			if !seen[ev.ID] {
				seen[ev.ID] = true
				arrived = append(arrived, ev.ID)
			}
		}
	}
	if len(arrived) != len(outbox) {
		return fmt.Sprintf("%d events arrived, the outbox holds %d", len(arrived), len(outbox))
	}
	for i := range outbox {
		if arrived[i] != outbox[i] {
			return fmt.Sprintf("event %d to arrive was %s; the outbox has %s there", i+1, arrived[i], outbox[i])
		}
	}
	return ""
}
