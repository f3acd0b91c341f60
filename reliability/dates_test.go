package reliability

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
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
		zone    string
		start   time.Time
		step    time.Duration
		foldEnd time.Time // the repeated hour's second pass ends
	}{
		// 2026-11-01: 01:00–01:59 EDT (05:00Z) again as EST (06:00Z).
		{"America/New_York", time.Date(2026, 11, 1, 4, 40, 0, 0, time.UTC), 37 * time.Second, time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC)},
		// 2026-04-05: 01:30–01:59 +11 (14:30Z) again as +10:30 (15:00Z).
		{"Australia/Lord_Howe", time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC), 13 * time.Second, time.Date(2026, 4, 4, 15, 30, 0, 0, time.UTC)},
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
			// inc asks for changes since a local date, which the API
			// compares as text: in the fold's second pass, only a since
			// taken back to the fold's start lists its changes.
			inc := strings.Replace(incDefault, "since=${gmtDate:"+DateFormat+"}", "since_local=${date:"+LocalFormat+"}", 1)
			if inc == incDefault {
				t.Fatal("the inc resource's url has no since to replace")
			}
			cfg := w.config(setup{Zone: tc.zone, Inc: inc})
			p := startReady(t, cfg)
			waitCleanOf(t, w, []string{"inc", "snap"}, 30*time.Second)

			// About 400 writes: two to four hours of the API's clock.
			// On a loaded machine the writes come slower: they go on
			// (up to 40 s) until the API's clock is past the fold.
			stop := w.mutate(15*time.Millisecond, 0)
			pause(6 * time.Second)
			for end := time.Now().Add(34 * time.Second); time.Now().Before(end); pause(500 * time.Millisecond) {
				if log := w.up.Log(); log[len(log)-1].Updated.After(tc.foldEnd.Add(10 * time.Minute)) {
					break
				}
			}
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
		reported := w.reportedRevs(r, id)
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

// TestSameDateEdits: an API whose dates have seconds only dates two edits
// within one second alike (so does a zone-less date in a DST fold's
// second pass, at the first's wall-clock time). A record is edited, and
// once the edit is reported, edited again under the same date, four
// times: each version must be reported, in both resources.
func TestSameDateEdits(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "2. upstream: edits under the same updated date")
	fig.TrialsOf = "versions"
	w := newWorld(t, UpstreamOptions{Seed: 52, RealTime: true, Initial: 30})
	cfg := w.config(setup{})
	p := startReady(t, cfg)
	waitCleanOf(t, w, []string{"inc", "snap"}, 30*time.Second)

	const id = 9
	at := time.Now().UTC().Truncate(time.Second)
	var revs []int
	for range 5 {
		c, ok := w.up.UpdateAt(id, at)
		if !ok {
			t.Fatalf("record %d is not live", id)
		}
		revs = append(revs, c.Rev)
		w.drain(p, cfg, []string{"inc", "snap"}, 30*time.Second)
	}
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	for _, r := range []string{"inc", "snap"} {
		reported := w.reportedRevs(r, id)
		for _, rev := range revs {
			if !reported[rev] {
				t.Errorf("%s: record %d rev %d, dated as the rev before, never reported (reported %v)", r, id, rev, reported)
			}
		}
	}
	fig.Trials = len(revs)
	fig.Note = fmt.Sprintf("record %d edited 5 times under one updated date, each edit after the one before was reported: each version reported in both resources", id)
}

// reportedRevs are the versions of record id that events of resource
// reported to the receiver.
func (w *world) reportedRevs(resource string, id int) map[int]bool {
	reported := map[int]bool{}
	for _, d := range w.rcv.Deliveries() {
		for _, ev := range d.Events {
			if ev.Resource == resource && ev.ObjectID == strconv.Itoa(id) {
				var data eventData
				if json.Unmarshal(ev.Data, &data) == nil {
					reported[data.Rev] = true
				}
			}
		}
	}
	return reported
}
