package console

import (
	"context"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func TestZZQ(t *testing.T) {
	ctx := context.Background()
	s, err := cursor.Open(ctx, "/tmp/i15bench/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 2 {
		st := time.Now()
		s.Leases(ctx)
		t.Log("leases", time.Since(st))
		st = time.Now()
		s.BacklogHistory(ctx, "app", t0.Add(-24*time.Hour))
		t.Log("history", time.Since(st))
		st = time.Now()
		s.Destinations(ctx)
		s.Subscriptions(ctx)
		t.Log("dests+subs", time.Since(st))
		st = time.Now()
		s.BacklogAtMost(ctx, "app", CountLimit)
		t.Log("atmost app", time.Since(st))
		st = time.Now()
		s.BacklogAtMost(ctx, "crm", CountLimit)
		t.Log("atmost crm", time.Since(st))
		st = time.Now()
		ds, _ := s.Deliveries(ctx, cursor.DeliveryFilter{Destination: "app", Status: cursor.StatusPending, Limit: 51})
		t.Log("pending", time.Since(st))
		st = time.Now()
		dd, _ := s.Deliveries(ctx, cursor.DeliveryFilter{Destination: "app", Status: cursor.StatusDead, Limit: 51})
		t.Log("dead", time.Since(st))
		st = time.Now()
		for _, d := range append(ds, dd...) {
			s.Attempts(ctx, cursor.AttemptFilter{Destination: d.Destination, EventID: d.EventID, Limit: 5})
		}
		t.Log("attempts x", len(ds)+len(dd), time.Since(st))
	}
}
