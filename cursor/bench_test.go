package cursor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pollhook/pollhook/internal/cputime"
)

// BenchmarkCommitPage commits pages of 1000 new records and 1000 events.
func BenchmarkCommitPage(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	const size = 1000
	lease := resourceLease(b, s, "contacts")
	pages := 0
	for b.Loop() {
		b.StopTimer() // time the store, not building the page
		p := Page{Resource: "contacts", Cycle: 1, Lease: lease}
		for i := range size {
			id := fmt.Sprintf("%08d", pages*size+i)
			p.Records = append(p.Records, SeenRecord{ID: id, Seen: Seen{Updated: t0, Hash: "0123456789abcdef"}})
			e := event("contacts", "evt_"+id, "contact.created")
			e.Data = []byte(`{"id":"` + id + `","given_name":"Ada","family_name":"Lovelace","email":"ada@example.com"}`)
			p.Events = append(p.Events, e)
		}
		b.StartTimer()
		if err := s.CommitPage(ctx, p); err != nil {
			b.Fatal(err)
		}
		pages++
	}
	b.ReportMetric(float64(pages*size)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSnapshotCycle runs a complete snapshot cycle over 100,000 known
// records: 100 pages of 1000 updates, then a finish. The last 1% are
// missing from two cycles in four, so that one finish in four deletes
// them (the second listing without them confirms it) and they come back
// the next.
func BenchmarkSnapshotCycle(b *testing.B) {
	ctx := context.Background()
	s := openStore(b)
	const total, size = 100_000, 1000
	all := ids("r", total)
	lease := resourceLease(b, s, "contacts")
	cycles := 0
	for b.Loop() {
		n, err := s.BeginCycle(ctx, "contacts", lease)
		if err != nil {
			b.Fatal(err)
		}
		for start := 0; start < total; start += size {
			p := Page{Resource: "contacts", Cycle: n, Lease: lease}
			for _, id := range all[start : start+size] {
				if n%4 >= 2 && id >= all[total-total/100] {
					continue // the last 1% are gone this time
				}
				p.Records = append(p.Records, SeenRecord{ID: id, Seen: Seen{Updated: t0.Add(time.Duration(n)), Hash: "h"}})
			}
			if err := s.CommitPage(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		_, err = s.FinishCycle(ctx, Finish{
			Resource: "contacts", Cycle: n, Lease: lease, Snapshot: true, DeleteGuard: 0.5, Watermark: t0,
			Deleted: func(id string, _ Seen) Event {
				return event("contacts", fmt.Sprintf("del-%d-%s", n, id), "contact.deleted")
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		cycles++
	}
	b.ReportMetric(float64(cycles*total)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDeliveryStore runs the store's side of delivering 1000 events a
// loop: fan-out, pending deliveries read a page at a time, and the
// outcomes recorded, all delivered, in requests of batch events, the
// outcomes of group requests a transaction (as the delivery engine's group
// commit writes them). Event ids are hashes, as the poller's are.
func BenchmarkDeliveryStore(b *testing.B) {
	for _, bc := range []struct {
		name         string
		batch, group int
	}{{"unbatched", 1, 4}, {"batch100", 100, 1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s := openStore(b)
			const size = 1000
			if _, err := s.EnsureDestination(ctx, "d", time.Time{}); err != nil {
				b.Fatal(err)
			}
			ls, err := s.AcquireLeases(ctx, "test", []string{DestinationLease("d")}, time.Hour, t0)
			if err != nil {
				b.Fatal(err)
			}
			lease := resourceLease(b, s, "contacts")
			events, cpu := 0, time.Duration(0)
			for b.Loop() {
				b.StopTimer()
				evs := make([]Event, size)
				for i := range evs {
					evs[i] = event("contacts", fmt.Sprintf("evt_%016x", uint64(events+i)*0x9E3779B97F4A7C15), "contact.updated")
				}
				if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: 1, Lease: lease, Events: evs}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				began := cputime.Process()
				if _, err := s.Fanout(ctx, "d", nil, t0); err != nil {
					b.Fatal(err)
				}
				for {
					due, err := s.Pending(ctx, PendingQuery{Destination: "d", Due: t0, Limit: 800})
					if err != nil {
						b.Fatal(err)
					}
					if len(due) == 0 {
						break
					}
					for start := 0; start < len(due); start += bc.batch * bc.group {
						var outcomes []Outcome
						for i, d := range due[start:min(len(due), start+bc.batch*bc.group)] {
							outcomes = append(outcomes, Outcome{Destination: "d", EventID: d.Event.ID,
								BodyID: fmt.Sprintf("req_%d", (start+i)/bc.batch), At: t0.Add(time.Duration(i)),
								HTTPStatus: 200, Latency: time.Millisecond, Status: StatusDelivered, Counted: true})
						}
						if err := s.RecordOutcomes(ctx, ls[0], outcomes); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu += cputime.Process() - began
				events += size
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(events), "cpu-µs/event")
		})
	}
}
