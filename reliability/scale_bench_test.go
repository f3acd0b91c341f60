package reliability

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/internal/pgtest"
)

// BenchmarkReplicas runs three `pollhook run` replicas on one PostgreSQL
// database with 100 and with 1,000 resources, each polled every 10 s from a
// simulated upstream whose lists (10 records) do not change: the cost of
// keeping many resources watched. Once every resource has completed a
// cycle it measures, over 30 s, the replicas' CPU time and memory and the
// database's traffic, and reports them per resource:
//
//	cpu-ms/resource/min   CPU of the three processes, per resource and minute
//	rss-MiB/replica       resident memory of a replica, on average
//	rss-MiB/replica       (the difference between the two runs over the
//	                      900 resources between them is the memory a
//	                      resource costs)
//	polls/s               cycles completed, all replicas
//	lease-writes/s        rows of the leases table written (renewals)
//	db-commits/s          transactions committed in the database
//
// Run it with: go test -run '^$' -bench BenchmarkReplicas -benchtime 1x ./reliability
func BenchmarkReplicas(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint("resources-", n), func(b *testing.B) { benchReplicas(b, n) })
	}
}

func benchReplicas(b *testing.B, resources int) {
	if binary == "" {
		b.Skip(buildSkip)
	}
	ok, why := pgtest.Available()
	if !ok {
		b.Skip(why)
	}
	const replicas, window = 3, 30 * time.Second
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var items []string
		for i := range 10 {
			items = append(items, fmt.Sprintf(`{"id":%d,"updated":"2026-11-01T10:00:%02dZ","name":"record %d"}`, i, i, i))
		}
		fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(items, ","))
	}))
	defer up.Close()
	for range b.N {
		dsn := pgtest.DSN(b)
		dir := b.TempDir()
		var cfg strings.Builder
		fmt.Fprintf(&cfg, "state:\n  dsn: %s\nsources:\n  - name: up\n    base_url: %s\nresources:\n", dsn, up.URL)
		for i := range resources {
			fmt.Fprintf(&cfg, "  - { name: r%d, object: item, url: /r/%d, items: .items, schedule: 10s, deletes: snapshot,\n      dates: { updated_field: updated, updated_format: rfc3339 } }\n", i, i)
		}
		path := filepath.Join(dir, "pollhook.yaml")
		if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var procs []*proc
		for range replicas {
			procs = append(procs, start(b, path))
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var done int
			db.QueryRow(`SELECT count(*) FROM resources WHERE completed > 0`).Scan(&done)
			if done == resources {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("after 2m, %d of %d resources completed a cycle", done, resources)
			}
			time.Sleep(200 * time.Millisecond)
		}
		cpu0, polls0, leases0, commits0 := cpuOf(b, procs), pollsOf(b, db), leaseWrites(b, db), commitsOf(b, db)
		b.ResetTimer()
		pause(window)
		b.StopTimer()
		cpu, polls, leases, commits := cpuOf(b, procs)-cpu0, pollsOf(b, db)-polls0, leaseWrites(b, db)-leases0, commitsOf(b, db)-commits0
		var rss int64
		for _, p := range procs {
			rss += rssOf(b, p)
		}
		secs := window.Seconds()
		b.ReportMetric(cpu.Seconds()*1000/float64(resources)/(secs/60), "cpu-ms/resource/min")
		b.ReportMetric(float64(rss)/replicas/(1<<20), "rss-MiB/replica")
		b.ReportMetric(float64(polls)/secs, "polls/s")
		b.ReportMetric(float64(leases)/secs, "lease-writes/s")
		b.ReportMetric(float64(commits)/secs, "db-commits/s")
		for _, p := range procs {
			p.stop()
		}
	}
}

// cpuOf is the user and system CPU time the processes used so far.
func cpuOf(b *testing.B, procs []*proc) time.Duration {
	var ticks int64
	for _, p := range procs {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		// The fields after the command name, which is in parentheses.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// rssOf is a process's resident memory now.
func rssOf(b *testing.B, p *proc) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func pollsOf(b *testing.B, db *sql.DB) int64 {
	var n int64
	if err := db.QueryRow(`SELECT coalesce(sum(completed), 0) FROM resources`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func leaseWrites(b *testing.B, db *sql.DB) int64 {
	var n int64
	db.QueryRowContext(context.Background(), `SELECT pg_stat_force_next_flush()`).Scan(new(any))
	if err := db.QueryRow(`SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'leases'`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func commitsOf(b *testing.B, db *sql.DB) int64 {
	var n int64
	db.QueryRowContext(context.Background(), `SELECT pg_stat_force_next_flush()`).Scan(new(any))
	if err := db.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
