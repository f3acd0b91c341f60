package cursor

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestWatchOutboxTellsOwnCommitsAtOnce: the delivery of a page's events
// starts when the page commits. With the look for other processes'
// commits an hour apart, a page of events, and a cycle's end that deletes
// records, are each told to WatchOutbox; a commit with no event is not.
func TestWatchOutboxTellsOwnCommitsAtOnce(t *testing.T) {
	s := openStore(t)
	s.outboxPoll = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	told := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchOutbox(ctx, func() { told <- struct{}{} })
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string) {
		t.Helper()
		select {
		case <-told:
		case <-time.After(10 * time.Second):
			t.Fatalf("WatchOutbox was not told of %s within 10s", what)
		}
	}
	bg := context.Background()
	lease := resourceLease(t, s, "contacts")
	n, err := s.BeginCycle(bg, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	// Commits made before the watcher started are not its news: commit
	// until one is told.
	for i := 0; ; i++ {
		p := page(t, s, "contacts", n, fmt.Sprint("a", i))
		p.Events = []Event{event("contacts", fmt.Sprint("evt-a", i), "contact.created")}
		if err := s.CommitPage(bg, p); err != nil {
			t.Fatal(err)
		}
		select {
		case <-told:
		case <-time.After(100 * time.Millisecond):
			if i < 100 {
				continue
			}
			t.Fatal("WatchOutbox was told of no page of events in 10s")
		}
		break
	}

	if err := s.CommitPage(bg, page(t, s, "contacts", n, "b1")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-told:
		t.Error("WatchOutbox was told of a page without events")
	case <-time.After(300 * time.Millisecond):
	}
	p := page(t, s, "contacts", n, "c1")
	p.Events = []Event{event("contacts", "evt-c1", "contact.created")}
	if err := s.CommitPage(bg, p); err != nil {
		t.Fatal(err)
	}
	waitFor("a page of events")

	// Two more cycles see only c1: the second confirms the others gone,
	// and its end commits their deletes.
	for range 3 {
		res, err := s.FinishCycle(bg, Finish{Resource: "contacts", Cycle: n, Lease: lease, Watermark: t0, Snapshot: true, DeleteGuard: 1,
			Deleted: func(id string, _ Seen) Event { return event("contacts", "del-"+id, "contact.deleted") }})
		if err != nil {
			t.Fatal(err)
		}
		if res.Deleted > 0 {
			waitFor("the deletes of a cycle's end")
			return
		}
		if n, err = s.BeginCycle(bg, "contacts", lease); err != nil {
			t.Fatal(err)
		}
		if err := s.CommitPage(bg, page(t, s, "contacts", n, "c1")); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("three cycles that miss records deleted none")
}
