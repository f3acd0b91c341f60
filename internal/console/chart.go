package console

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// A chart is an SVG drawn on the server: bars of events per hour, or
// lines of a backlog over time. Its series take the classes s0…s7 of the
// stylesheet (no inline style: the pages' Content-Security-Policy allows
// none), and its data is also a table, for screen readers and for those
// who would rather read.
type chart struct {
	Title string
	// Note says where the figures come from.
	Note string
	// W and H are the viewBox; the plot is the area inside the axes.
	W, H                       int
	PlotX, PlotY, PlotW, PlotH float64
	YTicks, XTicks             []tick
	Bars                       []bar
	Lines                      []line
	Dots                       []dot
	Legend                     []legend
	// Empty, when set, replaces the plot: there is nothing to draw.
	Empty string
	Head  []string
	Rows  [][]string
}

type tick struct {
	Pos   float64
	Label string
	// Class anchors a label at an end of the axis: first or last.
	Class string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type line struct {
	Points string
	Class  string
}

type dot struct {
	X, Y  float64
	Class string
	Title string
}

type legend struct{ Name, Class string }

// Chart geometry: the width of a chart in half a page and of one across
// it (so that the text of both shows at one size), its height, the
// padding around its plot.
const (
	halfW, fullW  = 720, 1240
	chartH        = 220
	padL, padR    = 56, 12
	padT, padB    = 12, 28
	seriesClasses = 8
)

func newChart(title string, w int) *chart {
	return &chart{
		Title: title, W: w, H: chartH,
		PlotX: padL, PlotY: padT, PlotW: float64(w - padL - padR), PlotH: chartH - padT - padB,
	}
}

func seriesClass(i int) string { return "s" + strconv.Itoa(i%seriesClasses) }

// yAxis sets ticks from 0 to a round maximum at or above top, and
// returns that maximum.
func (c *chart) yAxis(top float64) float64 {
	m := niceCeil(top)
	for i := 0; i <= 4; i++ {
		v := m * float64(i) / 4
		if m < 4 && v != float64(int64(v)) {
			continue // no fractional ticks for small counts
		}
		c.YTicks = append(c.YTicks, tick{Pos: c.PlotY + c.PlotH*(1-v/m), Label: num(int64(v))})
	}
	return m
}

// hourLabel is the label of an hour on an axis: "14:00".
func hourLabel(t time.Time) string { return t.UTC().Format("15:04") }

// eventsChart is a bar chart, w wide, of the events each resource wrote
// per hour over the ChartSpan before now, the resources' bars stacked.
func eventsChart(hours []cursor.HourCount, resources []string, now time.Time, w int) *chart {
	c := newChart("Events per hour, last 24 h (UTC)", w)
	c.Note = "Events written by the cycles that ended in each hour."
	n := int(ChartSpan / time.Hour)
	first := now.UTC().Truncate(time.Hour).Add(-time.Duration(n-1) * time.Hour)
	index := map[string]int{}
	for i, r := range resources {
		index[r] = i
		c.Legend = append(c.Legend, legend{Name: r, Class: seriesClass(i)})
	}
	counts := make([][]int64, n) // hour, resource
	for i := range counts {
		counts[i] = make([]int64, len(resources))
	}
	var top, total int64
	for _, h := range hours {
		i := int(h.Hour.Sub(first) / time.Hour)
		r, ok := index[h.Resource]
		if !ok || i < 0 || i >= n {
			continue
		}
		counts[i][r] += h.Events
		total += h.Events
	}
	for _, hc := range counts {
		var sum int64
		for _, v := range hc {
			sum += v
		}
		top = max(top, sum)
	}
	c.Head = append([]string{"hour (UTC)"}, resources...)
	slot := c.PlotW / float64(n)
	m := c.yAxis(float64(top))
	for i, hc := range counts {
		at := first.Add(time.Duration(i) * time.Hour)
		x := c.PlotX + slot*float64(i)
		if i%6 == 0 || i == n-1 {
			c.XTicks = append(c.XTicks, tick{Pos: x + slot/2, Label: hourLabel(at)})
		}
		row := []string{hourLabel(at) + "–" + hourLabel(at.Add(time.Hour))}
		base := c.PlotY + c.PlotH
		for r, v := range hc {
			row = append(row, num(v))
			if v == 0 {
				continue
			}
			h := c.PlotH * float64(v) / m
			base -= h
			c.Bars = append(c.Bars, bar{
				X: x + slot*0.15, Y: base, W: slot * 0.7, H: h, Class: seriesClass(r),
				Title: fmt.Sprintf("%s, %s–%s UTC: %s events", resources[r], hourLabel(at), hourLabel(at.Add(time.Hour)), num(v)),
			})
		}
		c.Rows = append(c.Rows, row)
	}
	if total == 0 {
		c.Empty = "No events in the last 24 hours."
	}
	return c
}

// backlogChart is a line chart, w wide, of the pending deliveries of each
// destination, from the samples of the ChartSpan before now; a gap of
// more than three sample intervals (pollhook was not running) breaks a
// line.
func backlogChart(samples []cursor.BacklogSample, dests []string, now time.Time, every time.Duration, w int) *chart {
	c := newChart("Backlog (pending deliveries), last 24 h (UTC)", w)
	c.Note = "Sampled every " + span(every) + " by the running pollhook."
	from := now.Add(-ChartSpan)
	index := map[string]int{}
	for i, d := range dests {
		index[d] = i
		c.Legend = append(c.Legend, legend{Name: d, Class: seriesClass(i)})
	}
	var top int64
	for _, s := range samples {
		if _, ok := index[s.Destination]; ok && !s.At.Before(from) {
			top = max(top, s.Pending)
		}
	}
	m := c.yAxis(float64(top))
	x := func(t time.Time) float64 { return c.PlotX + c.PlotW*float64(t.Sub(from))/float64(ChartSpan) }
	y := func(v int64) float64 { return c.PlotY + c.PlotH*(1-float64(v)/m) }
	for i := 0; i <= 4; i++ {
		at := from.Add(time.Duration(i) * ChartSpan / 4)
		t := tick{Pos: x(at), Label: at.UTC().Format("15:04")}
		switch i {
		case 0:
			t.Class = "first"
		case 4:
			t.Class = "last"
		}
		c.XTicks = append(c.XTicks, t)
	}
	type series struct {
		pts  []string
		last cursor.BacklogSample
	}
	all := make([]series, len(dests))
	flush := func(i int) {
		if len(all[i].pts) > 1 {
			c.Lines = append(c.Lines, line{Points: strings.Join(all[i].pts, " "), Class: seriesClass(i)})
		}
		all[i].pts = nil
	}
	n := 0
	for _, s := range samples {
		i, ok := index[s.Destination]
		if !ok || s.At.Before(from) {
			continue
		}
		n++
		if prev := all[i].last; !prev.At.IsZero() && s.At.Sub(prev.At) > 3*every {
			flush(i)
		}
		all[i].pts = append(all[i].pts, fmt.Sprintf("%.1f,%.1f", x(s.At), y(s.Pending)))
		all[i].last = s
	}
	c.Head = []string{"destination", "samples", "last sample", "pending", "dead"}
	for i, d := range dests {
		flush(i)
		last := all[i].last
		if last.At.IsZero() {
			c.Rows = append(c.Rows, []string{d, "0", "—", "—", "—"})
			continue
		}
		c.Dots = append(c.Dots, dot{X: x(last.At), Y: y(last.Pending), Class: seriesClass(i),
			Title: fmt.Sprintf("%s at %s: %s pending", d, when(last.At), num(last.Pending))})
		count := 0
		for _, s := range samples {
			if s.Destination == d && !s.At.Before(from) {
				count++
			}
		}
		c.Rows = append(c.Rows, []string{d, strconv.Itoa(count), when(last.At), num(last.Pending), num(last.Dead)})
	}
	if n == 0 {
		c.Empty = "No backlog samples in the last 24 hours: pollhook samples each destination every " + span(every) + " while it runs."
	}
	return c
}

// Right and Bottom are the plot's right and bottom edges; LabelX is where
// the y labels end, AxisY the baseline of the x labels.
func (c *chart) Right() float64  { return c.PlotX + c.PlotW }
func (c *chart) Bottom() float64 { return c.PlotY + c.PlotH }
func (c *chart) LabelX() float64 { return c.PlotX - 8 }
func (c *chart) AxisY() float64  { return c.PlotY + c.PlotH + 18 }
