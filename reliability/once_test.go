package reliability

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOnceKilled: `pollhook once` — pollhook as a cron job — killed with
// SIGKILL at random moments of a backfill of 2,000 records into two
// destinations, while it polls, commits and delivers, then run again, as
// cron would, while the upstream keeps changing. Every event a run
// detected must reach both destinations: they exist in the state from
// before the first page is polled, whichever run is killed when, so a
// later run delivers what an earlier one detected and could not send.
// A run started right after a kill takes over the killed run's leases at
// once (its holder lock went with it), though they last 15 s.
func TestOnceKilled(t *testing.T) {
	t.Parallel()
	kills := trials(6, 20)
	fig := newFigures(t, "1. crash: pollhook once killed, run again")
	fig.TrialsOf = "kills"
	w := newWorld(t, UpstreamOptions{Seed: 40, RealTime: true, Initial: 2000, PageDelay: 5 * time.Millisecond})
	w.rcv.SetLatency(time.Millisecond)
	rcv2, err := NewReceiver(testSecret, 41)
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(rcv2)
	t.Cleanup(func() {
		rcv2.Close()
		srv2.CloseClientConnections()
		srv2.Close()
	})
	// The default lease (15 s): the next run takes the killed one's leases
	// at once, since the killed process's holder lock went with it.
	cfg := w.config(setup{Also: srv2.URL + "/hook"})
	rng := rand.New(rand.NewPCG(40, 41))

	phases := map[string]int{}
	for range kills {
		run := startOnce(t, cfg)
		// Half the kills land in the first 600 ms: the first cycle,
		// before any delivery; the rest anywhere in 2.5 s.
		window := 2500
		if rng.IntN(2) == 0 {
			window = 600
		}
		pause(time.Duration(50+rng.IntN(window-50)) * time.Millisecond)
		phase := "after it ended"
		switch {
		case run.ProcessState != nil:
		case w.up.InFlight() > 0:
			phase = "fetch"
		case w.rcv.InFlight()+rcv2.InFlight() > 0:
			phase = "delivery"
		default:
			phase = "between (diff, commit, start)"
		}
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()
		phases[phase]++
		fig.Trials++
		for range 20 {
			w.up.Mutate(0)
		}
	}

	// Run again, twice at least (the second complete listing without a
	// record confirms its delete), until every event of the outbox has
	// reached both destinations (a run polls, then delivers what is due).
	var missing [2]int
	for run := 1; ; run++ {
		if _, errOut, code := cli(t, nil, "once", "-c", cfg); code > 1 {
			t.Fatalf("pollhook once: exit %d\n%s", code, errOut)
		}
		missing = [2]int{}
		ids := outbox(t, cfg)
		for i, rv := range []*Receiver{w.rcv, rcv2} {
			got := map[string]bool{}
			for _, d := range rv.Deliveries() {
				for _, ev := range d.Events {
					got[ev.ID] = true
				}
			}
			for _, id := range ids {
				if !got[id] {
					missing[i]++
				}
			}
		}
		if missing == [2]int{} && run >= 2 {
			break
		}
		if run == 4 {
			t.Fatalf("after %d runs to completion, %d and %d outbox events never reached app and app2", run, missing[0], missing[1])
		}
	}
	var results []Result
	for i, rv := range []*Receiver{w.rcv, rcv2} {
		for _, r := range []string{"inc", "snap"} {
			res := Check(w.up.Truth(), rv.Deliveries(), w.checkOptions(r))
			res.Resource = fmt.Sprintf("%s → app%d", r, i+1)
			results = append(results, res)
		}
	}
	requireClean(t, w, results)
	if s := rcv2.Stats(); s.BadSignatures > 0 || s.BadBodies > 0 {
		t.Errorf("app2: %d bad signatures, %d bad bodies", s.BadSignatures, s.BadBodies)
	}
	fig.add(w, results)
	var where []string
	for k, v := range phases {
		where = append(where, fmt.Sprintf("%d in %s", v, k))
	}
	sort.Strings(where)
	fig.Note = "2,000-record backfill into two destinations; kills landed: " + strings.Join(where, ", ")
}

// startOnce starts `pollhook once` on cfg, its output discarded but for
// errors, and returns it running.
func startOnce(t *testing.T, cfg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "once", "-c", cfg)
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errOut
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}
