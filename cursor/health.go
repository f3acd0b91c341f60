package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// writeKind is a kind of pipeline write, or read: its subject is a
// resource or a destination.
type writeKind struct {
	what    string // "commit of resource", "fan-out to destination", "delivery log of destination", …
	subject string
}

const (
	writeCommit   = "commit of resource"
	writeFanout   = "fan-out to destination"
	writeOutcomes = "delivery log of destination"
	// Reads that every cycle of a resource, or every delivery pass of a
	// destination, makes: a damaged file or a failing disk shows there
	// first.
	readResource = "read of resource"
	readPending  = "read of the deliveries of destination"
)

// writeHealth remembers, for each kind of pipeline write (the pages and
// cycle ends of a resource, a destination's fan-out, its delivery
// outcomes), whether its last attempt failed for want of storage. A
// one-row probe is no proof that the store takes writes: on a full disk it
// fits in the space the file already holds while pages of records do not.
// A second writeHealth does the same for the pipeline's reads: a damaged
// page of records fails every cycle of its resource while a probe of
// another page reads fine.
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
	if f := s.health.failures(); f != "" {
		return fmt.Errorf("write to state store %s: %s", s.loc, f)
	}
	return nil
}

// RetainResourceWrites forgets the write and read failures of resources
// not in resources: a resource taken out of the config writes no more, so
// its last failure would never clear.
func (s *sqlStore) RetainResourceWrites(resources []string) {
	drop := func(k writeKind) bool {
		return (k.what == writeCommit || k.what == readResource) && !slices.Contains(resources, k.subject)
	}
	s.health.forget(drop)
	s.reads.forget(drop)
}

// forgetDestinationWrites forgets the write and read failures of
// destination name.
func (s *sqlStore) forgetDestinationWrites(name string) {
	drop := func(k writeKind) bool {
		return (k.what == writeFanout || k.what == writeOutcomes || k.what == readPending) && k.subject == name
	}
	s.health.forget(drop)
	s.reads.forget(drop)
}

// noteRead notes the outcome of a pipeline read of kind and returns err.
func (s *sqlStore) noteRead(err error, kind writeKind) error {
	return s.reads.note(s.reads.next(), err, kind)
}

// failures describes the failing kinds of h, sorted, or "" when none.
func (h *writeHealth) failures() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) == 0 {
		return ""
	}
	parts := make([]string, 0, len(h.failed))
	for k, f := range h.failed {
		parts = append(parts, fmt.Sprintf("%s %s failing since %s: %s", k.what, k.subject, f.since.UTC().Format(time.RFC3339), f.err))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// Health says whether the store can serve: nil, or every reason it
// cannot, checked in this order —
//
//   - the file at the store's path is not the one the store writes: it was
//     deleted, or renamed away, or replaced by another (restored from a
//     backup, copied over) while the store was open. Writes go on into a
//     file that no one will open again; the store is healthy again only if
//     the same file comes back to the path;
//   - the last pipeline writes failed for want of storage ([SQLite.WriteErr]);
//   - the last pipeline reads of a resource (its state, the records a page
//     is compared with) or of a destination's deliveries failed with a
//     storage error: a damaged ("malformed") file, an I/O error. Each
//     clears when that read next succeeds;
//   - a one-row write does not commit ([SQLite.PingWrite]);
//   - a read of the resources' table does not answer.
func (s *SQLite) Health(ctx context.Context, now time.Time) error {
	if err := s.sameFile(); err != nil {
		return err
	}
	return s.sqlStore.Health(ctx, now)
}

// Health is every backend's part of Health: the pipeline's writes and
// reads, a one-row write, a read of the resources' table.
func (s *sqlStore) Health(ctx context.Context, now time.Time) error {
	if err := s.WriteErr(); err != nil {
		return err
	}
	if f := s.reads.failures(); f != "" {
		return fmt.Errorf("read from state store %s: %s", s.loc, f)
	}
	if err := s.PingWrite(ctx, now); err != nil {
		return err
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM resources`).Scan(&n); err != nil {
		return fmt.Errorf("read from state store %s: %w", s.loc, err)
	}
	return nil
}

// sameFile checks that the store's path still names the file the store
// opened.
func (s *SQLite) sameFile() error {
	fi, err := os.Stat(s.abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state file %s is gone: it was deleted or moved while pollhook runs, and what pollhook writes now goes to a file no one will open again; put it back, or stop pollhook and restore it from a backup", s.path)
	case err != nil:
		return fmt.Errorf("state file %s: %w", s.path, err)
	case s.file != nil && !os.SameFile(fi, s.file):
		return fmt.Errorf("state file %s was replaced by another file while pollhook runs: pollhook still writes the file it opened, which is no longer there; restart pollhook to use the new one", s.path)
	}
	return nil
}
