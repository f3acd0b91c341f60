package reliability

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestDSTFold: the API writes its dates as local times without an
// offset, and the clock goes through a daylight-saving fold, whose
// repeated hour reads the same in both passes: pollhook reads it as the
// earlier one, so a record changed in the second pass can read as dated
// before its last change (01:10 EST after 01:50 EDT). Its change must be
// reported all the same, and counted. New York repeats an hour; Lord Howe
// half an hour. The upstream's clock is logical (37 s, or 13 s, a write:
// no write of the second pass reads the same as one of the first), so that
// a few seconds of edits cross the fold.
func TestDSTFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone  string
		start time.Time
		step  time.Duration
	}{
		// 2026-11-01: 01:00–01:59 EDT (05:00Z) again as EST (06:00Z).
		{"America/New_York", time.Date(2026, 11, 1, 4, 40, 0, 0, time.UTC), 37 * time.Second},
		// 2026-04-05: 01:30–01:59 +11 (14:30Z) again as +10:30 (15:00Z).
		{"Australia/Lord_Howe", time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC), 13 * time.Second},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			zone, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Skip("no time zone database:", err)
			}
			fig := newFigures(t, "2. upstream: zone-less dates through a DST fold ("+tc.zone+")")
			fig.TrialsOf = "writes"
			w := newWorld(t, UpstreamOptions{Seed: 50, Start: tc.start, Step: tc.step, Zone: zone, Initial: 40})
			cfg := w.config(setup{Zone: tc.zone})
			p := startReady(t, cfg)
			waitCleanOf(t, w, []string{"inc", "snap"}, 30*time.Second)

			// About 400 writes: two to four hours of the API's clock.
			stop := w.mutate(15*time.Millisecond, 0)
			pause(6 * time.Second)
			stop()
			w.drain(p, cfg, []string{"inc", "snap"}, 30*time.Second)
			back := 0.0
			for _, r := range []string{"inc", "snap"} {
				n := p.metrics()[series("pollhook_records_date_backwards_total", "resource", r)]
				if n == 0 {
					t.Errorf("%s: no record's date went back: the writes staged no fold, and the test shows nothing", r)
				}
				back += n
			}
			w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
			fig.Trials = len(w.up.Log())
			fig.Faults = int(back)
			fig.Note = fmt.Sprintf("dates written as local %s times without offset, the clock through the fold; %g changes read as dated before the last one, each reported and counted", tc.zone, back)
		})
	}
}

// TestFutureDateCorrected: a record is dated a year ahead (a clock gone
// wrong), then put right with new content, then edited again and again:
// the record put right reads as dated before the version the store holds,
// and every later edit is before that future date too. Each version must
// be reported (the edits are a cycle and a half apart, so none collapses
// into the next), and the dates gone back counted.
func TestFutureDateCorrected(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "2. upstream: a date in the future, put right")
	fig.TrialsOf = "versions"
	w := newWorld(t, UpstreamOptions{Seed: 51, RealTime: true, Initial: 30})
	cfg := w.config(setup{})
	p := startReady(t, cfg)
	waitCleanOf(t, w, []string{"inc", "snap"}, 30*time.Second)

	const id = 7
	c, ok := w.up.UpdateAt(id, time.Now().AddDate(1, 0, 0))
	if !ok {
		t.Fatalf("record %d is not live", id)
	}
	revs := []int{c.Rev}
	for range 5 {
		pause(1500 * time.Millisecond)
		c, _ := w.up.Update(id) // dated now: before the stored date
		revs = append(revs, c.Rev)
	}
	w.drain(p, cfg, []string{"inc", "snap"}, 30*time.Second)
	m := p.metrics()
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	for _, r := range []string{"inc", "snap"} {
		reported := map[int]bool{}
		for _, d := range w.rcv.Deliveries() {
			for _, ev := range d.Events {
				if ev.Resource == r && ev.ObjectID == strconv.Itoa(id) {
					var data eventData
					if json.Unmarshal(ev.Data, &data) == nil {
						reported[data.Rev] = true
					}
				}
			}
		}
		for _, rev := range revs {
			if !reported[rev] {
				t.Errorf("%s: record %d rev %d never reported (reported %v)", r, id, rev, reported)
			}
		}
		if n := m[series("pollhook_records_future_total", "resource", r)]; n == 0 {
			t.Errorf("%s: the date a year ahead was not counted in pollhook_records_future_total", r)
		}
		if n := m[series("pollhook_records_date_backwards_total", "resource", r)]; n < 1 {
			t.Errorf("%s: the date put right was not counted in pollhook_records_date_backwards_total", r)
		}
	}
	fig.Trials = len(revs)
	fig.Note = fmt.Sprintf("record %d dated a year ahead, then put right and edited 4 times, 1.5 s apart: each of its %d versions reported in both resources", id, len(revs))
}
