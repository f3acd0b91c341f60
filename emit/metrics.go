package emit

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pollhook/pollhook/cursor"
)

// Outcomes of a delivery attempt, the outcome label of
// pollhook_delivery_attempts_total.
const (
	OutcomeDelivered = "delivered" // a 2xx response: the event is delivered
	OutcomeFailed    = "failed"    // a failure that will be retried
	OutcomeGone      = "gone"      // a 410: the destination is disabled
	OutcomeDead      = "dead"      // the last attempt of the schedule failed
)

// Metrics are the delivery engine's Prometheus metrics. A nil *Metrics
// records nothing. Safe for concurrent use.
type Metrics struct {
	attempts *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	filtered *prometheus.CounterVec
}

// Reasons an event is kept from a destination by its filter, the reason
// label of pollhook_events_filtered_total.
const (
	FilterRejected = "rejected" // the filter gave false or null (or nothing)
	FilterError    = "error"    // the filter failed on the event
)

// NewMetrics registers the delivery metrics with reg (none when reg is nil)
// and returns them:
//
//	pollhook_delivery_attempts_total{destination,outcome}  counter, one per event per attempt;
//	                                                       outcome delivered|failed|gone|dead
//	pollhook_delivery_latency_seconds{destination}        histogram, one per request
//	pollhook_events_filtered_total{destination,reason}    counter, events a destination's filter
//	                                                       kept from it; reason rejected|error
//
// The series of a destination removed from the engine are removed with it.
// The backlog gauges are read from the store when scraped: see
// NewBacklogCollector.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_delivery_attempts_total",
			Help: "Delivery attempts, one per event per attempt, by destination and outcome (delivered, failed, gone, dead).",
		}, []string{"destination", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pollhook_delivery_latency_seconds",
			Help:    "Time from sending a delivery request to its response, by destination.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"destination"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pollhook_events_filtered_total",
			Help: "Events of the types a destination takes that its filter kept from it, by destination and reason (rejected, error).",
		}, []string{"destination", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.latency, m.filtered)
	}
	return m
}

func (m *Metrics) filteredOut(dest string, rejected, failed int) {
	if m == nil {
		return
	}
	if rejected > 0 {
		m.filtered.WithLabelValues(dest, FilterRejected).Add(float64(rejected))
	}
	if failed > 0 {
		m.filtered.WithLabelValues(dest, FilterError).Add(float64(failed))
	}
}

func (m *Metrics) attempt(dest, outcome string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.attempts.WithLabelValues(dest, outcome).Add(float64(n))
}

func (m *Metrics) observeLatency(dest string, d time.Duration) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(dest).Observe(d.Seconds())
}

// forget removes the series of dest.
func (m *Metrics) forget(dest string) {
	if m == nil {
		return
	}
	m.attempts.DeletePartialMatch(prometheus.Labels{"destination": dest})
	m.latency.DeletePartialMatch(prometheus.Labels{"destination": dest})
	m.filtered.DeletePartialMatch(prometheus.Labels{"destination": dest})
}

// BacklogStore is what the backlog collector reads; every cursor.Store
// implements it.
type BacklogStore interface {
	Backlogs(ctx context.Context) ([]cursor.Backlog, error)
}

// backlogTimeout bounds the store read of one scrape.
const backlogTimeout = 5 * time.Second

var (
	backlogDesc = prometheus.NewDesc("pollhook_outbox_backlog",
		"Events waiting to be delivered to a destination (pending deliveries).", []string{"destination"}, nil)
	oldestDesc = prometheus.NewDesc("pollhook_outbox_oldest_pending_seconds",
		"Age of the oldest pending delivery of a destination; 0 when none is pending.", []string{"destination"}, nil)
	deadDesc = prometheus.NewDesc("pollhook_outbox_dead",
		"Deliveries of a destination that failed their last attempt and wait for a replay.", []string{"destination"}, nil)
	disabledDesc = prometheus.NewDesc("pollhook_destination_disabled",
		"1 while a destination is disabled (it answered 410 Gone), else 0.", []string{"destination"}, nil)
)

type backlogCollector struct {
	store BacklogStore
	now   func() time.Time
}

// NewBacklogCollector returns a collector of the delivery backlog, read
// from store at each scrape, so that it is never stale (the age of the
// oldest pending delivery grows while a destination is disabled) and a
// destination the store no longer has has no series:
//
//	pollhook_outbox_backlog{destination}                  gauge, pending deliveries
//	pollhook_outbox_oldest_pending_seconds{destination}   gauge, age of the oldest pending delivery
//	pollhook_outbox_dead{destination}                     gauge, dead deliveries
//	pollhook_destination_disabled{destination}            gauge, 1 while disabled (after a 410)
//
// now is the clock; nil means time.Now. A failed read reports nothing (and
// /readyz tells why).
func NewBacklogCollector(store BacklogStore, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	return &backlogCollector{store: store, now: now}
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
	ch <- deadDesc
	ch <- disabledDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	bs, err := c.store.Backlogs(ctx)
	if err != nil {
		return
	}
	now := c.now()
	for _, b := range bs {
		var age time.Duration
		if !b.OldestPending.IsZero() {
			age = max(now.Sub(b.OldestPending), 0)
		}
		disabled := 0.0
		if b.Disabled {
			disabled = 1
		}
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Pending), b.Destination)
		ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age.Seconds(), b.Destination)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(b.Dead), b.Destination)
		ch <- prometheus.MustNewConstMetric(disabledDesc, prometheus.GaugeValue, disabled, b.Destination)
	}
}
