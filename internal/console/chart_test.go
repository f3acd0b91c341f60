package console

import (
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func TestEventsChart(t *testing.T) {
	now := t0.Add(30 * time.Minute) // 10:30
	hours := []cursor.HourCount{
		{Resource: "contacts", Hour: t0, Events: 30},                        // this hour
		{Resource: "deals", Hour: t0, Events: 12},                           // stacked on it
		{Resource: "contacts", Hour: t0.Add(-23 * time.Hour), Events: 5},    // the first hour shown
		{Resource: "contacts", Hour: t0.Add(-24 * time.Hour), Events: 1000}, // too old
		{Resource: "other", Hour: t0, Events: 1000},                         // not asked for
		{Resource: "contacts", Hour: t0.Add(-5 * time.Hour), Events: 0},     // nothing to draw
	}
	c := eventsChart(hours, []string{"contacts", "deals"}, now, halfW)
	if c.Empty != "" || len(c.Bars) != 3 || len(c.Rows) != 24 {
		t.Fatalf("chart: empty %q, %d bars, %d rows; want 3 bars over 24 hours", c.Empty, len(c.Bars), len(c.Rows))
	}
	// The axis tops at a round number above the highest stack (42).
	if top := c.YTicks[len(c.YTicks)-1]; top.Label != "50" || top.Pos != c.PlotY {
		t.Errorf("top tick %+v, want 50 at the top of the plot", top)
	}
	last := c.Rows[23]
	if last[0] != "10:00–11:00" || last[1] != "30" || last[2] != "12" {
		t.Errorf("last hour's row = %v", last)
	}
	first, a, b := c.Bars[0], c.Bars[1], c.Bars[2]
	if first.Class != "s0" || first.X > c.PlotX+c.PlotW/24 {
		t.Errorf("the first hour's bar %+v is not in the first slot", first)
	}
	// Stacked: deals sits on contacts, and the stack is 42/50 of the plot.
	if a.Class != "s0" || b.Class != "s1" || b.Y+b.H != a.Y {
		t.Errorf("bars of the last hour %+v, %+v: want deals stacked on contacts", a, b)
	}
	if got, want := a.H+b.H, c.PlotH*42/50; got-want > 0.01 || want-got > 0.01 {
		t.Errorf("stack height %.2f, want %.2f", got, want)
	}
	if !strings.Contains(b.Title, "deals, 10:00–11:00 UTC: 12 events") {
		t.Errorf("bar title %q", b.Title)
	}
	if e := eventsChart(nil, []string{"contacts"}, now, fullW); e.Empty == "" || e.W != fullW {
		t.Errorf("a chart of nothing: %+v, want it to say so", e)
	}
}

func TestBacklogChart(t *testing.T) {
	now := t0
	var samples []cursor.BacklogSample
	for m := 0; m < 10; m++ { // app: 10 samples, then a gap of an hour, then 5
		samples = append(samples, cursor.BacklogSample{Destination: "app", At: now.Add(-3*time.Hour + time.Duration(m)*time.Minute), Pending: int64(m)})
	}
	for m := 0; m < 5; m++ {
		samples = append(samples, cursor.BacklogSample{Destination: "app", At: now.Add(-time.Hour + time.Duration(m)*time.Minute), Pending: 120, Dead: 2})
	}
	samples = append(samples, cursor.BacklogSample{Destination: "old", At: now.Add(-25 * time.Hour), Pending: 1e6})
	c := backlogChart(samples, []string{"app", "old", "quiet"}, now, time.Minute, halfW)
	if len(c.Lines) != 2 {
		t.Errorf("%d lines, want 2: the gap of an hour breaks app's", len(c.Lines))
	}
	if top := c.YTicks[len(c.YTicks)-1]; top.Label != "200" {
		t.Errorf("top tick %+v, want 200 (the samples older than a day do not count)", top)
	}
	if len(c.Dots) != 1 || !strings.Contains(c.Dots[0].Title, "120 pending") {
		t.Errorf("dots %+v, want app's last sample", c.Dots)
	}
	want := [][]string{
		{"app", "15", when(now.Add(-time.Hour + 4*time.Minute)), "120", "2"},
		{"old", "0", "—", "—", "—"},
		{"quiet", "0", "—", "—", "—"},
	}
	for i, row := range c.Rows {
		if strings.Join(row, "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d = %v, want %v", i, row, want[i])
		}
	}
	if e := backlogChart(nil, []string{"app"}, now, time.Minute, halfW); !strings.Contains(e.Empty, "every 1 min") {
		t.Errorf("a chart with no samples says %q", e.Empty)
	}
}

func TestFormats(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{num(0), "0"}, {num(999), "999"}, {num(1000), "1,000"}, {num(-1234567), "-1,234,567"},
		{dur(340 * time.Millisecond), "340 ms"}, {dur(1250 * time.Millisecond), "1.2 s"}, {dur(42 * time.Second), "42 s"},
		{dur(125 * time.Second), "2 min 5 s"}, {dur(0), "0 ms"},
		{ago(t0, time.Time{}), "—"}, {ago(t0, t0), "just now"}, {ago(t0, t0.Add(-90*time.Second)), "1 min ago"},
		{ago(t0, t0.Add(-125*time.Minute)), "2 h 5 min ago"}, {ago(t0, t0.Add(-30*time.Hour)), "30 h ago"},
		{ago(t0, t0.Add(-72*time.Hour)), "3 d ago"}, {ago(t0, t0.Add(3*time.Minute)), "in 3 min"},
		{when(time.Time{}), "—"}, {when(t0.In(time.FixedZone("X", 3600))), "2026-11-22 10:00:00 UTC"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 1: 1, 3: 5, 42: 50, 100: 100, 101: 200, 999: 1000, 123456: 200000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
