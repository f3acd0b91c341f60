package reliability

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size (a mount -o size value, "8m") on a
// new directory, or skips t when that is not permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a size-capped tmpfs here (needs root and mount): %v %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full, and returns
// its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// TestDiskFull fills the file system of the state file while the daemon
// runs, with deliveries pending and the upstream changing: the daemon
// keeps running and reports itself unready, loses nothing it had
// accepted, and once space returns is ready again and delivers
// everything.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	needBinary(t)
	// Room for the state of this run (about 6 MiB with the WAL: records
	// of 1 KB, kept as content, and events that carry them twice, data
	// and previous) and as much again: the filler takes it all, and
	// removing it must leave enough for pollhook to catch up.
	mnt := mountTmpfs(t, "12m")
	fig := newFigures(t, "6. disk full under the state file")
	fig.TrialsOf = "outages"
	w := newWorld(t, UpstreamOptions{Seed: 17, RealTime: true, Initial: 60, Pad: 1000})
	cfg := w.config(setup{StatePath: filepath.Join(mnt, "state.db")})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)

	// Events accepted (in the outbox) but not yet delivered when the disk
	// fills.
	w.rcv.Fail(Fail5xx, -1)
	w.up.Burst(40)
	waitUntil(t, 20*time.Second, "the changes to be committed", func() bool {
		return p.metrics()[series("pollhook_outbox_backlog", "destination", "app")] > 0
	})
	base := p.metrics()
	filler := fill(t, mnt)
	w.rcv.Recover()
	for range 5 {
		w.up.Burst(100)
	}
	waitUntil(t, 30*time.Second, "cycles to fail on the full disk", func() bool {
		m := p.metrics()
		for _, r := range []string{"inc", "snap"} {
			k := series("pollhook_polls_total", "resource", r, "outcome", "error")
			if m[k] <= base[k] {
				return false
			}
		}
		return true
	})
	// /readyz, every 100 ms for 2 s while the disk is full: each answer
	// must be 503.
	answers := map[string]int{}
	for range 20 {
		code, body, err := p.get("/readyz")
		if err != nil {
			t.Fatalf("/readyz: %v", err)
		}
		if code == http.StatusServiceUnavailable {
			body = "not ready"
		}
		answers[fmt.Sprintf("%d %s", code, strings.TrimSpace(body))]++
		pause(100 * time.Millisecond)
	}
	t.Run("readyz", func(t *testing.T) {
		if n := answers["503 not ready"]; n != 20 {
			t.Errorf("/readyz answered %v while the disk was full, want 503 each time", answers)
		}
	})
	if !p.running() {
		t.Fatalf("pollhook exited on a full disk: %v\n%s", p.err, p.tail())
	}
	if code, _, _ := p.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz answered %d on a full disk", code)
	}
	fig.Trials = 1
	m := p.metrics()
	for _, r := range []string{"inc", "snap"} {
		k := series("pollhook_polls_total", "resource", r, "outcome", "error")
		fig.Faults += int(m[k] - base[k])
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitClean(t, w, 60*time.Second)
	// Ready again once each kind of write that failed has succeeded: for
	// a resource, at its next cycle after its back-off.
	waitUntil(t, 30*time.Second, "/readyz to answer 200 after space returned", func() bool {
		code, _, _ := p.get("/readyz")
		return code == http.StatusOK
	})
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	fig.Note = fmt.Sprintf("12 MiB tmpfs filled; %d cycles failed meanwhile; /readyz while full, 20 probes: %v; 200 after", fig.Faults, answers)
}

// TestReadOnlyState starts the daemon on a state file whose file system
// is mounted read-only: it must refuse to run, saying why, and once the
// file system is writable again it delivers every change made meanwhile.
func TestReadOnlyState(t *testing.T) {
	t.Parallel()
	needBinary(t)
	mnt := mountTmpfs(t, "16m")
	fig := newFigures(t, "6. state file on a read-only file system")
	fig.TrialsOf = "starts"
	w := newWorld(t, UpstreamOptions{Seed: 18, RealTime: true, Initial: 30})
	cfg := w.config(setup{StatePath: filepath.Join(mnt, "state.db")})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)
	if code := p.stop(); code != 0 {
		t.Fatalf("pollhook exited %d after SIGTERM\n%s", code, p.tail())
	}

	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v %s", err, out)
	}
	for range 20 {
		w.up.Step()
	}
	p = start(t, cfg)
	exited := false
	waitUntil(t, 15*time.Second, "pollhook to refuse the read-only state", func() bool {
		exited = !p.running()
		return exited || strings.Contains(p.out.String(), "listening")
	})
	fig.Trials = 1
	if !exited {
		code, body, _ := p.get("/readyz")
		t.Errorf("pollhook runs on a read-only state file; /readyz: %d %s", code, body)
		p.kill()
	} else if code := p.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(p.out.String(), "state") {
		t.Errorf("exit %d, want 1 with a message about the state file:\n%s", code, p.tail())
	}
	refusal := strings.TrimSpace(p.tail())

	if out, err := exec.Command("mount", "-o", "remount,rw", mnt).CombinedOutput(); err != nil {
		t.Fatalf("remount read-write: %v %s", err, out)
	}
	p = startReady(t, cfg)
	waitClean(t, w, 30*time.Second)
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	if i := strings.LastIndex(refusal, "\n"); i >= 0 {
		refusal = refusal[i+1:]
	}
	fig.Note = "refused with: " + refusal
	t.Log(fig.Note)
}
