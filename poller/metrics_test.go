package poller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsForget: the series of a resource taken out of the config go
// with it, a cycle of its poller that ends afterwards records none, and a
// poller made for it later records afresh.
func TestMetricsForget(t *testing.T) {
	r := newRig(t, "")
	r.up.put(1, "x", t0, t0.Add(time.Second))
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cycle := func() *Poller {
		p, err := New(r.res, r.src, r.store, Options{Now: func() time.Time { return r.now }, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Cycle(t.Context(), holdLease(t, r.store, r.res.Name)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// series counts the series of the registry, and the polls counted.
	var polls float64
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		polls = 0
		for _, mf := range mfs {
			n += len(mf.GetMetric())
			if mf.GetName() == "pollhook_polls_total" {
				for _, m := range mf.GetMetric() {
					polls += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	p := cycle()
	if n := series(); n == 0 {
		t.Fatal("no series after a cycle")
	}
	m.Forget(p)
	if n := series(); n != 0 {
		t.Fatalf("%d series after Forget", n)
	}
	// Its cycle still running when it was forgotten ends: nothing.
	if _, err := p.Cycle(t.Context(), holdLease(t, r.store, r.res.Name)); err != nil {
		t.Fatal(err)
	}
	if n := series(); n != 0 {
		t.Fatalf("%d series after a forgotten poller's cycle", n)
	}
	cycle()
	if n := series(); n == 0 || polls != 1 {
		t.Errorf("a new poller of the resource: %d series, %g polls counted; want its one poll", n, polls)
	}
}
