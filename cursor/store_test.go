package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"
)

// The tests of this package are those of SQLite itself: its file, its
// schema, its failures. What every backend does is tested by the
// conformance suite (conformance_test.go, package storetest).

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func event(resource, id, typ string) Event {
	return Event{ID: id, Type: typ, Resource: resource, Source: "keap", Object: "contact", ObjectID: id,
		OccurredAt: t0, DetectedAt: t0.Add(time.Minute), Data: []byte(`{"id":"` + id + `"}`)}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

// resourceLease acquires the lease of resource that these tests write
// under.
func resourceLease(t testing.TB, s *SQLite, resource string) Lease {
	t.Helper()
	ls, err := s.AcquireLeases(context.Background(), "test", []string{ResourceLease(resource)}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ls[0]
}

// page is a page of resource in cycle, under its lease, with a record of
// each of ids.
func page(t testing.TB, s *SQLite, resource string, cycle int64, ids ...string) Page {
	t.Helper()
	p := Page{Resource: resource, Cycle: cycle, Lease: resourceLease(t, s, resource)}
	for _, id := range ids {
		p.Records = append(p.Records, SeenRecord{ID: id, Seen: Seen{Updated: t0, Hash: "h-" + id}})
	}
	return p
}

// cycle runs a complete cycle of resource that sees ids and moves the
// watermark to wm.
func cycle(t testing.TB, s *SQLite, resource string, wm time.Time, ids ...string) {
	t.Helper()
	ctx := context.Background()
	lease := resourceLease(t, s, resource)
	n, err := s.BeginCycle(ctx, resource, lease)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPage(ctx, page(t, s, resource, n, ids...)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishCycle(ctx, Finish{Resource: resource, Cycle: n, Lease: lease, Watermark: wm}); err != nil {
		t.Fatal(err)
	}
}

func eventIDs(t testing.TB, s *SQLite) []string {
	t.Helper()
	out := []string{}
	if err := s.EachEvent(context.Background(), EventFilter{}, func(e Event) error {
		out = append(out, e.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func userVersion(t testing.TB, s *SQLite) int {
	t.Helper()
	var v int
	if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenReopen: Open makes the file's directory, and reopening a file
// applies no migration twice.
func TestOpenReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested", "dir", "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path || s.Location() != path {
		t.Errorf("Path() = %q, Location() = %q, want %q", s.Path(), s.Location(), path)
	}
	cycle(t, s, "contacts", t0, "1", "2")
	want, err := s.ResourceState(ctx, "contacts")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if v := userVersion(t, s); v != len(migrations) {
			t.Errorf("schema version after reopen = %d, want %d", v, len(migrations))
		}
		if got, err := s.ResourceState(ctx, "contacts"); err != nil || got != want {
			t.Errorf("state after reopen = %+v, %v; want %+v", got, err, want)
		}
		s.Close()
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    string
		is      error
	}{
		{
			name: "newer schema",
			prepare: func(t *testing.T, path string) {
				s, err := Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				rawExec(t, path, fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1))
			},
			want: fmt.Sprintf("file has schema version %d, this pollhook knows up to %d", len(migrations)+1, len(migrations)),
			is:   ErrSchemaTooNew,
		},
		{
			name:    "another application's database",
			prepare: func(t *testing.T, path string) { rawExec(t, path, "CREATE TABLE users (id INTEGER)") },
			want:    "not a pollhook state store",
		},
		{
			name: "not a database",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte(strings.Repeat("not sqlite ", 100)), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "file is not a database",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.prepare(t, path)
			s, err := Open(ctx, path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), "open state store "+path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to name the file and say %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error = %v, want errors.Is %v", err, tt.is)
			}
		})
	}
}

func rawExec(t *testing.T, path, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	cycle(t, s, "contacts", t0, "1", "2")
	p := page(t, s, "contacts", 1)
	p.Events = []Event{event("contacts", "a", "contact.created")}
	if err := s.CommitPage(ctx, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup", "copy.db")
	if err := s.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	// Writes after the backup do not reach the copy.
	cycle(t, s, "contacts", t0.Add(time.Hour), "1", "2", "3")

	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st, err := c.ResourceState(ctx, "contacts"); err != nil || st.Known != 2 || !st.Watermark.Equal(t0) || st.Completed != 1 {
		t.Errorf("copy state = %+v, %v", st, err)
	}
	if got := eventIDs(t, c); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("copy events = %v", got)
	}

	err = s.Backup(ctx, path)
	if !errors.Is(err, os.ErrExist) {
		t.Errorf("backup over an existing file: %v, want os.ErrExist", err)
	}
}

func TestTimes(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		in, want time.Time
	}{
		{time.Time{}, time.Time{}},
		{t0, t0},
		{t0.In(paris), t0},
		{time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 1, time.UTC)},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), maxTime},
		{time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), minTime},
	}
	for _, tt := range tests {
		got := fromNanos(nanos(tt.in))
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("round trip of %v = %v, want %v in UTC", tt.in, got, tt.want)
		}
	}
	if !(nanos(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) > nanos(t0)) {
		t.Error("a far-future time does not sort after today")
	}
}

func TestPingWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatalf("PingWrite on a writable store: %v", err)
	}
	// Another process holds the write lock: reads still work, the write
	// probe fails (here at its deadline, before the busy timeout).
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := s.Ping(short); err != nil {
		t.Fatalf("Ping (a read) while another holds the write lock: %v", err)
	}
	if err := s.PingWrite(short, t0); err == nil {
		t.Fatal("PingWrite succeeded while another process held the write lock")
	}
	conn.ExecContext(ctx, "ROLLBACK")
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatalf("PingWrite after the lock was released: %v", err)
	}
}

// TestWriteErrFullDisk: on a full disk the one-row probe still commits
// (its row exists already) while a page of records cannot; WriteErr says
// so until a page of that resource commits again. The disk is made full
// with max_page_count, which fails a growing write with SQLITE_FULL as a
// full file system does.
func TestWriteErrFullDisk(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatal(err)
	}
	cycle(t, s, "contacts", time.Time{}, ids("c", 10)...)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr on a healthy store: %v", err)
	}
	// The pages take their leases before the disk is full.
	big := page(t, s, "contacts", 2, ids("big", 2000)...)
	for i := range big.Records {
		big.Records[i].Hash = strings.Repeat("h", 200)
	}
	small := page(t, s, "contacts2", 1, "x")
	restore := diskFull(t, s)
	if err := s.CommitPage(ctx, big); err == nil || !sqliteStorageError(err) {
		t.Fatalf("CommitPage past max_page_count: %v, want SQLITE_FULL", err)
	}
	if err := s.PingWrite(ctx, t0.Add(time.Second)); err != nil {
		t.Fatalf("the probe failed too, so this test shows nothing: %v", err)
	}
	err := s.WriteErr()
	if err == nil || !strings.Contains(err.Error(), "commit of resource contacts failing since") || !strings.Contains(err.Error(), "full") {
		t.Fatalf("WriteErr after a failed page = %v, want the page's full-disk error", err)
	}
	// A small page of another resource commits: it says nothing of the
	// failed one.
	if err := s.CommitPage(ctx, small); err != nil {
		t.Logf("a one-record page fails too: %v", err)
	}
	if s.WriteErr() == nil {
		t.Fatal("a page of another resource cleared the failure of contacts")
	}
	// An error that is not about storage leaves it as it was.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.CommitPage(cancelled, big); err == nil {
		t.Fatal("CommitPage with a cancelled context succeeded")
	}
	if s.WriteErr() == nil {
		t.Fatal("a cancelled commit cleared the failure")
	}
	// Space returns: the next page of contacts commits and clears it.
	restore()
	if err := s.CommitPage(ctx, big); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr after the page committed: %v", err)
	}
}

