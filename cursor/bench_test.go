package cursor

import (
	"context"
	"fmt"
	"testing"
	"time"
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
