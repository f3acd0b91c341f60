package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// historyTests: what the store keeps of the past for status views — the
// cycles as they ended, events per hour, backlog samples — its reads that
// cost the same however much data there is, and the pruning of it.
var historyTests = []test{
	{"RecordCycleAndList", testRecordCycleAndList},
	{"RecordCycleUnderLease", testRecordCycleUnderLease},
	{"EventsPerHour", testEventsPerHour},
	{"BacklogSamples", testBacklogSamples},
	{"BacklogAtMost", testBacklogAtMost},
	{"PruneHistory", testPruneHistory},
	{"CursorsWithoutCount", testCursorsWithoutCount},
}

// recordCycle records c under its resource's lease.
func recordCycle(t testing.TB, s cursor.Store, c cursor.CycleRecord) {
	t.Helper()
	if err := s.RecordCycle(context.Background(), hold(t, s, cursor.ResourceLease(c.Resource)), c); err != nil {
		t.Fatal(err)
	}
}

// cycleRec is cycle n of resource, ended n minutes after t0, with n
// created events; failed when err is set.
func cycleRec(resource string, n int64, err string) cursor.CycleRecord {
	c := cursor.CycleRecord{
		Resource: resource, Cycle: n,
		Started: t0.Add(time.Duration(n)*time.Minute - 5*time.Second), Ended: t0.Add(time.Duration(n) * time.Minute),
		Pages: 2, Records: 150, Skipped: 1, Created: n, Updated: 2, Deleted: 1, HeldBack: 0,
		Known: 1000 + n, Watermark: t0.Add(time.Duration(n) * time.Second), Error: err,
	}
	if err != "" {
		c.Known = -1
	}
	return c
}

