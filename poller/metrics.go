package poller

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the poller's Prometheus metrics. A nil *Metrics records
// nothing. Safe for concurrent use.
type Metrics struct {
	// mu orders Observe and Forget, so that no cycle records a series
	// after it was forgotten.
	mu sync.Mutex

	polls       *prometheus.CounterVec
	records     *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	future      *prometheus.CounterVec
	backwards   *prometheus.CounterVec
	lookups     *prometheus.CounterVec
	events      *prometheus.CounterVec
	heldBack    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
}

// NewMetrics registers the poller's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_polls_total",
			Help: "Poll cycles by resource and outcome (ok or error).",
		}, []string{"resource", "outcome"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_records_seen_total",
			Help: "Records fetched and diffed, by resource.",
		}, []string{"resource"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_records_skipped_total",
			Help: "Records reported and skipped (no id, or a missing or unparseable date), by resource.",
		}, []string{"resource"}),
		future: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_records_future_total",
			Help: "Records whose updated date was after the start of the cycle that read them, by resource.",
		}, []string{"resource"}),
		backwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_records_date_backwards_total",
			Help: "Records reported as updated although their updated date was before the one the store held (a DST fold, a clock put right), by resource.",
		}, []string{"resource"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_lookups_total",
			Help: "Records missing from a snapshot listing looked up at item_url, by resource and outcome (gone, found, failed).",
		}, []string{"resource", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_events_total",
			Help: "Events written to the outbox, by resource and type.",
		}, []string{"resource", "type"}),
		heldBack: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollhook_deletes_held_back",
			Help: "Deletes the delete guard held back in the resource's last complete cycle.",
		}, []string{"resource"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollhook_last_successful_poll_timestamp_seconds",
			Help: "When the resource's last complete cycle ended (Unix time).",
		}, []string{"resource"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pollhook_poll_duration_seconds",
			Help:    "Duration of poll cycles, by resource.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"resource"}),
	}
	reg.MustRegister(m.polls, m.records, m.skipped, m.future, m.backwards, m.lookups, m.events, m.heldBack, m.lastSuccess, m.duration)
	return m
}

// Observe records one cycle of p's resource.
func (m *Metrics) Observe(p *Poller, res CycleResult, err error) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.retired {
		return
	}
	r := p.Resource()
	m.records.WithLabelValues(r.Name).Add(float64(res.Records))
	m.skipped.WithLabelValues(r.Name).Add(float64(res.Skipped))
	m.future.WithLabelValues(r.Name).Add(float64(res.Future))
	m.backwards.WithLabelValues(r.Name).Add(float64(res.Backwards))
	for outcome, n := range map[string]int{"gone": res.Lookups.Gone, "found": res.Lookups.Found, "failed": res.Lookups.Failed} {
		if n > 0 {
			m.lookups.WithLabelValues(r.Name, outcome).Add(float64(n))
		}
	}
	m.duration.WithLabelValues(r.Name).Observe(res.Duration.Seconds())
	for verb, n := range map[string]float64{verbCreated: float64(res.Created), verbUpdated: float64(res.Updated), verbDeleted: float64(res.Deleted)} {
		if n > 0 {
			m.events.WithLabelValues(r.Name, r.EventType(verb)).Add(n)
		}
	}
	if err != nil {
		m.polls.WithLabelValues(r.Name, "error").Inc()
		return
	}
	m.polls.WithLabelValues(r.Name, "ok").Inc()
	m.heldBack.WithLabelValues(r.Name).Set(float64(res.HeldBack))
	m.lastSuccess.WithLabelValues(r.Name).Set(float64(p.now().Unix()))
}

// Forget removes the series of p's resource, which is taken out of the
// configuration: its last cycle, if one is still running, records
// nothing. A poller made for the resource later (put back in the
// configuration) records as new.
func (m *Metrics) Forget(p *Poller) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p.retired = true
	l := prometheus.Labels{"resource": p.Resource().Name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.polls, m.records, m.skipped, m.future, m.backwards, m.lookups, m.events, m.heldBack, m.lastSuccess, m.duration,
	} {
		v.DeletePartialMatch(l)
	}
}
