package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// healthTests: what a readiness probe asks of a store.
var healthTests = []test{
	{"PingAndWrites", testPingAndWrites},
}

func testPingAndWrites(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	if s.Location() == "" {
		t.Error("Location is empty: messages would not say which store")
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping on a fresh store: %v", err)
	}
	if err := s.PingWrite(ctx, t0); err != nil {
		t.Errorf("PingWrite on a fresh store: %v", err)
	}
	if err := s.Health(ctx, t0); err != nil {
		t.Errorf("Health of a fresh store: %v", err)
	}
	cycle(t, s, "contacts", ids("c", 10), cursor.Finish{})
	ensure(t, s, "crm", time.Time{})
	fanout(t, s, "crm", t0)
	if err := s.WriteErr(); err != nil {
		t.Errorf("WriteErr after writes that succeeded: %v", err)
	}
	s.RetainResourceWrites(nil)
	if err := s.WriteErr(); err != nil {
		t.Errorf("WriteErr after RetainResourceWrites: %v", err)
	}
	if err := s.Health(ctx, t0); err != nil {
		t.Errorf("Health after reads and writes that succeeded: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	s.ResourceState(cancelled, "contacts")
	s.Seen(cancelled, "contacts", []string{"c1"})
	if err := s.Health(ctx, t0); err != nil {
		t.Errorf("Health after reads a cancelled context stopped: %v, want nil (they say nothing of the store)", err)
	}
	s.Close()
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping on a closed store succeeded")
	}
	if err := s.PingWrite(ctx, t0); err == nil {
		t.Error("PingWrite on a closed store succeeded")
	}
	if err := s.Health(ctx, t0); err == nil {
		t.Error("Health of a closed store is nil")
	}
}
