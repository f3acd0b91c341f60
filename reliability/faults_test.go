package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestUpstreamFaults injects each upstream fault alone, persistently from
// the second page on while changes pile up there, then clears it: the
// cycles fail and are counted, the watermark does not pass the pages the
// cycle could not read, the daemon keeps running, and once the fault
// clears every change arrives.
func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		fault Fault
		// from is the first page the fault hits.
		from int
		// failing are the resources whose cycles the fault fails.
		failing []string
		// heldBack says the fault must trip snap's delete guard instead.
		heldBack bool
	}{
		{Fault5xx, 2, []string{"inc", "snap"}, false},
		{Fault429, 2, []string{"inc", "snap"}, false},
		{FaultSlow, 2, []string{"inc", "snap"}, false},
		{FaultTruncated, 2, []string{"inc", "snap"}, false},
		{FaultHTML, 2, []string{"inc", "snap"}, false},
		{FaultRepeat, 2, []string{"snap"}, false}, // a cursor loop: snap pages by cursor
		{FaultEmpty, 1, nil, true},
	} {
		t.Run(string(tt.fault), func(t *testing.T) {
			t.Parallel()
			fig := newFigures(t, "2. upstream fault: "+string(tt.fault))
			fig.TrialsOf = "failed cycles"
			w := newWorld(t, UpstreamOptions{Seed: 2, RealTime: true, Initial: 120, PageDelay: 2 * time.Millisecond, SlowFor: 2500 * time.Millisecond})
			cfg := w.config(setup{})
			p := startReady(t, cfg)
			waitUntil(t, 30*time.Second, "the first cycles", func() bool {
				return p.polls("inc", "ok") >= 1 && p.polls("snap", "ok") >= 1
			})
			base := p.metrics()
			failed := func(m map[string]float64, r string) float64 {
				return m[series("pollhook_polls_total", "resource", r, "outcome", "error")]
			}

			// The fault first, then changes behind it: a cycle that
			// passed them would lose them. The watermarks to hold are
			// read once a cycle has failed: one that read its pages
			// before the fault may still end well and rightly move its
			// watermark (the first cycle caps it at its start, which
			// the fresh records' dates may be past).
			w.up.SetFault(FaultSpec{Kind: tt.fault, FromPage: tt.from})
			waitUntil(t, 30*time.Second, "a cycle to meet the fault", func() bool {
				m := p.metrics()
				for _, r := range tt.failing {
					if failed(m, r) <= failed(base, r) {
						return false
					}
				}
				return true
			})
			before := cursors(t, cfg)
			met := p.metrics()
			w.up.Burst(70)
			for range 30 {
				w.up.Step()
			}
			waitUntil(t, 40*time.Second, "two more cycles to meet the fault", func() bool {
				m := p.metrics()
				for _, r := range tt.failing {
					if failed(m, r) < failed(met, r)+2 {
						return false
					}
				}
				if tt.heldBack {
					return m[series("pollhook_deletes_held_back", "resource", "snap")] > 0
				}
				return true
			})
			if !p.running() {
				t.Fatalf("pollhook exited under the fault: %v\n%s", p.err, p.tail())
			}
			for _, r := range tt.failing {
				if wm := cursors(t, cfg)[r].Watermark; !wm.Equal(before[r].Watermark) {
					t.Errorf("%s: the watermark moved from %v to %v while every cycle failed", r, before[r].Watermark, wm)
				}
			}
			m := p.metrics()
			for _, r := range []string{"inc", "snap"} {
				errs := series("pollhook_polls_total", "resource", r, "outcome", "error")
				fig.Trials += int(m[errs] - base[errs])
			}
			if tt.heldBack {
				fig.Trials, fig.TrialsOf = 1, "episode"
				fig.Note = fmt.Sprintf("no cycle fails: the guard held back %g deletes", m[series("pollhook_deletes_held_back", "resource", "snap")])
			}

			w.up.ClearFaults()
			w.up.Step()
			w.finish(t, p, cfg, fig, 60*time.Second, "inc", "snap")
			fig.Faults = w.up.Stats().FaultsInjected()
		})
	}
}

// TestUpstreamFaultMix runs the daemon against an upstream that fails 10%
// of its requests with a random fault while it changes, then checks that
// nothing was lost once the faults stop.
func TestUpstreamFaultMix(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "2. upstream faults mixed at 10%")
	fig.TrialsOf = "failed cycles"
	w := newWorld(t, UpstreamOptions{Seed: 3, RealTime: true, Initial: 200, PageDelay: 2 * time.Millisecond, SlowFor: 2500 * time.Millisecond})
	// inc reads pages of 25: more requests, so more faults, per cycle.
	cfg := w.config(setup{Inc: strings.Replace(incDefault, "limit: 50", "limit: 25", 1)})
	w.up.SetFaultRate(0.10)
	p := startReady(t, cfg)
	stopMutating := w.mutate(30*time.Millisecond, 5*time.Second)
	deadline := time.Now().Add(time.Duration(trials(20, 90)) * time.Second)
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("pollhook exited under the fault mix: %v\n%s", p.err, p.tail())
		}
		pause(500 * time.Millisecond)
	}
	stopMutating()
	m := p.metrics()
	st := w.up.Stats() // the requests of the mix, before the drain's
	w.up.ClearFaults()
	var failed float64
	for _, r := range []string{"inc", "snap"} {
		failed += m[series("pollhook_polls_total", "resource", r, "outcome", "error")]
	}
	if failed == 0 {
		t.Errorf("no cycle failed under a 10%% fault rate: /metrics does not count the failures")
	}
	fig.Trials = int(failed)

	w.finish(t, p, cfg, fig, 90*time.Second, "inc", "snap")
	fig.Faults = st.FaultsInjected()
	fig.Note = fmt.Sprintf("%d requests during the mix; faults by kind: %v", st.Requests, st.Faults)
	t.Logf("%d requests, faults %v, %g failed cycles", st.Requests, st.Faults, failed)
}
