package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// actionsConfig is a config of resource r0, polled every hour from up
// (so that only PollNow polls it), delivered to dest with one retry
// 100 ms after a failure.
func actionsConfig(t *testing.T, dir, up, dest string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`state:
  path: %s
sources:
  - name: up
    base_url: %s
resources:
  - name: r0
    object: thing
    url: /r0
    schedule: 1h
    dates: { updated_field: updated, updated_format: rfc3339 }
destinations:
  - name: app
    url: %s
    retry: { schedule: [100ms] }
`, filepath.Join(dir, "state.db"), up, dest)
	return parseConfig(t, dir, yaml)
}

// TestActions: the operator's actions on a running daemon — poll now,
// replay dead deliveries, enable a destination a 410 disabled, reset a
// cursor — take effect at once, and refuse what they cannot do.
func TestActions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := newUpstream()
	up.set("/r0", 1)
	us := httptest.NewServer(up)
	defer us.Close()
	rcv := newReceiver(t)
	var status atomic.Int64
	status.Store(http.StatusInternalServerError)
	rcv.status = func([]byte) int { return int(status.Load()) }
	cfg := actionsConfig(t, t.TempDir(), us.URL, rcv.URL)
	rt, _, _ := start(t, cfg, "daemon", time.Minute)
	cycles := func() int64 {
		st, err := rt.store.ResourceState(ctx, "r0")
		if err != nil {
			t.Fatal(err)
		}
		return st.Completed
	}
	waitFor(t, "the first cycle", 10*time.Second, func() bool { return cycles() == 1 })
	// The daemon samples the backlogs as it starts, at a whole minute.
	waitFor(t, "a backlog sample", 10*time.Second, func() bool {
		h, err := rt.store.BacklogHistory(ctx, "", time.Time{})
		return err == nil && len(h) == 1 && h[0].Destination == "app" && h[0].At.Equal(h[0].At.Truncate(time.Minute))
	})
	if st, ok := rt.Schedule("r0"); !ok || st.Polling || !st.Next.After(time.Now()) || st.Next.After(time.Now().Add(time.Hour)) {
		t.Errorf("schedule of r0 = %+v, %v; want idle, the next cycle within the hour", st, ok)
	}

	// Poll now: the change is polled at once, and its delivery dies.
	up.set("/r0", 2)
	if err := rt.PollNow("r0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the polled cycle", 10*time.Second, func() bool { return cycles() == 2 })
	backlog := func() cursor.Backlog {
		b, err := rt.store.Backlog(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	waitFor(t, "the delivery to die", 10*time.Second, func() bool { return backlog().Dead == 1 })

	// Replay: the dead delivery goes out again, now to a receiver that
	// takes it.
	status.Store(http.StatusOK)
	n, err := rt.Replay(ctx, "app", "")
	if err != nil || n != 1 {
		t.Fatalf("Replay of the dead = %d, %v; want 1", n, err)
	}
	waitFor(t, "the replayed delivery", 10*time.Second, func() bool { ids, _ := rcv.got(); return len(ids) == 1 })
	if b := backlog(); b.Dead != 0 || b.Pending != 0 {
		t.Errorf("backlog after the replay = %+v, want nothing left", b)
	}

	// A 410 disables the destination; Enable sends what waited.
	status.Store(http.StatusGone)
	up.set("/r0", 3)
	if err := rt.PollNow("r0"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 410 to disable app", 10*time.Second, func() bool { return backlog().Disabled })
	status.Store(http.StatusOK)
	if err := rt.EnableDestination(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery after enable", 10*time.Second, func() bool { ids, _ := rcv.got(); return len(ids) == 2 })

	// Reset: the watermark moves back, and stays there until a cycle.
	to := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := rt.ResetCursor(ctx, "r0", to); err != nil {
		t.Fatal(err)
	}
	if st, _ := rt.store.ResourceState(ctx, "r0"); !st.Watermark.Equal(to) {
		t.Errorf("watermark after reset = %v, want %v", st.Watermark, to)
	}

	// What cannot be done says why.
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"poll an unknown resource", rt.PollNow("nope"), "no such resource"},
		{"reset an unknown resource", rt.ResetCursor(ctx, "nope", to), "no such resource"},
		{"replay to an unknown destination", errOf(rt.Replay(ctx, "nope", "")), "no such destination"},
		{"replay an unknown event", errOf(rt.Replay(ctx, "app", "evt_nope")), "unknown event"},
		{"replay to an unknown subscription", errOf(rt.Replay(ctx, "hook:nope", "")), "no such destination"},
		{"enable an unknown destination", rt.EnableDestination(ctx, "nope"), "no such destination"},
		{"enable a subscription", rt.EnableDestination(ctx, "hook:k"), "verified"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error saying %q", tt.name, tt.err, tt.want)
		}
	}
	if err := errOf(rt.Replay(ctx, "app", "evt_nope")); !errors.Is(err, cursor.ErrUnknownEvent) {
		t.Errorf("replay of an unknown event: %v, want cursor.ErrUnknownEvent", err)
	}
}

func errOf(_ int64, err error) error { return err }

// TestActionsElsewhere: a process that does not hold a resource's lease
// neither polls nor resets it, and says who does.
func TestActionsElsewhere(t *testing.T) {
	t.Parallel()
	up := newUpstream()
	us := httptest.NewServer(up)
	defer us.Close()
	cfg := actionsConfig(t, t.TempDir(), us.URL, "stdout")
	a, _, _ := start(t, cfg, "a", time.Minute)
	waitFor(t, "a to hold r0", 10*time.Second, func() bool { return a.PollNow("r0") == nil })
	b, _, _ := start(t, cfg, "b", time.Minute)
	waitFor(t, "b to see who holds r0", 10*time.Second, func() bool {
		err := b.PollNow("r0")
		return err != nil && strings.Contains(err.Error(), a.Holder())
	})
	if err := b.ResetCursor(context.Background(), "r0", time.Time{}); err == nil || !strings.Contains(err.Error(), a.Holder()) {
		t.Errorf("reset from the process without the lease: %v, want an error naming %s", err, a.Holder())
	}
}
