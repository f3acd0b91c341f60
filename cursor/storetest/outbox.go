package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// outboxTests: reading the outbox with EachEvent.
var outboxTests = []test{
	{"EachEvent", testEachEvent},
	{"EachEventStreamsManyWhileWriting", testEachEventStreamsManyWhileWriting},
	{"EachEventNewestInPages", testEachEventNewestInPages},
	{"EventByID", testEventByID},
	{"WatchOutboxSeesOtherProcesses", testWatchOutbox},
}

// testWatchOutbox: WatchOutbox tells of events committed by another
// process (a second store on the same data, when the backend has one)
// within a second, and returns when its context is done.
func testWatchOutbox(t *testing.T, b Backend) {
	s := b.Open(t)
	other := s
	if b.Reopen != nil {
		other = b.Reopen(t, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	told := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WatchOutbox(ctx, func() {
			select {
			case told <- struct{}{}:
			default:
			}
		})
	}()
	// Calls told before the commit (a backend may say "look" when it
	// starts watching) do not count.
	time.Sleep(300 * time.Millisecond)
	for len(told) > 0 {
		<-told
	}
	commit(t, other, cursor.Page{Resource: "contacts", Cycle: 1, Events: []cursor.Event{event("contacts", "w1", "contact.created")}})
	select {
	case <-told:
	case <-time.After(2 * time.Second):
		t.Error("WatchOutbox did not tell of an event committed by another process within 2s")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("WatchOutbox did not return within 5s of its context's end")
	}
}

func testEachEvent(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	var page []cursor.Event
	add := func(resource, id, typ string, detected time.Time) {
		e := event(resource, id, typ)
		e.DetectedAt = detected
		page = append(page, e)
	}
	add("contacts", "1", "contact.created", t0)
	add("deals", "2", "deal.created", t0)
	add("contacts", "3", "contact.updated", t0.Add(time.Hour))
	add("contacts", "4", "contact.deleted", t0.Add(2*time.Hour))
	add("deals", "5", "deal.deleted", t0.Add(3*time.Hour))
	add("contacts", "6", "contactx.created", t0.Add(3*time.Hour))
	commit(t, s, cursor.Page{Resource: "contacts", Events: page})
	tests := []struct {
		name string
		f    cursor.EventFilter
		want []string
	}{
		{"all", cursor.EventFilter{}, []string{"1", "2", "3", "4", "5", "6"}},
		{"resource", cursor.EventFilter{Resource: "deals"}, []string{"2", "5"}},
		{"exact type", cursor.EventFilter{Type: "contact.created"}, []string{"1"}},
		{"noun glob", cursor.EventFilter{Type: "contact.*"}, []string{"1", "3", "4"}},
		{"verb glob", cursor.EventFilter{Type: "*.deleted"}, []string{"4", "5"}},
		{"everything glob", cursor.EventFilter{Type: "*.*"}, []string{"1", "2", "3", "4", "5", "6"}},
		{"class glob", cursor.EventFilter{Type: "contact.[cu]*"}, []string{"1", "3"}},
		{"since", cursor.EventFilter{Since: t0.Add(time.Hour)}, []string{"3", "4", "5", "6"}},
		{"after seq", cursor.EventFilter{AfterSeq: 4}, []string{"5", "6"}},
		{"limit", cursor.EventFilter{Limit: 2}, []string{"1", "2"}},
		{"glob with limit", cursor.EventFilter{Type: "*.deleted", Limit: 1}, []string{"4"}},
		{"combined", cursor.EventFilter{Resource: "contacts", Type: "contact.*", Since: t0.Add(time.Minute), AfterSeq: 3, Limit: 5}, []string{"4"}},
		{"none", cursor.EventFilter{Resource: "nope"}, []string{}},
		{"before seq", cursor.EventFilter{BeforeSeq: 3}, []string{"1", "2"}},
		{"newest first", cursor.EventFilter{Newest: true}, []string{"6", "5", "4", "3", "2", "1"}},
		{"newest of a resource", cursor.EventFilter{Resource: "contacts", Newest: true, Limit: 2}, []string{"6", "4"}},
		{"newest before seq", cursor.EventFilter{Newest: true, BeforeSeq: 4}, []string{"3", "2", "1"}},
		{"newest between seqs", cursor.EventFilter{Newest: true, BeforeSeq: 6, AfterSeq: 2}, []string{"5", "4", "3"}},
		{"newest glob", cursor.EventFilter{Newest: true, Type: "*.deleted"}, []string{"5", "4"}},
		{"newest since", cursor.EventFilter{Newest: true, Since: t0.Add(2 * time.Hour)}, []string{"6", "5", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := eventIDs(allEvents(t, s, tt.f)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("bad glob", func(t *testing.T) {
		t.Parallel()
		err := s.EachEvent(ctx, cursor.EventFilter{Type: "contact.[a"}, func(cursor.Event) error { return nil })
		if err == nil {
			t.Error("want an error for a malformed pattern")
		}
	})
	t.Run("stops at fn's error", func(t *testing.T) {
		t.Parallel()
		stop := errors.New("stop")
		n := 0
		err := s.EachEvent(ctx, cursor.EventFilter{}, func(cursor.Event) error {
			if n++; n == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 {
			t.Errorf("err = %v after %d calls, want stop after 2", err, n)
		}
	})
}

// testEachEventStreamsManyWhileWriting: fn may read and write the store
// while EachEvent streams more events than a backend reads at once.
func testEachEventStreamsManyWhileWriting(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	const n = 1000
	page := cursor.Page{Resource: "contacts"}
	want := ids("e", n)
	for _, id := range want {
		page.Events = append(page.Events, event("contacts", id, "contact.created"))
	}
	commit(t, s, page)
	deals := hold(t, s, cursor.ResourceLease("deals"))
	var last int64
	count := 0
	err := s.EachEvent(ctx, cursor.EventFilter{}, func(e cursor.Event) error {
		if e.Seq <= last {
			t.Fatalf("seq %d after %d", e.Seq, last)
		}
		last = e.Seq
		if e.ID != want[count] {
			t.Fatalf("event %d is %s, want %s: the outbox keeps the page's order", count, e.ID, want[count])
		}
		count++
		// fn may use the store, reads and writes, without deadlock.
		if _, err := s.Seen(ctx, "contacts", []string{e.ObjectID}); err != nil {
			return err
		}
		if count%100 == 0 {
			return s.CommitPage(ctx, cursor.Page{Resource: "deals", Lease: deals, Records: []cursor.SeenRecord{rec(e.ID, t0)}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("streamed %d events, want %d", count, n)
	}
}

// testEachEventNewestInPages reads more events, newest first, than a
// backend reads at once, whole and a page at a time.
func testEachEventNewestInPages(t *testing.T, b Backend) {
	s := b.Open(t)
	const n = 600
	page := cursor.Page{Resource: "contacts"}
	all := ids("e", n)
	for _, id := range all {
		page.Events = append(page.Events, event("contacts", id, "contact.created"))
	}
	commit(t, s, page)
	got := eventIDs(allEvents(t, s, cursor.EventFilter{Resource: "contacts", Newest: true}))
	if len(got) != n || got[0] != all[n-1] || got[n-1] != all[0] {
		t.Fatalf("newest first: %d events from %v, want %d from %s to %s", len(got), got[:1], n, all[n-1], all[0])
	}
	for i := range got {
		if got[i] != all[n-1-i] {
			t.Fatalf("newest first: event %d is %s, want %s", i, got[i], all[n-1-i])
		}
	}
	var paged []string
	before := int64(0)
	for {
		evs := allEvents(t, s, cursor.EventFilter{Resource: "contacts", Newest: true, BeforeSeq: before, Limit: 250})
		if len(evs) == 0 {
			break
		}
		paged = append(paged, eventIDs(evs)...)
		before = evs[len(evs)-1].Seq
	}
	if !reflect.DeepEqual(paged, got) {
		t.Errorf("pages of 250 give %d events, want the %d of one read, in its order", len(paged), len(got))
	}
}

func testEventByID(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	commit(t, s, cursor.Page{Resource: "contacts", Events: []cursor.Event{
		event("contacts", "a", "contact.created"), event("contacts", "b", "contact.updated"),
	}})
	got, err := s.Event(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	want := event("contacts", "b", "contact.updated")
	want.Seq = got.Seq
	if !reflect.DeepEqual(got, want) || got.Seq < 2 {
		t.Errorf("Event(b) = %+v, want %+v after a", got, want)
	}
	if _, err := s.Event(ctx, "nope"); !errors.Is(err, cursor.ErrUnknownEvent) {
		t.Errorf("Event of an unknown id: %v, want ErrUnknownEvent", err)
	}
}