// TestWriteErrForget: the failure of a resource taken out of the config,
// or of a deleted destination, would never clear; they are forgotten.
// And of two writes of one kind, the later commit counts, whatever order
// their outcomes are noted in.
func TestWriteErrForget(t *testing.T) {
	s := openStore(t)
	full := &sqlite.Error{}
	if !errors.As(fullErr(t, s), &full) {
		t.Fatal("no SQLite error")
	}
	h := &s.health
	res, dest := writeKind{writeCommit, "contacts"}, writeKind{writeFanout, "crm"}
	h.note(h.next(), full, res, dest)
	s.RetainResourceWrites([]string{"deals"})
	if err := s.WriteErr(); err == nil || strings.Contains(err.Error(), "contacts") || !strings.Contains(err.Error(), "fan-out to destination crm") {
		t.Fatalf("after the resource went: %v, want only the destination's failure", err)
	}
	if _, err := s.EnsureDestination(context.Background(), "crm", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDestination(context.Background(), "crm", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("after the destination went: %v", err)
	}

	older, newer := h.next(), h.next()
	h.note(newer, full, res)
	h.note(older, nil, res) // committed first, noted last
	if s.WriteErr() == nil {
		t.Fatal("an older success cleared a newer failure")
	}
	h.note(h.next(), nil, res)
	if err := s.WriteErr(); err != nil {
		t.Fatalf("a newer success left %v", err)
	}
}

// fullErr makes a real SQLITE_FULL: a page too large for max_page_count.
func fullErr(t *testing.T, s *SQLite) error {
	t.Helper()
	ctx := context.Background()
	big := page(t, s, "scratch", 1, ids("big", 2000)...)
	defer diskFull(t, s)()
	err := s.CommitPage(ctx, big)
	if !sqliteStorageError(err) {
		t.Fatalf("CommitPage past max_page_count: %v, want SQLITE_FULL", err)
	}
	s.RetainResourceWrites(nil)
	return err
}

// diskFull makes the store's disk full: max_page_count at the current
// size fails a growing write with SQLITE_FULL, as a full file system
// does. The function returned gives the space back.
func diskFull(t *testing.T, s *SQLite) (restore func()) {
	t.Helper()
	ctx := context.Background()
	var pages int64
	if err := s.w.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := s.w.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHealthFileGone: the state file deleted or moved away under a
// running store keeps taking writes (the open descriptors still reach
// it), into a file no one will open again: Health says so, and passes
// again when the same file is back at the path.
func TestHealthFileGone(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.Health(ctx, t0); err != nil {
		t.Fatalf("Health of a fresh store: %v", err)
	}
	away := s.Path() + ".moved"
	if err := os.Rename(s.Path(), away); err != nil {
		t.Fatal(err)
	}
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Fatalf("the write probe fails on its own, so this test shows nothing: %v", err)
	}
	err := s.Health(ctx, t0)
	if err == nil || !strings.Contains(err.Error(), "state file "+s.Path()+" is gone") {
		t.Fatalf("Health with the file moved away = %v, want it to say the file is gone", err)
	}
	if err := os.Rename(away, s.Path()); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(ctx, t0); err != nil {
		t.Fatalf("Health with the file back: %v", err)
	}
}

// TestHealthFileReplaced: another file put at the path (a backup restored
// over it) is not the one the store writes.
func TestHealthFileReplaced(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	other := filepath.Join(t.TempDir(), "other.db")
	if err := s.Backup(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, s.Path()); err != nil {
		t.Fatal(err)
	}
	err := s.Health(ctx, t0)
	if err == nil || !strings.Contains(err.Error(), "was replaced by another file") || !strings.Contains(err.Error(), "restart pollhook") {
		t.Fatalf("Health with the file replaced = %v, want it to say so and what to do", err)
	}
}

// TestHealthDamagedFile: a damaged page of one resource's records fails
// every cycle of it ("database disk image is malformed") while the probes
// of other pages pass: Health reports the failing reads until they pass,
// or until the resource leaves the config.
func TestHealthDamagedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	cycle(t, s, "contacts", time.Time{}, ids("c", 3000)...)
	var root, size int64
	if err := s.r.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = 'seen'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	s.Close() // the last connection folds the WAL into the file
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, size)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(garbage, (root-1)*size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = openSQLiteStore(t, path)
	if err := s.Health(ctx, t0); err != nil {
		t.Fatalf("Health before any read of the damaged records: %v (the probes alone find it: this test shows nothing)", err)
	}
	if _, err := s.ResourceState(ctx, "contacts"); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("ResourceState of the damaged resource = %v, want malformed", err)
	}
	err = s.Health(ctx, t0)
	if err == nil || !strings.Contains(err.Error(), "read of resource contacts failing since") || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("Health after a failed read = %v, want the read's failure", err)
	}
	// A cancelled read says nothing of the file.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s.Seen(cancelled, "contacts", []string{"c1"})
	s.RetainResourceWrites([]string{"contacts"})
	if s.Health(ctx, t0) == nil {
		t.Fatal("a cancelled read, or keeping the resource, cleared the failure")
	}
	s.RetainResourceWrites(nil)
	if err := s.Health(ctx, t0); err != nil {
		t.Fatalf("Health after the resource left the config: %v", err)
	}
}

