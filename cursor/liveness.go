package cursor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A SQLite state is on one host (WAL mode needs memory shared between the
// processes that open it), so a process can tell whether another lease
// holder still runs, without waiting for its leases to expire: every
// process that registers its holder name holds an exclusive lock on the
// file <state>-holders/<holder> for as long as it runs, and the kernel
// releases the lock when the process ends, however it ends (SIGKILL, a
// crash, the container stopped). A holder whose file can be locked is
// gone: its leases are released at once, and the next AcquireLeases of
// another holder takes them (with a greater fence, as any lease that
// changes hands). A holder without a file (an older pollhook, a process
// that could not make one) is taken to be alive: its leases expire as
// they always do.

// holderLocks is a SQLite store's part in that: the lock of this
// process's holder, and the directory of every holder's.
type holderLocks struct {
	mu     sync.Mutex
	dir    string
	holder string
	own    *os.File // locked while the process runs; nil before Register
}

// holdersDir is the directory of the holder files of the state at path.
func holdersDir(path string) string { return path + "-holders" }

// Register names the lease holder of this process and locks its file,
// until Close. A store opened only to read (a CLI command) does not
// register. It also removes the files of holders that are gone. An error
// leaves the store usable: another process then waits for this one's
// leases to expire after it ends, as it would on PostgreSQL.
func (s *SQLite) Register(holder string) error {
	if holder == "" || strings.ContainsAny(holder, `/\`) || holder == "." || holder == ".." {
		return fmt.Errorf("register lease holder %q: not a usable name", holder)
	}
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if s.locks.own != nil {
		return fmt.Errorf("register lease holder %s: %s is registered already", holder, s.locks.holder)
	}
	dir := holdersDir(s.abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("register lease holder %s: %w", holder, err)
	}
	f, err := lockNew(filepath.Join(dir, holder))
	if err != nil {
		return fmt.Errorf("register lease holder %s: %w", holder, err)
	}
	s.locks.dir, s.locks.holder, s.locks.own = dir, holder, f
	// The holders that ended: their leases released, their files gone.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	for _, e := range entries {
		if e.Name() != holder {
			if err := s.reap(context.Background(), e.Name()); err != nil {
				return fmt.Errorf("register lease holder %s: %w", holder, err)
			}
		}
	}
	return nil
}

// beforeLock, when set (by tests), runs between making a holder file and
// locking it.
var beforeLock func(path string)

// lockNew creates and locks the file at path. Another process may find
// it unlocked in the moment between the two, take it for a holder that
// ended and remove it: the lock is then on a file no longer at path, and
// a new one is made.
func lockNew(path string) (*os.File, error) {
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if beforeLock != nil {
			beforeLock(path)
		}
		locked, err := tryLock(f)
		if err == nil && !locked {
			err = errors.New("another process holds its lock")
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		held, err1 := f.Stat()
		there, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, there) {
			return f, nil
		}
		f.Close()
	}
	return nil, errors.New("its file was removed as soon as it was made, three times")
}

// reap releases the leases of holder if it is gone: if it has a file
// that no process holds locked. The file is removed after the leases are
// released, so that a process ending between the two leaves the file for
// the next one to find. The caller holds s.locks.mu.
func (s *SQLite) reap(ctx context.Context, holder string) error {
	if holder == "" || strings.ContainsAny(holder, `/\`) || holder == "." || holder == ".." {
		return nil
	}
	path := filepath.Join(s.locks.dir, holder)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil // no file: nothing tells it is gone
	}
	defer f.Close()
	if locked, err := tryLock(f); err != nil || !locked {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE leases SET expires_at = 0 WHERE holder = ? AND expires_at > 0`, holder); err != nil {
		return fmt.Errorf("release the leases of %s, which ended: %w", holder, err)
	}
	os.Remove(path)
	return nil
}

// releaseGone releases the leases held by holders other than holder that
// are gone (see Register). It does nothing before Register.
func (s *SQLite) releaseGone(ctx context.Context, holder string, now time.Time) error {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if s.locks.own == nil {
		return nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT holder FROM leases WHERE holder <> ? AND expires_at > ?`, holder, nanos(now))
	if err != nil {
		return err
	}
	var others []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			rows.Close()
			return err
		}
		others = append(others, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, h := range others {
		if err := s.reap(ctx, h); err != nil {
			return err
		}
	}
	return nil
}

// AcquireLeases is [sqlStore.AcquireLeases], after the leases of holders
// that are gone were released (see Register).
func (s *SQLite) AcquireLeases(ctx context.Context, holder string, names []string, ttl time.Duration, now time.Time) ([]Lease, error) {
	if err := s.releaseGone(ctx, holder, now); err != nil {
		return nil, fmt.Errorf("acquire leases: release the leases of processes that ended: %w", err)
	}
	return s.sqlStore.AcquireLeases(ctx, holder, names, ttl, now)
}

// Leases is [sqlStore.Leases], after the leases of holders that are gone
// were released (see Register): a process that shares out the work by
// what Leases reports counts an ended holder out at once, rather than at
// its next AcquireLeases.
func (s *SQLite) Leases(ctx context.Context) ([]Lease, error) {
	s.locks.mu.Lock()
	holder := s.locks.holder
	s.locks.mu.Unlock()
	if err := s.releaseGone(ctx, holder, time.Now()); err != nil {
		return nil, fmt.Errorf("read leases: release the leases of processes that ended: %w", err)
	}
	return s.sqlStore.Leases(ctx)
}

// Close closes the store and gives up this process's holder file.
func (s *SQLite) Close() error {
	err := s.sqlStore.Close()
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if f := s.locks.own; f != nil {
		os.Remove(f.Name())
		f.Close()
		s.locks.own = nil
	}
	return err
}
