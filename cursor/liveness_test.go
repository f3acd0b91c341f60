//go:build unix

package cursor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLeasesOfAnEndedProcess: two processes share a SQLite state. When
// the one holding a lease ends without releasing it (its holder file's
// lock goes with it, as when it is killed), the other takes the lease at
// its next AcquireLeases, with a greater fence, rather than when it
// expires. A holder with no file is taken to be alive.
func TestLeasesOfAnEndedProcess(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	open := func() *SQLite {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b, c := open(), open(), open()
	if err := a.Register("host:1:aaaaaa"); err != nil {
		t.Fatal(err)
	}
	if err := b.Register("host:2:bbbbbb"); err != nil {
		t.Fatal(err)
	}
	if err := b.Register("host:2:other"); err == nil {
		t.Error("a second Register on one store succeeded")
	}
	now := time.Now()
	take := func(s *SQLite, holder, name string) Lease {
		t.Helper()
		ls, err := s.AcquireLeases(ctx, holder, []string{name}, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		return ls[0]
	}
	first := take(a, "host:1:aaaaaa", "resource/x")
	if l := take(b, "host:2:bbbbbb", "resource/x"); l.Holder != "host:1:aaaaaa" {
		t.Fatalf("b took a lease a holds and runs: %+v", l)
	}
	// c never registered: nothing tells it ended.
	take(c, "host:3:cccccc", "resource/y")
	if l := take(b, "host:2:bbbbbb", "resource/y"); l.Holder != "host:3:cccccc" {
		t.Fatalf("b took the lease of a holder without a file: %+v", l)
	}

	// a ends without releasing anything: its lock goes with its file
	// descriptor.
	a.locks.own.Close()
	// What b reads of the leases already counts a out, so that b shares
	// out the work without a (a takeover in one renewal, not two).
	all, err := b.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if l.Holder == "host:1:aaaaaa" && l.Expires.After(now) {
			t.Fatalf("Leases after a ended still shows its live lease %+v", l)
		}
	}
	l := take(b, "host:2:bbbbbb", "resource/x")
	if l.Holder != "host:2:bbbbbb" || l.Fence <= first.Fence {
		t.Fatalf("after a ended, b got %+v; want the lease with a fence above %d", l, first.Fence)
	}
	if _, err := os.Stat(filepath.Join(holdersDir(path), "host:1:aaaaaa")); !os.IsNotExist(err) {
		t.Errorf("the ended holder's file is still there: %v", err)
	}
	// A write under a's lease is refused.
	if _, err := a.BeginCycle(ctx, "x", first); err == nil {
		t.Error("a cycle began under the lease of the process that ended")
	}

	// A process that starts after one ended holding a lease takes it at
	// once too.
	e := open()
	if err := e.Register("host:5:eeeeee"); err != nil {
		t.Fatal(err)
	}
	take(e, "host:5:eeeeee", "resource/z")
	e.locks.own.Close()
	f := open()
	if err := f.Register("host:6:ffffff"); err != nil {
		t.Fatal(err)
	}
	if l := take(f, "host:6:ffffff", "resource/z"); l.Holder != "host:6:ffffff" {
		t.Fatalf("a process started after the holder ended got %+v; want the lease", l)
	}

	// A file left by a holder that ended holding nothing goes at the next
	// Register; Close removes the process's own.
	stale := filepath.Join(holdersDir(path), "host:9:gone")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d := open()
	if err := d.Register("host:4:dddddd"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("a stale holder file is still there after Register: %v", err)
	}
	if _, err := os.Stat(filepath.Join(holdersDir(path), "host:2:bbbbbb")); err != nil {
		t.Errorf("Register removed the file of a holder that runs: %v", err)
	}
	d.Close()
	if _, err := os.Stat(filepath.Join(holdersDir(path), "host:4:dddddd")); !os.IsNotExist(err) {
		t.Errorf("Close left the holder's file: %v", err)
	}
}

// TestRegisterRace: the file a process makes for its holder is removed by
// another before it is locked (taken for a holder that ended): Register
// makes a new one, which is there and locked.
func TestRegisterRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	removed := 0
	beforeLock = func(p string) {
		if removed == 0 {
			removed++
			os.Remove(p)
		}
	}
	defer func() { beforeLock = nil }()
	if err := s.Register("host:1:racy"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(holdersDir(path), "host:1:racy")
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("the holder's file is not there: %v", err)
	}
	defer f.Close()
	if locked, err := tryLock(f); err != nil || locked {
		t.Errorf("the holder's file is not locked (lock taken: %v, %v)", locked, err)
	}
}
