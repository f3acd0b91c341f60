package reliability

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestCrash kills `pollhook run` with SIGKILL at random moments while the
// upstream changes, restarts it each time, and after a last clean run
// checks that every change arrived once, under one id.
func TestCrash(t *testing.T) {
	t.Parallel()
	kills := trials(50, 200)
	fig := newFigures(t, "1. crash: SIGKILL at random moments")
	fig.TrialsOf = "kills"
	w := newWorld(t, UpstreamOptions{Seed: 1, RealTime: true, Initial: 300, PageDelay: 5 * time.Millisecond})
	w.rcv.SetLatency(3 * time.Millisecond)
	// The receiver fails now and then too: retries cross the kills.
	w.rcv.FailRate(0.05, Fail5xx, FailReset)
	cfg := w.config(setup{})
	rng := rand.New(rand.NewPCG(7, 11))

	stopMutating := w.mutate(20*time.Millisecond, 5*time.Second)
	// Where each kill landed, told by what was in flight at that moment.
	phases := map[string]int{}
	for range kills {
		p := start(t, cfg)
		// Half the kills land in the first cycle and its deliveries,
		// the rest anywhere in the first second and a half.
		window := 1500 * time.Millisecond
		if rng.IntN(2) == 0 {
			window = 400 * time.Millisecond
		}
		pause(time.Duration(rng.Int64N(int64(window))))
		phase := "between (diff, commit or idle)"
		switch {
		case !p.running():
			t.Fatalf("pollhook exited by itself: %v\n%s", p.err, p.tail())
		case w.up.InFlight() > 0:
			phase = "fetch"
		case w.rcv.InFlight() > 0:
			phase = "delivery"
		case time.Since(p.started) < 60*time.Millisecond:
			phase = "startup"
		}
		p.kill()
		phases[phase]++
		fig.Trials++
	}
	stopMutating()

	w.rcv.Recover()
	p := startReady(t, cfg)
	w.finish(t, p, cfg, fig, 90*time.Second, "inc", "snap")

	var where []string
	for k, v := range phases {
		where = append(where, fmt.Sprintf("%d in %s", v, k))
	}
	sort.Strings(where)
	st := w.rcv.Stats()
	fig.Faults = st.Failed[Fail5xx] + st.Failed[FailReset]
	fig.Note = "kills landed: " + strings.Join(where, ", ") + fmt.Sprintf("; receiver failed %v", st.Failed)
	t.Logf("%d kills (%s); %d upstream writes; %d requests accepted", kills, strings.Join(where, ", "), len(w.up.Log()), w.rcv.Stats().Accepted)
}
