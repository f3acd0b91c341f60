package reliability

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOffsetShiftDuringWalk: with offset paging, a delete on an earlier
// page while a cycle walks the listing shifts every later record back, so
// the records that move onto the page already read would be skipped; when
// the cycle also reads changes more than the lookback newer than them, the
// watermark would pass them for good. pollhook's offset pages overlap (by 6
// records for pages of 50), and a walk steps back when the overlap is not
// there: here the shift is 10.
func TestOffsetShiftDuringWalk(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "2. upstream: deletes ahead of an offset walk")
	fig.TrialsOf, fig.Trials, fig.Faults = "walks", 1, 1
	// Two seconds of dates a write: the 60 edits below span two minutes,
	// as they would between two polls 5 minutes apart.
	w := newWorld(t, UpstreamOptions{Seed: 10, Initial: 200, Step: 2 * time.Second})
	only := []string{"inc"}
	cfg := w.config(setup{Resources: only, Lookback: "1m",
		Inc: "    url: /a/items?since=${gmtDate:" + DateFormat + "}\n    pagination: { type: offset, limit: 50 }"})
	p := startReady(t, cfg)
	waitCleanOf(t, w, only, 30*time.Second)

	// Record 51 is edited first, then 1…50 and 52…60: the next cycle's
	// page 1 is records 1…50, page 2 starts at offset 44. Records 1…10
	// are deleted just before page 2 is served: record 51 moves from
	// offset 50 to 40.
	var once sync.Once
	w.up.SetHook(func(l ListRequest) {
		if l.Page == 2 {
			once.Do(func() {
				for id := 1; id <= 10; id++ {
					w.up.Delete(id)
				}
			})
		}
	})
	ids := []int{51}
	for id := 1; id <= 60; id++ {
		if id != 51 {
			ids = append(ids, id)
		}
	}
	w.up.UpdateMany(ids)
	w.finish(t, p, cfg, fig, 30*time.Second, only...)
	steps := strings.Count(p.out.String(), "the listing shifted during the walk")
	if steps == 0 {
		t.Error("pollhook never stepped back: the deletes staged no shift, and the test shows nothing")
	}
	fig.Note = fmt.Sprintf("records 1-10 deleted as page 2 was asked for; pollhook stepped back %d time(s)", steps)
}

// TestLongWalkLaggingClock: a record on a page already read changes
// during a walk longer than the lookback (a throttled walk of a large
// resource, a long Retry-After), and the API's clock runs behind
// pollhook's by more than the walk, so capping the watermark at the
// cycle's start by pollhook's clock does not bind: the next cycle would
// ask only for what changed after the greatest date read less the
// lookback, and miss it. The watermark is also capped at the first page's
// Date header, the API's clock when the walk began.
func TestLongWalkLaggingClock(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "2. upstream: a walk longer than the lookback, API clock behind")
	fig.TrialsOf, fig.Trials, fig.Faults = "walks", 1, 1
	// The API's dates are in January 2026, one second a write: the
	// writes the hook makes stand for 80 s of the API's life while the
	// walk is held up.
	w := newWorld(t, UpstreamOptions{Seed: 11, Initial: 100, Step: time.Second})
	only := []string{"inc"}
	cfg := w.config(setup{Resources: only, Lookback: "1m",
		Inc: strings.Replace(incDefault, "limit: 50", "limit: 25", 1)})
	p := startReady(t, cfg)
	waitCleanOf(t, w, only, 30*time.Second)

	// The next cycle's window holds records 1…30 and 40…100: four pages.
	// While page 3 is asked for, record 5 (page 1) changes, then records
	// 85…100 (page 4) change five times over 80 s of dates.
	var once sync.Once
	var fired atomic.Bool
	w.up.SetHook(func(l ListRequest) {
		if l.Page == 3 {
			once.Do(func() {
				fired.Store(true)
				w.up.Update(5)
				late := make([]int, 0, 80)
				for range 5 {
					for id := 85; id <= 100; id++ {
						late = append(late, id)
					}
				}
				w.up.UpdateMany(late)
			})
		}
	})
	ids := make([]int, 30)
	for i := range ids {
		ids[i] = i + 1
	}
	w.up.UpdateMany(ids)
	w.finish(t, p, cfg, fig, 30*time.Second, only...)
	if !fired.Load() {
		t.Error("pollhook never asked for page 3: the hook made no change during the walk, and the test shows nothing")
	}
	fig.Note = "record 5 (page 1) changed as page 3 was asked for, then 80 s of the API's dates passed on page 4; lookback 1 m"
}
