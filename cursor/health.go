package cursor

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// writeHealth remembers, for each kind of pipeline write (a page of one
// resource, a cycle's end, a destination's fan-out, delivery outcomes),
// whether its last attempt failed for want of storage. A one-row probe
// is no proof that the store takes writes: on a full disk it fits in the
// space the file already holds while pages of records do not.
type writeHealth struct {
	mu     sync.Mutex
	failed map[string]writeFailure // by kind of write
}

type writeFailure struct {
	err   error
	since time.Time
}

// note records the outcome of a write of kind and returns err. A success
// clears that kind; a storage error marks it failed; any other error (a
// cancelled context, a constraint) says nothing of storage and changes
// nothing.
func (h *writeHealth) note(kind string, err error) error {
	if err != nil && !storageError(err) {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		delete(h.failed, kind)
	case h.failed == nil:
		h.failed = map[string]writeFailure{kind: {err, time.Now()}}
	default:
		f, ok := h.failed[kind]
		if !ok {
			f.since = time.Now()
		}
		f.err = err
		h.failed[kind] = f
	}
	return err
}

// storageError reports whether err is SQLite saying the file cannot be
// written: the disk is full, the file or its directory is read-only or
// gone, an I/O error, a damaged file.
func storageError(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff { // the primary result code
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// WriteErr returns an error naming every kind of pipeline write whose last
// attempt failed for want of storage (see [Store.PingWrite] for why a
// probe alone does not tell), or nil. A kind clears when its next write
// succeeds: after space returns, at the next page, cycle or delivery.
func (s *Store) WriteErr() error {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) == 0 {
		return nil
	}
	kinds := make([]string, 0, len(h.failed))
	for k := range h.failed {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		f := h.failed[k]
		parts[i] = fmt.Sprintf("%s failing since %s: %s", k, f.since.UTC().Format(time.RFC3339), f.err)
	}
	return fmt.Errorf("write to state store %s: %s", s.path, strings.Join(parts, "; "))
}