// openSQLiteStore opens the store at path, closed when t ends.
func openSQLiteStore(t *testing.T, path string) *SQLite {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSightingsLost: the records a cycle listed unchanged are kept by the
// writer connection (sightings.go). A cycle whose sightings went with a
// replaced connection fails at its next page and at its finish, deleting
// nothing; the next cycle works as before.
func TestSightingsLost(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	ls, err := s.AcquireLeases(ctx, "test", []string{ResourceLease("contacts")}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	lease := ls[0]
	deleted := func(id string, _ Seen) Event {
		return Event{ID: "del-" + id, Type: "contact.deleted", Resource: "contacts", ObjectID: id}
	}
	run := func(touch []string, lose bool) (FinishResult, error) {
		n, err := s.BeginCycle(ctx, "contacts", lease)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			p := Page{Resource: "contacts", Cycle: n, Lease: lease}
			for _, id := range []string{"a", "b", "c"} {
				p.Records = append(p.Records, SeenRecord{ID: id, Seen: Seen{Updated: t0, Hash: "h"}})
			}
			if err := s.CommitPage(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: n, Lease: lease, Touch: touch[:1]}); err != nil {
			t.Fatal(err)
		}
		if lose {
			// What a new connection lacks.
			if _, err := s.w.ExecContext(ctx, `DROP TABLE temp.cycle_seen; DROP TABLE temp.cycle_open`); err != nil {
				t.Fatal(err)
			}
			err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: n, Lease: lease, Touch: touch[1:]})
			if !errors.Is(err, errSightingsLost) {
				t.Errorf("page after the loss: %v, want errSightingsLost", err)
			}
		} else if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: n, Lease: lease, Touch: touch[1:]}); err != nil {
			t.Fatal(err)
		}
		return s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: n, Lease: lease, Snapshot: true, DeleteGuard: 1, Deleted: deleted})
	}
	if _, err := run([]string{"a", "b", "c"}, false); err != nil {
		t.Fatal(err)
	}
	if res, err := run([]string{"a", "b"}, false); err != nil || res.Missing != 1 {
		t.Fatalf("c missed: %+v, %v", res, err)
	}
	// c missed twice would be deleted; a and b, listed before the loss,
	// would be taken for missing if the loss went unnoticed.
	if _, err := run([]string{"a", "b"}, true); !errors.Is(err, errSightingsLost) {
		t.Fatalf("finish after the loss: %v, want errSightingsLost", err)
	}
	if st, err := s.ResourceState(ctx, "contacts"); err != nil || st.Known != 3 || st.Completed != 2 {
		t.Fatalf("state after the failed cycle: %+v, %v; want 3 known, 2 complete", st, err)
	}
	if res, err := run([]string{"a", "b"}, false); err != nil || res.Missing != 1 || res.Deleted != 1 {
		t.Fatalf("the next cycle: %+v, %v; want c deleted", res, err)
	}
}
