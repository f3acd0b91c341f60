package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/pgtest"
)

// BenchmarkReplicasDeliver delivers the same outbox — 12,000 events to 6
// destinations, 2,000 each, unbatched, to loopback receivers — from one
// PostgreSQL store with 1 and with 3 replicas, each a delivery engine
// with its own connections and lease keeper; the replicas share the
// destinations through their leases. sqlite is the same with one process
// on SQLite, the baseline. It reports events/s.
func BenchmarkReplicasDeliver(b *testing.B) {
	const dests, perDest = 6, 2000
	for _, bc := range []struct {
		name     string
		replicas int
		open     func(b *testing.B) (cursor.Store, func() cursor.Store)
	}{
		{"sqlite", 1, sqliteBench},
		{"postgres-replicas-1", 1, postgresBench},
		{"postgres-replicas-3", 3, postgresBench},
	} {
		replicas := bc.replicas
		b.Run(bc.name, func(b *testing.B) {
			var delivered atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				delivered.Add(1)
			}))
			defer srv.Close()
			n := 0
			b.StopTimer()
			for range b.N {
				filler, again := bc.open(b)
				fill(b, filler, dests, perDest)
				delivered.Store(0)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				b.StartTimer()
				for r := range replicas {
					store := again()
					wg.Go(func() { replica(ctx, b, store, fmt.Sprint("r", r), srv.URL, dests) })
				}
				for delivered.Load() < dests*perDest {
					time.Sleep(5 * time.Millisecond)
				}
				b.StopTimer()
				cancel()
				wg.Wait()
				n += dests * perDest
			}
			b.StartTimer()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// sqliteBench opens a fresh SQLite store, and again the same one.
func sqliteBench(b *testing.B) (cursor.Store, func() cursor.Store) {
	path := filepath.Join(b.TempDir(), "state.db")
	open := func() cursor.Store {
		s, err := cursor.Open(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open
}

// postgresBench opens a fresh PostgreSQL store, and again the same one
// (another replica's connections); it skips without a server.
func postgresBench(b *testing.B) (cursor.Store, func() cursor.Store) {
	if ok, why := pgtest.Available(); !ok {
		b.Skip(why)
	}
	dsn := pgtest.Schema(b, pgtest.DSN(b))
	open := func() cursor.Store {
		s, err := cursor.OpenPostgres(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open
}

// fill commits perDest events for each of dests destinations to the
// outbox of store, each destination taking the events of its own type, and
// creates the destinations before them.
func fill(b *testing.B, store cursor.Store, dests, perDest int) {
	ctx := context.Background()
	for d := range dests {
		if _, err := store.EnsureDestination(ctx, fmt.Sprint("d", d), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	ls, err := store.AcquireLeases(ctx, "filler", []string{cursor.ResourceLease("bench")}, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	var evs []cursor.Event
	for i := range dests * perDest {
		evs = append(evs, cursor.Event{ID: fmt.Sprintf("evt_%08d", i), Type: fmt.Sprintf("t%d.updated", i%dests),
			Resource: "bench", ObjectID: fmt.Sprint(i), DetectedAt: time.Now(), Data: []byte(`{"id":1,"name":"a"}`)})
		if len(evs) == 1000 {
			if err := store.CommitPage(ctx, cursor.Page{Resource: "bench", Cycle: 1, Lease: ls[0], Events: evs}); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	store.ReleaseLeases(ctx, "filler", []string{cursor.ResourceLease("bench")})
}

// replica delivers to the destinations whose leases it takes, sharing
// them with the other replicas, until ctx is done.
func replica(ctx context.Context, b *testing.B, store cursor.Store, holder, url string, dests int) {
	log := slog.New(slog.DiscardHandler)
	k := newKeeper(store, holder, 3*time.Second, time.Now, log)
	k.setBalance(nil)
	var ds []*emit.Destination
	var names []string
	for d := range dests {
		name := fmt.Sprint("d", d)
		dst, err := emit.NewDestination(config.Destination{
			Name: name, URL: url, Format: config.FormatPollhook, Events: []string{fmt.Sprintf("t%d.*", d)},
			Timeout: config.Duration(5 * time.Second), Batch: config.Batch{MaxEvents: 1},
			Retry:    config.Retry{Schedule: []config.Duration{config.Duration(time.Second)}},
			Ordering: config.OrderingUnordered, MaxInFlight: config.DefaultMaxInFlight,
		}, emit.Options{})
		if err != nil {
			b.Error(err)
			return
		}
		ds = append(ds, dst)
		names = append(names, cursor.DestinationLease(name))
	}
	e := emit.NewEngine(store, ds, emit.EngineOptions{Leases: k, Logger: log})
	k.setOnTake(func([]string) { e.Notify() })
	k.want(ctx, names)
	k.tick(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { k.run(ctx) })
	e.Run(ctx)
	wg.Wait()
	e.Close()
}
