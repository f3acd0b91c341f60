package reliability

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// FailMode is how a Receiver fails a request.
type FailMode string

// The ways a Receiver fails.
const (
	// Fail5xx answers 503 Service Unavailable.
	Fail5xx FailMode = "5xx"
	// FailHang reads the request and answers nothing until the client
	// gives up (its timeout) or the Receiver is closed.
	FailHang FailMode = "hang"
	// FailReset reads the request and resets the connection (RST).
	FailReset FailMode = "reset"
	// FailGone answers 410 Gone, which disables a pollhook destination.
	FailGone FailMode = "410"
)

// Event is one event of a delivery, as the pollhook format writes it.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Resource   string          `json:"resource"`
	ObjectID   string          `json:"object_id"`
	OccurredAt time.Time       `json:"occurred_at"`
	DetectedAt time.Time       `json:"detected_at"`
	Data       json.RawMessage `json:"data"`
	// Previous and ChangedFields are the record's history: nil when the
	// body leaves them out.
	Previous      json.RawMessage `json:"previous"`
	ChangedFields []string        `json:"changed_fields"`
}

// Delivery is one request the Receiver accepted (answered 2xx).
type Delivery struct {
	// WebhookID is the webhook-id header.
	WebhookID string
	Body      []byte
	Events    []Event
	At        time.Time
}

// ReceiverStats counts what a Receiver saw.
type ReceiverStats struct {
	// Requests counts every request; Accepted those answered 2xx.
	Requests, Accepted int
	// Failed counts the requests failed on command, by mode.
	Failed map[FailMode]int
	// BadSignatures counts requests whose Standard Webhooks signature did
	// not verify (answered 400, never accepted).
	BadSignatures int
	// BadBodies counts requests whose body was not pollhook events
	// matching the webhook-id (answered 400).
	BadBodies int
}

// Receiver is a webhook endpoint that verifies each request's Standard
// Webhooks signature, records the requests it accepts, and fails on
// command. It is an http.Handler and is safe for concurrent use.
type Receiver struct {
	wh       *standardwebhooks.Webhook
	inFlight atomic.Int64
	closed   chan struct{}
	close    sync.Once

	mu      sync.Mutex
	rng     *rand.Rand
	got     []Delivery
	stats   ReceiverStats
	mode    FailMode
	count   int // requests left to fail; -1 until cleared
	rate    float64
	modes   []FailMode
	latency time.Duration
}

// NewReceiver returns a Receiver that verifies signatures with secret (a
// whsec_ key).
func NewReceiver(secret string, seed uint64) (*Receiver, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, err
	}
	return &Receiver{
		wh:     wh,
		closed: make(chan struct{}),
		rng:    rand.New(rand.NewPCG(seed, seed^0xcafe)),
		stats:  ReceiverStats{Failed: map[FailMode]int{}},
	}, nil
}

// Fail makes the next count requests fail with mode (count < 0: until
// Recover).
func (rv *Receiver) Fail(mode FailMode, count int) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.mode, rv.count = mode, count
}

// FailRate makes each request fail with probability rate, in one of modes
// drawn at random.
func (rv *Receiver) FailRate(rate float64, modes ...FailMode) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.rate, rv.modes = rate, slices.Clone(modes)
}

// Recover ends Fail and FailRate.
func (rv *Receiver) Recover() {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.mode, rv.count, rv.rate, rv.modes = "", 0, 0, nil
}

// SetLatency makes every accepted request take d.
func (rv *Receiver) SetLatency(d time.Duration) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.latency = d
}

// Close releases hanging requests.
func (rv *Receiver) Close() { rv.close.Do(func() { close(rv.closed) }) }

// Deliveries returns the accepted requests, in the order they came.
func (rv *Receiver) Deliveries() []Delivery {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return slices.Clone(rv.got)
}

// Stats returns the counts so far.
func (rv *Receiver) Stats() ReceiverStats {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	s := rv.stats
	s.Failed = map[FailMode]int{}
	for k, v := range rv.stats.Failed {
		s.Failed[k] = v
	}
	return s
}

// InFlight is the number of requests being handled.
func (rv *Receiver) InFlight() int { return int(rv.inFlight.Load()) }

// failMode decides whether this request fails, and how.
func (rv *Receiver) failMode() FailMode {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.mode != "" && rv.count != 0 {
		if rv.count > 0 {
			rv.count--
		}
		rv.stats.Failed[rv.mode]++
		return rv.mode
	}
	if rv.rate > 0 && rv.rng.Float64() < rv.rate {
		m := rv.modes[rv.rng.IntN(len(rv.modes))]
		rv.stats.Failed[m]++
		return m
	}
	return ""
}

// ServeHTTP receives one delivery.
func (rv *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rv.inFlight.Add(1)
	defer rv.inFlight.Add(-1)
	body, err := io.ReadAll(r.Body)
	rv.mu.Lock()
	rv.stats.Requests++
	latency := rv.latency
	rv.mu.Unlock()
	if err != nil {
		return
	}
	switch rv.failMode() {
	case Fail5xx:
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	case FailGone:
		http.Error(w, "gone", http.StatusGone)
		return
	case FailHang:
		select {
		case <-r.Context().Done():
		case <-rv.closed:
		}
		return
	case FailReset:
		reset(w)
		return
	}
	if err := rv.wh.Verify(body, r.Header); err != nil {
		rv.mu.Lock()
		rv.stats.BadSignatures++
		rv.mu.Unlock()
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	events, err := parseEvents(body, r.Header.Get("webhook-id"))
	if err != nil {
		rv.mu.Lock()
		rv.stats.BadBodies++
		rv.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if latency > 0 && !wait(r.Context(), latency) {
		return
	}
	rv.mu.Lock()
	rv.got = append(rv.got, Delivery{WebhookID: r.Header.Get("webhook-id"), Body: body, Events: events, At: time.Now()})
	rv.stats.Accepted++
	rv.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// parseEvents reads a pollhook-format body: one event whose id is the
// webhook-id, or an array of events (a batch).
func parseEvents(body []byte, webhookID string) ([]Event, error) {
	var events []Event
	if len(body) > 0 && body[0] == '[' {
		if err := json.Unmarshal(body, &events); err != nil {
			return nil, err
		}
		return events, nil
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, err
	}
	if ev.ID != webhookID {
		return nil, errors.New("event id differs from webhook-id")
	}
	return []Event{ev}, nil
}

// reset closes the request's connection with an RST.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}
