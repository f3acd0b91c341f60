package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// writeKind is a kind of pipeline write: its subject is a resource or a
// destination.
type writeKind struct {
	what    string // "commit of resource", "fan-out to destination", "delivery log of destination"
	subject string
}

const (
	writeCommit   = "commit of resource"
	writeFanout   = "fan-out to destination"
	writeOutcomes = "delivery log of destination"
)

// writeHealth remembers, for each kind of pipeline write (the pages and
// cycle ends of a resource, a destination's fan-out, its delivery
// outcomes), whether its last attempt failed for want of storage. A
// one-row probe is no proof that the store takes writes: on a full disk it
// fits in the space the file already holds while pages of records do not.
type writeHealth struct {
	// isStorage reports whether an error says the store cannot store.
	isStorage func(error) bool

	mu     sync.Mutex
	seq    uint64                     // numbers the writes, in commit order
	last   map[writeKind]uint64       // the number of each kind's last write noted
	failed map[writeKind]writeFailure // kinds whose last write failed
}

type writeFailure struct {
	err   error
	since time.Time
}

// next numbers a write. Taken while the write holds the one writer
// connection, the numbers follow the order of the commits.
func (h *writeHealth) next() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return h.seq
}

// note records the outcome of write seq of kinds and returns err. A
// success clears the kinds; a storage error marks them failed; any other
// error (a cancelled context, a constraint) says nothing of storage and
// changes nothing. An outcome older than one already noted for a kind is
// ignored for it.
func (h *writeHealth) note(seq uint64, err error, kinds ...writeKind) error {
	if err != nil && !h.isStorage(err) {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last, h.failed = map[writeKind]uint64{}, map[writeKind]writeFailure{}
	}
	for _, k := range kinds {
		if seq < h.last[k] {
			continue
		}
		h.last[k] = seq
		if err == nil {
			delete(h.failed, k)
			continue
		}
		f, ok := h.failed[k]
		if !ok {
			f.since = time.Now()
		}
		f.err = err
		h.failed[k] = f
	}
	return err
}

// forget drops what is known of the kinds drop accepts.
func (h *writeHealth) forget(drop func(writeKind) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.last {
		if drop(k) {
			delete(h.last, k)
			delete(h.failed, k)
		}
	}
}

// sqliteStorageError reports whether err is SQLite saying the file cannot
// be written: the disk is full, the file or its directory is read-only or
// gone, an I/O error, a damaged file.
func sqliteStorageError(err error) bool {
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

// pipelineTx runs fn in a write transaction, as inTx, and notes its
// outcome for kinds.
func (s *sqlStore) pipelineTx(ctx context.Context, fn func(*sql.Tx) error, kinds ...writeKind) error {
	var seq uint64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		seq = s.health.next()
		return fn(tx)
	})
	if seq == 0 { // the transaction did not begin
		seq = s.health.next()
	}
	return s.health.note(seq, err, kinds...)
}

// WriteErr returns an error naming every kind of pipeline write whose last
// attempt failed for want of storage (see [SQLite.PingWrite] for why a
// probe alone does not tell), or nil. A kind clears when its next write
// succeeds: after space returns, at a resource's next page or a
// destination's next delivery; or when its resource or destination goes
// (see [SQLite.RetainResourceWrites] and [SQLite.DeleteDestination]).
func (s *sqlStore) WriteErr() error {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) == 0 {
		return nil
	}
	parts := make([]string, 0, len(h.failed))
	for k, f := range h.failed {
		parts = append(parts, fmt.Sprintf("%s %s failing since %s: %s", k.what, k.subject, f.since.UTC().Format(time.RFC3339), f.err))
	}
	sort.Strings(parts)
	return fmt.Errorf("write to state store %s: %s", s.loc, strings.Join(parts, "; "))
}

// RetainResourceWrites forgets the write failures of resources not in
// resources: a resource taken out of the config writes no more, so its
// last failure would never clear.
func (s *sqlStore) RetainResourceWrites(resources []string) {
	s.health.forget(func(k writeKind) bool {
		return k.what == writeCommit && !slices.Contains(resources, k.subject)
	})
}

// forgetDestinationWrites forgets the write failures of destination name.
func (s *sqlStore) forgetDestinationWrites(name string) {
	s.health.forget(func(k writeKind) bool {
		return (k.what == writeFanout || k.what == writeOutcomes) && k.subject == name
	})
}
