package console

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver the bulk fill writes with

	"github.com/pollhook/pollhook/cursor"
)

// benchEvents is how many events the benchmark's outbox holds.
const benchEvents = 1_000_000

// benchStoreEnv names a file where bigStore keeps the store it fills, and
// reuses it from the next run on (the fill takes a minute or two).
const benchStoreEnv = "POLLHOOK_BENCH_STORE"

// bigStore is a store of a pollhook that has run a week: a million events
// of contacts in the outbox and as many records known, delivered to app
// (50,000 still pending, 20,000 dead, every finished one with its
// attempt) and to crm (all delivered), a week of cycles, hourly counts
// and backlog samples. It is written with bulk SQL rather than through
// the store, which would take many minutes.
func bigStore(b *testing.B) *cursor.SQLite {
	b.Helper()
	ctx := context.Background()
	path := os.Getenv(benchStoreEnv)
	if path == "" {
		path = filepath.Join(b.TempDir(), "state.db")
	} else if s, err := cursor.Open(ctx, path); err == nil {
		if last, err := s.LastSeq(ctx); err == nil && last == benchEvents {
			b.Cleanup(func() { s.Close() })
			return s
		}
		s.Close()
		if err := os.Remove(path); err != nil {
			b.Fatal(err)
		}
	}
	s, err := cursor.Open(ctx, path) // the schema
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	day := int64(24 * time.Hour)
	week := t0.Add(-7 * 24 * time.Hour).UnixNano()
	steps := []string{
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d)
INSERT INTO outbox (id, type, resource, source, object, object_id, occurred_at, detected_at, data)
SELECT printf('evt_%%032x', i), CASE i %% 10 WHEN 0 THEN 'contact.created' WHEN 1 THEN 'contact.deleted' ELSE 'contact.updated' END,
       'contacts', 'up', 'contact', i, %d + i * (%d / %d), %d + i * (%d / %d),
       '{"id":' || i || ',"given_name":"Ada","family_name":"Lovelace","email":"ada' || i || '@example.com","tags":["customer","newsletter"]}'
FROM n`, benchEvents, week, 7*day, benchEvents, week, 7*day, benchEvents),
		`INSERT INTO resources (resource, watermark, cycle, completed, last_complete) VALUES ('contacts', 1, 1000, 1000, 1)`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < %d)
INSERT INTO seen (resource, id, updated, hash, last_seen, rev) SELECT 'contacts', i, i, 'h', 1000, 1 FROM n`, benchEvents),
		fmt.Sprintf(`INSERT INTO destinations (name, fanout_seq, created_at) VALUES ('app', %d, 1), ('crm', %d, 1)`, benchEvents, benchEvents),
		fmt.Sprintf(`INSERT INTO deliveries (destination, event_id, seq, type, status, attempts, next_at, last_status, last_error, created_at, done_at)
SELECT 'app', id, seq, type,
       CASE WHEN seq > %[1]d - 50000 THEN 'pending' WHEN seq %% 47 = 0 THEN 'dead' ELSE 'delivered' END,
       CASE WHEN seq %% 47 = 0 THEN 8 ELSE 1 END, detected_at,
       CASE WHEN seq %% 47 = 0 THEN 503 ELSE 204 END,
       CASE WHEN seq %% 47 = 0 THEN 'post https://app.example.com/hook: 503 Service Unavailable' ELSE '' END,
       detected_at, CASE WHEN seq > %[1]d - 50000 THEN 0 ELSE detected_at + 1000000 END
FROM outbox`, benchEvents),
		`INSERT INTO deliveries (destination, event_id, seq, type, status, attempts, next_at, last_status, created_at, done_at)
SELECT 'crm', id, seq, type, 'delivered', 1, detected_at, 200, detected_at, detected_at + 1000000 FROM outbox`,
		`INSERT INTO attempts (destination, event_id, body_id, at, status, latency, error, response)
SELECT destination, event_id, event_id, done_at, last_status, 120000000, last_error,
       CASE WHEN last_status >= 300 THEN '{"error":"upstream busy"}' ELSE '' END
FROM deliveries WHERE status <> 'pending'`,
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 1000)
INSERT INTO cycles (resource, cycle, started_at, ended_at, pages, records, updated, known, watermark, error)
SELECT 'contacts', i, %[1]d + i * 600000000000, %[1]d + i * 600000000000 + 2000000000, 10, 1000, 1000, %[2]d, 1,
       CASE WHEN i %% 50 = 0 THEN 'poll contacts: GET page 3: 502 Bad Gateway' ELSE '' END FROM n`, week, benchEvents),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 167)
INSERT INTO resource_hours (resource, hour, cycles, failed, events)
SELECT 'contacts', %d + i * 3600000000000, 6, 0, %d FROM n`, t0.Add(-167*time.Hour).UnixNano(), benchEvents/168),
		fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < 7 * 1440)
INSERT INTO backlog_samples (destination, at, pending, dead, oldest_pending)
SELECT d.name, %d + i * 60000000000, 50000, 20000, 1 FROM n, destinations AS d`, week),
	}
	for _, q := range steps {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("fill: %v\n%s", err, q)
		}
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled a store of %d events in %s", benchEvents, time.Since(start).Round(time.Millisecond))
	s, err = cursor.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkPages measures the time a signed-in page takes to render,
// handler and store, with a million events in the outbox: ms/op is the
// wall time, cpu-ms/op the CPU time the process spent (also on other
// goroutines, such as the store's).
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 20x ./internal/console
func BenchmarkPages(b *testing.B) {
	store := bigStore(b)
	f := &fixture{rt: &fakeRuntime{}, store: store, now: t0}
	f.rt.cfg = testConfig(b, testToken)
	f.c = New(Options{Runtime: f.rt, State: store, Now: f.clock})
	sess := f.c.auth.start(f.c.tokenSum())
	oldest := fmt.Sprintf("evt_%032x", 1)
	dead := fmt.Sprintf("evt_%032x", 47*1000)
	for _, tt := range []struct{ name, path string }{
		{"overview", "/ui/"},
		{"resource", "/ui/resources/contacts"},
		{"resource-oldest-events", "/ui/resources/contacts?events_before=60&before=60"},
		{"destination", "/ui/destinations/app"},
		{"destination-older", "/ui/destinations/app?pending_before=960000&dead_before=47000"},
		{"event", "/ui/events/" + dead},
		{"event-oldest", "/ui/events/" + oldest},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest("GET", tt.path, nil)
				req.AddCookie(&http.Cookie{Name: cookieName, Value: sess.id})
				w := httptest.NewRecorder()
				f.c.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d\n%s", tt.path, w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the CPU time the process has used: on a machine shared with
// other work, where wall time is what the others leave, it is the page's
// own cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
