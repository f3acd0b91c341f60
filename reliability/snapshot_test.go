package reliability

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSnapshotGuard checks the delete guard of deletes: snapshot as
// pollhook implements it: a complete cycle whose deletes would exceed
// delete_guard (default 0.5) of the known ids deletes nothing and reports
// the count in pollhook_deletes_held_back, every cycle, for as long as it
// lasts; under the guard, the records missing from a listing are deleted
// by the next complete listing that misses them too; a real mass delete
// is emitted when the operator raises delete_guard (here by a SIGHUP
// reload).
func TestSnapshotGuard(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "4. snapshot delete guard")
	fig.TrialsOf = "episodes"
	w := newWorld(t, UpstreamOptions{Seed: 8, RealTime: true, Initial: 100})
	only := []string{"snap"}
	cfg := w.config(setup{Resources: only})
	p := startReady(t, cfg)
	waitCleanOf(t, w, only, 30*time.Second)
	heldBack := func() float64 { return p.metrics()[series("pollhook_deletes_held_back", "resource", "snap")] }
	deletes := func() int {
		n := 0
		for _, d := range w.rcv.Deliveries() {
			for _, ev := range d.Events {
				if strings.HasSuffix(ev.Type, ".deleted") {
					n++
				}
			}
		}
		return n
	}

	// 1. A glitch: the listing comes back empty for a few cycles.
	w.up.SetFault(FaultSpec{Kind: FaultEmpty})
	waitUntil(t, 20*time.Second, "the guard to hold back the empty listing", func() bool { return heldBack() == 100 })
	if n := cursors(t, cfg)["snap"].HeldDeletes; n != 100 {
		t.Errorf("pollhook cursors shows %d held deletes, want 100", n)
	}
	pause(2 * time.Second) // two more cycles, held back again
	w.up.ClearFaults()
	waitUntil(t, 20*time.Second, "a full listing to clear the guard", func() bool { return heldBack() == 0 })
	if n := deletes(); n != 0 {
		t.Fatalf("an empty listing deleted %d records", n)
	}
	fig.Trials++

	// 2. Deletes under the guard go out, at the second listing without
	// them.
	w.up.DeleteMany(0.3)
	waitCleanOf(t, w, only, 20*time.Second)
	if n := deletes(); n != 30 {
		t.Errorf("a 30%% delete: %d deleted events, want 30", n)
	}
	fig.Trials++

	// 3. A real mass delete above the guard is held back, cycle after
	// cycle, while other changes still go out.
	gone := len(w.up.DeleteMany(0.6))
	c := w.up.Create()
	waitUntil(t, 20*time.Second, "the guard to hold back the mass delete", func() bool { return heldBack() == float64(gone) })
	pause(2 * time.Second)
	if h := heldBack(); h != float64(gone) {
		t.Errorf("held back %g, want %d", h, gone)
	}
	if n := deletes(); n != 30 {
		t.Errorf("the mass delete went out under the guard: %d deleted events, want 30", n)
	}
	waitUntil(t, 20*time.Second, "the record created meanwhile to arrive", func() bool {
		for _, d := range w.rcv.Deliveries() {
			for _, ev := range d.Events {
				if ev.ObjectID == fmt.Sprint(c.ID) {
					return true
				}
			}
		}
		return false
	})
	if r := w.check("snap")[0]; len(r.Lost) != gone {
		t.Errorf("while held back: %d lost, want the %d held deletes only\n%s", len(r.Lost), gone, r)
	}

	// The operator raises the guard and reloads: the deletes go out, once.
	known := cursors(t, cfg)["snap"].Known
	w.config(setup{Resources: only, DeleteGuard: "0.9"})
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Contains(p.out.String(), "config reloaded") })
	waitCleanOf(t, w, only, 20*time.Second)
	if n := deletes(); n != 30+gone {
		t.Errorf("after raising delete_guard: %d deleted events, want %d", n, 30+gone)
	}
	if h := heldBack(); h != 0 {
		t.Errorf("held back %g after the deletes went out", h)
	}
	fig.Trials++

	w.finish(t, p, cfg, fig, 30*time.Second, only...)
	fig.Faults = w.up.Stats().FaultsInjected()
	fig.Note = fmt.Sprintf("empty listing: 100 of 100 held back, 0 deleted; 30%% delete: emitted by the second listing without them; %d of %d (%.0f%%) held back until delete_guard 0.9 + SIGHUP", gone, known, 100*float64(gone)/float64(known))
}

// waitCleanOf waits until Check finds nothing wrong with resources.
func waitCleanOf(t *testing.T, w *world, resources []string, timeout time.Duration) {
	t.Helper()
	var last []Result
	defer func() {
		if t.Failed() {
			for _, r := range last {
				t.Log(r.String())
			}
		}
	}()
	waitUntil(t, timeout, "every change to arrive", func() bool {
		last = w.check(resources...)
		for _, r := range last {
			if !r.OK() {
				return false
			}
		}
		return true
	})
}

// TestSnapshotGlitchRecovers leaves one record out of the listing for a
// few cycles, as a lagging index does: pollhook cannot tell it from a
// delete, and reports it deleted; when the record is back, unchanged, it
// must be reported again, under a new id, so the receiver converges.
func TestSnapshotGlitchRecovers(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "4. snapshot: a record left out, then back")
	fig.TrialsOf = "glitches"
	w := newWorld(t, UpstreamOptions{Seed: 9, RealTime: true, Initial: 20})
	only := []string{"snap"}
	cfg := w.config(setup{Resources: only})
	p := startReady(t, cfg)
	waitCleanOf(t, w, only, 30*time.Second)

	w.up.SetFault(FaultSpec{Kind: FaultHide, IDs: []int{7}})
	waitUntil(t, 20*time.Second, "the left-out record's delete", func() bool {
		for _, d := range w.rcv.Deliveries() {
			for _, ev := range d.Events {
				if ev.Type == "item.deleted" && ev.ObjectID == "7" {
					return true
				}
			}
		}
		return false
	})
	w.up.ClearFaults()
	fig.Trials, fig.Faults = 1, w.up.Stats().FaultsInjected()
	waitUntil(t, 20*time.Second, "the receiver to see record 7 again", func() bool {
		return len(w.check("snap")[0].NotConverged) == 0
	})
	w.drain(p, cfg, only, 30*time.Second)
	if code := p.stop(); code != 0 {
		t.Errorf("pollhook exited %d after SIGTERM\n%s", code, p.tail())
	}
	r := w.check("snap")[0]
	t.Log(r.String())
	// The delete of a record that never left is the upstream's doing; it
	// is the only thing the checker may find.
	if len(r.Lost)+len(r.Duplicates)+len(r.NotConverged) > 0 || len(r.Spurious) != 1 {
		t.Errorf("want exactly one spurious event, the delete of record 7, and nothing else:\n%s", r)
	}
	fig.add(w, []Result{r})
	fig.Note = "the left-out record is reported deleted (1 spurious event, the upstream's doing), then created again under a new id: converged"
}