func cycleNumbers(t testing.TB, s cursor.Store, f cursor.CycleFilter) []int64 {
	t.Helper()
	cs, err := s.Cycles(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	out := []int64{}
	for _, c := range cs {
		out = append(out, c.Cycle)
	}
	return out
}

func testRecordCycleAndList(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	for n := int64(1); n <= 6; n++ {
		errText := ""
		if n%3 == 0 {
			errText = fmt.Sprintf("poll contacts: GET page %d: 503 Service Unavailable", n)
		}
		recordCycle(t, s, cycleRec("contacts", n, errText))
	}
	recordCycle(t, s, cycleRec("deals", 1, ""))
	first := cycleRec("contacts", 1, "")
	first.Silent = true
	first.Cycle = 7
	recordCycle(t, s, first)

	tests := []struct {
		name string
		f    cursor.CycleFilter
		want []int64
	}{
		{"all, newest first", cursor.CycleFilter{Resource: "contacts"}, []int64{7, 6, 5, 4, 3, 2, 1}},
		{"a page", cursor.CycleFilter{Resource: "contacts", Limit: 3}, []int64{7, 6, 5}},
		{"the next page", cursor.CycleFilter{Resource: "contacts", Before: 5, Limit: 3}, []int64{4, 3, 2}},
		{"failed", cursor.CycleFilter{Resource: "contacts", Failed: true}, []int64{6, 3}},
		{"last failed", cursor.CycleFilter{Resource: "contacts", Failed: true, Limit: 1}, []int64{6}},
		{"failed before", cursor.CycleFilter{Resource: "contacts", Failed: true, Before: 6}, []int64{3}},
		{"another resource", cursor.CycleFilter{Resource: "deals"}, []int64{1}},
		{"none", cursor.CycleFilter{Resource: "nope"}, []int64{}},
	}
	for _, tt := range tests {
		if got := cycleNumbers(t, s, tt.f); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: cycles %v, want %v", tt.name, got, tt.want)
		}
	}
	// Every field reads back as written.
	got, err := s.Cycles(ctx, cursor.CycleFilter{Resource: "contacts", Before: 4, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := cycleRec("contacts", 3, "poll contacts: GET page 3: 503 Service Unavailable")
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Errorf("cycle 3 = %+v, want %+v", got, want)
	}
	if got[0].Events() != 3+2+1 || got[0].Duration() != 5*time.Second {
		t.Errorf("cycle 3: %d events in %s, want 6 in 5s", got[0].Events(), got[0].Duration())
	}
	got, err = s.Cycles(ctx, cursor.CycleFilter{Resource: "contacts", Limit: 1})
	if err != nil || len(got) != 1 || !got[0].Silent {
		t.Errorf("cycle 7 = %+v, %v; want it silent", got, err)
	}

	// A cycle recorded again is left as it was and counted once.
	again := cycleRec("contacts", 2, "")
	again.Created = 1000
	recordCycle(t, s, again)
	got, err = s.Cycles(ctx, cursor.CycleFilter{Resource: "contacts", Before: 3, Limit: 1})
	if err != nil || len(got) != 1 || got[0].Created != 2 {
		t.Errorf("cycle 2 after recording it again = %+v, %v; want it unchanged (2 created)", got, err)
	}
	hours, err := s.EventsPerHour(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 2 || hours[0].Resource != "contacts" || hours[0].Cycles != 7 {
		t.Errorf("events per hour = %+v, want contacts with 7 cycles, then deals", hours)
	}

	// A long error is stored cut, as valid text.
	long := cycleRec("contacts", 8, strings.Repeat("é", cursor.MaxErrorBytes))
	recordCycle(t, s, long)
	got, err = s.Cycles(ctx, cursor.CycleFilter{Resource: "contacts", Limit: 1})
	if err != nil || len(got) != 1 || len(got[0].Error) > cursor.MaxErrorBytes || !strings.HasPrefix(got[0].Error, "éé") {
		t.Errorf("a long error is stored as %d bytes, want at most %d", len(got[0].Error), cursor.MaxErrorBytes)
	}

	// Bad records and filters are refused.
	lease := hold(t, s, cursor.ResourceLease("contacts"))
	if err := s.RecordCycle(ctx, lease, cursor.CycleRecord{Resource: "contacts", Ended: t0}); err == nil {
		t.Error("RecordCycle of cycle 0 succeeded")
	}
	if err := s.RecordCycle(ctx, lease, cursor.CycleRecord{Resource: "contacts", Cycle: 9}); err == nil {
		t.Error("RecordCycle without an end time succeeded")
	}
	if _, err := s.Cycles(ctx, cursor.CycleFilter{}); err == nil {
		t.Error("Cycles without a resource succeeded")
	}
}

func testRecordCycleUnderLease(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	c := cycleRec("contacts", 1, "")
	stale := hold(t, s, cursor.ResourceLease("contacts"))
	// Another holder takes the lease once it has expired.
	if _, err := s.AcquireLeases(ctx, "other", []string{cursor.ResourceLease("contacts")}, time.Minute, t0.Add(2*leaseTTL)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCycle(ctx, stale, c); !errors.Is(err, cursor.ErrLeaseLost) {
		t.Errorf("RecordCycle under a lost lease: %v, want ErrLeaseLost", err)
	}
	if err := s.RecordCycle(ctx, cursor.Lease{Name: cursor.ResourceLease("deals"), Holder: holder, Fence: 1}, c); err == nil {
		t.Error("RecordCycle under another resource's lease succeeded")
	}
	if got := cycleNumbers(t, s, cursor.CycleFilter{Resource: "contacts"}); len(got) != 0 {
		t.Errorf("cycles after refused records = %v, want none", got)
	}
	hours, err := s.EventsPerHour(ctx, time.Time{})
	if err != nil || len(hours) != 0 {
		t.Errorf("events per hour after refused records = %+v, %v; want none", hours, err)
	}
}

func testEventsPerHour(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	at := func(resource string, n int64, ended time.Time, events int64, failed bool) {
		c := cursor.CycleRecord{Resource: resource, Cycle: n, Started: ended.Add(-time.Second), Ended: ended, Created: events, Known: -1}
		if failed {
			c.Error = "boom"
		}
		recordCycle(t, s, c)
	}
	h := t0.Truncate(time.Hour)
	at("contacts", 1, h.Add(5*time.Minute), 3, false)
	at("contacts", 2, h.Add(59*time.Minute), 4, true)
	at("contacts", 3, h.Add(time.Hour), 10, false)
	at("contacts", 4, h.Add(3*time.Hour+time.Second), 0, false)
	at("deals", 1, h.Add(-time.Hour), 7, false)
	// An end time in another zone counts in its UTC hour.
	at("deals", 2, h.Add(30*time.Minute).In(time.FixedZone("X", 90*60)), 1, false)

	got, err := s.EventsPerHour(ctx, h.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []cursor.HourCount{
		{Resource: "contacts", Hour: h, Cycles: 2, Failed: 1, Events: 7},
		{Resource: "contacts", Hour: h.Add(time.Hour), Cycles: 1, Events: 10},
		{Resource: "contacts", Hour: h.Add(3 * time.Hour), Cycles: 1},
		{Resource: "deals", Hour: h.Add(-time.Hour), Cycles: 1, Events: 7},
		{Resource: "deals", Hour: h, Cycles: 1, Events: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events per hour =\n%+v\nwant\n%+v", got, want)
	}
	// since is truncated to its hour: the hour it falls in is counted.
	got, err = s.EventsPerHour(ctx, h.Add(time.Hour+30*time.Minute))
	if err != nil || len(got) != 2 || got[0].Hour != h.Add(time.Hour) {
		t.Errorf("events per hour since the middle of an hour = %+v, %v; want from that hour's start", got, err)
	}
}

func testBacklogSamples(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	ensure(t, s, "b", time.Time{})
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	err := s.RecordBacklog(ctx, []cursor.BacklogSample{
		{Destination: "a", At: m(0), Pending: 10, Dead: 1, OldestPending: m(-5)},
		{Destination: "a", At: m(1), Pending: 12, Dead: 1, OldestPending: m(-5)},
		{Destination: "b", At: m(1), Pending: 0},
		{Destination: "gone", At: m(1), Pending: 3},
	})
	if err != nil {
		t.Fatalf("RecordBacklog with a sample of an unknown destination: %v, want it dropped", err)
	}
	// Another process samples the same time: one sample stays, the last.
	if err := s.RecordBacklog(ctx, []cursor.BacklogSample{{Destination: "a", At: m(1), Pending: 11, Dead: 1, OldestPending: m(-4)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.BacklogHistory(ctx, "", m(0))
	if err != nil {
		t.Fatal(err)
	}
	want := []cursor.BacklogSample{
		{Destination: "a", At: m(0), Pending: 10, Dead: 1, OldestPending: m(-5)},
		{Destination: "a", At: m(1), Pending: 11, Dead: 1, OldestPending: m(-4)},
		{Destination: "b", At: m(1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backlog history =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := s.BacklogHistory(ctx, "", m(1)); err != nil || len(got) != 2 {
		t.Errorf("backlog history since the second sample = %+v, %v; want its 2 samples", got, err)
	}
	if got, err := s.BacklogHistory(ctx, "a", time.Time{}); err != nil || !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("backlog history of a = %+v, %v; want its 2 samples", got, err)
	}
	// Samples go with their destination.
	if err := s.DeleteDestination(ctx, "a", t0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BacklogHistory(ctx, "", time.Time{}); err != nil || !reflect.DeepEqual(got, want[2:]) {
		t.Errorf("backlog history after deleting a = %+v, %v; want b's sample only", got, err)
	}
}

func testBacklogAtMost(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	ensure(t, s, "a", time.Time{})
	ensure(t, s, "empty", time.Time{})
	var evs []cursor.Event
	for i := range 8 {
		evs = append(evs, event("contacts", fmt.Sprintf("e%d", i), "contact.created"))
	}
	addEvents(t, s, t0, evs...)
	fanout(t, s, "a", t0)
	// e0..e2 die; e3..e7 stay pending, e3 replayed later (so newer).
	var outs []cursor.Outcome
	for i := range 3 {
		outs = append(outs, cursor.Outcome{Destination: "a", EventID: fmt.Sprintf("e%d", i), At: t0, Status: cursor.StatusDead, Counted: true})
	}
	record(t, s, "a", outs...)
	if _, err := s.Replay(ctx, cursor.ReplayFilter{Destination: "a", EventID: "e3", Now: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	full, err := s.Backlog(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if full.Pending != 5 || full.Dead != 3 || !full.OldestPending.Equal(t0) {
		t.Fatalf("backlog = %+v, want 5 pending since t0, 3 dead", full)
	}
	for _, limit := range []int64{5, 6, 100} {
		if got, err := s.BacklogAtMost(ctx, "a", limit); err != nil || got != full {
			t.Errorf("BacklogAtMost(%d) = %+v, %v; want the backlog %+v", limit, got, err, full)
		}
	}
	// Above the limit, the counts read limit+1 and the oldest pending is
	// that of the earliest events counted.
	got, err := s.BacklogAtMost(ctx, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pending != 2 || got.Dead != 2 || !got.OldestPending.Equal(t0) {
		t.Errorf("BacklogAtMost(1) = %+v, want 2 pending (e3 replayed at t0+1h, e4 at t0), 2 dead", got)
	}
	if got, err := s.BacklogAtMost(ctx, "empty", 10); err != nil || got != (cursor.Backlog{Destination: "empty"}) {
		t.Errorf("BacklogAtMost of a destination with nothing = %+v, %v", got, err)
	}
	if err := s.DisableDestination(ctx, "empty", "410", t0); err != nil {
		t.Fatal(err)
	}
	if got, err := s.BacklogAtMost(ctx, "empty", 10); err != nil || !got.Disabled {
		t.Errorf("BacklogAtMost of a disabled destination = %+v, %v; want Disabled", got, err)
	}
	if _, err := s.BacklogAtMost(ctx, "nope", 10); !errors.Is(err, cursor.ErrUnknownDestination) {
		t.Errorf("BacklogAtMost of an unknown destination: %v, want ErrUnknownDestination", err)
	}
	if _, err := s.BacklogAtMost(ctx, "a", 0); err == nil {
		t.Error("BacklogAtMost with limit 0 succeeded")
	}
}

func testPruneHistory(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	day := 24 * time.Hour
	now := t0.Add(10 * day)
	for n := int64(1); n <= 1205; n++ {
		c := cursor.CycleRecord{Resource: "contacts", Cycle: n, Ended: now.Add(-time.Duration(1205-n) * time.Hour / 100), Created: 1, Known: -1}
		recordCycle(t, s, c)
	}
	for n := int64(1); n <= 3; n++ {
		recordCycle(t, s, cursor.CycleRecord{Resource: "deals", Cycle: n, Ended: now.Add(-time.Duration(n) * 3 * day), Known: -1})
	}
	ensure(t, s, "a", time.Time{})
	err := s.RecordBacklog(ctx, []cursor.BacklogSample{
		{Destination: "a", At: now.Add(-8 * day), Pending: 1},
		{Destination: "a", At: now.Add(-6 * day), Pending: 2},
		{Destination: "a", At: now, Pending: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Prune(ctx, cursor.PruneOptions{Now: now, CycleHistory: 2, HistoryRetention: 7 * day})
	if err != nil {
		t.Fatal(err)
	}
	if res.Cycles != 1203+1 || res.Samples != 1 {
		t.Errorf("prune = %+v, want 1204 cycles (all but 2 of each resource) and 1 sample", res)
	}
	if got := cycleNumbers(t, s, cursor.CycleFilter{Resource: "contacts"}); !reflect.DeepEqual(got, []int64{1205, 1204}) {
		t.Errorf("contacts' cycles after prune = %v, want the 2 newest", got)
	}
	if got := cycleNumbers(t, s, cursor.CycleFilter{Resource: "deals"}); !reflect.DeepEqual(got, []int64{3, 2}) {
		t.Errorf("deals' cycles after prune = %v, want the 2 newest", got)
	}
	hours, err := s.EventsPerHour(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hours {
		if h.Hour.Before(now.Add(-7 * day).Truncate(time.Hour)) {
			t.Errorf("hour %+v kept, older than the retention", h)
		}
	}
	// contacts: cycles over the last 12.04 h, in 14 hours; deals: 3 and
	// 6 days ago (9 is past the retention).
	if len(hours) != 16 {
		t.Errorf("hours after prune = %d (%+v), want 16", len(hours), hours)
	}
	samples, err := s.BacklogHistory(ctx, "", time.Time{})
	if err != nil || len(samples) != 2 {
		t.Errorf("samples after prune = %+v, %v; want the 2 within the retention", samples, err)
	}
	// Zero keeps everything.
	if res, err := s.Prune(ctx, cursor.PruneOptions{Now: now.Add(100 * day)}); err != nil || res != (cursor.PruneResult{}) {
		t.Errorf("prune with no history options = %+v, %v; want nothing", res, err)
	}
}

func testCursorsWithoutCount(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	cycle(t, s, "contacts", ids("c", 30), cursor.Finish{Watermark: t0, Now: t0.Add(time.Minute)})
	cycle(t, s, "deals", ids("d", 3), cursor.Finish{Watermark: t0.Add(time.Hour), Now: t0.Add(2 * time.Minute)})
	if err := s.ResetResource(ctx, "deals", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	full, err := s.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Cursors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(full) || len(got) != 2 {
		t.Fatalf("cursors = %+v, want the 2 resources", got)
	}
	for i := range got {
		want := full[i]
		want.Known = -1
		if got[i] != want {
			t.Errorf("cursor %d = %+v, want %+v", i, got[i], want)
		}
	}
}
