package emit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	backlog  *prometheus.GaugeVec
	oldest   *prometheus.GaugeVec
	disabled *prometheus.GaugeVec
}

// NewMetrics registers the delivery metrics with reg (none when reg is nil)
// and returns them:
//
//	pollhook_delivery_attempts_total{destination,outcome}  counter, one per event per attempt;
//	                                                       outcome delivered|failed|gone|dead
//	pollhook_delivery_latency_seconds{destination}        histogram, one per request
//	pollhook_outbox_backlog{destination}                  gauge, pending deliveries
//	pollhook_outbox_oldest_pending_seconds{destination}   gauge, age of the oldest pending delivery
//	pollhook_destination_disabled{destination}            gauge, 1 while disabled (after a 410)
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
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollhook_outbox_backlog",
			Help: "Events waiting to be delivered to a destination (pending deliveries).",
		}, []string{"destination"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollhook_outbox_oldest_pending_seconds",
			Help: "Age of the oldest pending delivery of a destination; 0 when none is pending.",
		}, []string{"destination"}),
		disabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pollhook_destination_disabled",
			Help: "1 while a destination is disabled (it answered 410 Gone), else 0.",
		}, []string{"destination"}),
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.latency, m.backlog, m.oldest, m.disabled)
	}
	return m
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

func (m *Metrics) setBacklog(dest string, pending int64, oldest time.Duration) {
	if m == nil {
		return
	}
	m.backlog.WithLabelValues(dest).Set(float64(pending))
	m.oldest.WithLabelValues(dest).Set(max(oldest, 0).Seconds())
}

func (m *Metrics) setDisabled(dest string, disabled bool) {
	if m == nil {
		return
	}
	v := 0.0
	if disabled {
		v = 1
	}
	m.disabled.WithLabelValues(dest).Set(v)
}
