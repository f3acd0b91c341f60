package emit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/itchyny/gojq"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/redact"
)

// StdoutURL is the URL of a destination that writes to standard output.
const StdoutURL = "stdout"

// Options are what a Destination takes from its surroundings. Zero fields
// get defaults.
type Options struct {
	// Transport sends HTTP requests; nil means a clone of
	// http.DefaultTransport (which honours HTTP(S)_PROXY).
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Stdout is where a "stdout" destination writes; nil means os.Stdout.
	Stdout io.Writer
	// Logger gets the destination's warnings; nil discards them.
	Logger *slog.Logger
	// Recipient says who receives the events, for formats that name the
	// subscription in the body (pipedrive's meta.webhook_id).
	Recipient Recipient
}

// transport carries a destination's events to where its URL points: one
// implementation per kind of URL, each in its own file (http(s), stdout,
// file, NATS). A transport is safe for concurrent use.
type transport interface {
	// send makes one attempt to deliver events (at least one) and fills
	// in a: its Err, and where the kind has them its Status, Response,
	// RetryAfter, Gone and BodyID (which starts as BodyID(events)).
	send(ctx context.Context, events []cursor.Event, a *Attempt)
	// close releases what the transport holds open.
	close() error
}

// Destination delivers events to one configured place: an http(s) URL,
// standard output, a file of JSON lines, or a NATS JetStream stream. It
// makes one attempt per Send; retries, batching and logging of attempts
// belong to its caller, which treats every kind alike.
//
// A Destination is safe for concurrent use: HTTP requests and NATS
// publishes run in parallel, writes to standard output or a file are
// serialized (each Send's lines are written together, never interleaved
// with another's).
type Destination struct {
	cfg     config.Destination
	format  Format
	batched bool
	timeout time.Duration
	sign    signer
	now     func() time.Time
	to      Recipient // named in pipedrive bodies
	log     *slog.Logger
	given   http.RoundTripper // Options.Transport, for Same
	t       transport
	filter  *gojq.Code // the filter key; nil passes every event
}

// NewDestination returns the destination cfg describes. It checks the URL,
// the format, the secret and the files it names (TLS keys, NATS
// credentials); it opens nothing (a file is opened, a NATS server
// connected to, by the first Send).
//
// A secret must be a Standard Webhooks secret (whsec_ and a base64 key),
// except with a format that signs in its own way (cloud-elements, whose
// signature key may be any string): when it is not a Standard Webhooks
// secret, that destination sends the format's own signature only
// (Elements-Webhook-Signature), and says so once in the log.
func NewDestination(cfg config.Destination, opts Options) (*Destination, error) {
	d, err := newDestination(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", cfg.Name, err)
	}
	return d, nil
}

func newDestination(cfg config.Destination, opts Options) (*Destination, error) {
	f, err := FormatByName(cfg.Format)
	if err != nil {
		return nil, err
	}
	d := &Destination{
		cfg:     cfg,
		format:  f,
		batched: cfg.Batch.MaxEvents > 1,
		timeout: cfg.Timeout.D(),
		now:     opts.Now,
		log:     opts.Logger,
		to:      opts.Recipient,
		given:   opts.Transport,
	}
	if d.timeout <= 0 {
		d.timeout = config.DefaultTimeout
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("destination", cfg.Name)
	if f := strings.TrimSpace(cfg.Filter); f != "" {
		q, err := gojq.Parse(f)
		if err == nil {
			d.filter, err = gojq.Compile(q)
		}
		if err != nil {
			return nil, fmt.Errorf("destination %s: filter %q: %w", cfg.Name, f, err)
		}
	}

	if cfg.URL == StdoutURL {
		d.t = newStdout(d, opts.Stdout)
		return d, nil
	}
	if config.IsNATSURL(cfg.URL) {
		if d.sign, err = newSigner(cfg, f, d.log); err != nil {
			return nil, err
		}
		d.t, err = newNATS(d)
		return d, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the URL in its error; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("url: %w", err)
	}
	switch u.Scheme {
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			return nil, fmt.Errorf("url: want file:///absolute/path.jsonl (got %q)", redact.URL(cfg.URL))
		}
		d.t = newFile(d, u.Path)
		return d, nil
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("url: no host (got %q)", redact.URL(cfg.URL))
		}
	default:
		return nil, fmt.Errorf("url: want an http(s) URL, nats://host:port, %q or file:///absolute/path.jsonl (got %q)", StdoutURL, redact.URL(cfg.URL))
	}
	if d.sign, err = newSigner(cfg, f, d.log); err != nil {
		return nil, err
	}
	d.t, err = newHTTP(d, opts.Transport)
	return d, err
}

// Same reports whether d and o deliver the same way: the same
// configuration, recipient and transport. An engine keeps a destination
// it is given again when it is the same.
func (d *Destination) Same(o *Destination) bool {
	return d == o || (reflect.DeepEqual(d.cfg, o.cfg) && d.to == o.to && d.given == o.given)
}

// Name returns the destination's configured name.
func (d *Destination) Name() string { return d.cfg.Name }

// Format returns the destination's body format.
func (d *Destination) Format() Format { return d.format }

// Config returns the destination's configuration. The caller must not
// change it.
func (d *Destination) Config() *config.Destination { return &d.cfg }

// Matches reports whether the destination wants events of eventType: whether
// any of its events globs matches it. An empty list matches every type.
func (d *Destination) Matches(eventType string) bool {
	if len(d.cfg.Events) == 0 {
		return true
	}
	for _, glob := range d.cfg.Events {
		if config.MatchEvent(glob, eventType) {
			return true
		}
	}
	return false
}

// Accepts reports whether e passes the destination's filter: the filter
// is run on e as the pollhook format writes it (.type, .data, .previous,
// .changed_fields …) and passes it when its first output is neither false
// nor null, as jq's select does. With no filter every event passes. An
// error says why the filter failed on e; the event does not pass then.
func (d *Destination) Accepts(e cursor.Event) (bool, error) {
	if d.filter == nil {
		return true, nil
	}
	b, err := marshal(NewEnvelope(e))
	if err != nil {
		return false, fmt.Errorf("filter event %s: %w", e.ID, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return false, fmt.Errorf("filter event %s: %w", e.ID, err)
	}
	out, ok := d.filter.Run(v).Next()
	if !ok {
		return false, nil
	}
	if err, isErr := out.(error); isErr {
		return false, fmt.Errorf("filter event %s: %w", e.ID, err)
	}
	return out != nil && out != false, nil
}

// Attempt is the outcome of one Send.
type Attempt struct {
	// At is when the attempt began; its Unix seconds are the
	// webhook-timestamp.
	At time.Time
	// Status is the HTTP status of the response; 0 when there was none, or
	// for standard output, files and NATS.
	Status int
	// Latency is how long the attempt took, response body included.
	Latency time.Duration
	// Err says why the attempt failed; nil on success. It never holds a
	// secret, nor the URL's user information or query values.
	Err error
	// RetryAfter is the wait the receiver asked for with Retry-After on a
	// 429 or 503 response; 0 when it asked none.
	RetryAfter time.Duration
	// Gone is true when the receiver answered 410 Gone: it wants no more
	// events, and the destination or subscription should be disabled.
	Gone bool
	// Response is the start of the response body (at most
	// ResponseSnippetBytes, made valid UTF-8); for NATS, the stream and
	// sequence numbers the acknowledgements gave.
	Response string
	// BodyID is the webhook-id of what was sent: the event id for one
	// event, else an HTTP body's batch id (see BodyID). It is empty for
	// several events sent each on its own (NATS messages, stdout and
	// file lines), each under its own event id.
	BodyID string
}

// OK reports whether the events were delivered: a 2xx response, lines
// written (and synced, for a file), or every message acknowledged by the
// stream.
func (a Attempt) OK() bool { return a.Err == nil }

// Send makes one attempt to deliver events, in the destination's format.
//
// An http(s) destination POSTs them in one request (one body), so a
// destination whose batch.max_events is 1 should be sent one event at a
// time; with format keap they must share one type. The request carries
// Content-Type, User-Agent, webhook-id (and Idempotency-Key, the same),
// webhook-timestamp, webhook-signature (with a secret), Elements-Webhook-Signature (format
// cloud-elements, with a secret), the configured headers and basic auth,
// within the configured timeout. Only a 2xx response is success; redirects
// are not followed.
//
// A stdout or file destination writes each event as one JSON line in the
// destination's format (a pollhook envelope by default) and makes one write
// per Send; a file is opened for appending (created 0600 when missing), kept
// open, and synced after each write. A failed write fails the attempt and
// the file is reopened by the next Send.
//
// A NATS destination publishes each event as one message (see the NATS
// section of the package documentation) and succeeds when the stream has
// acknowledged every one of them.
func (d *Destination) Send(ctx context.Context, events []cursor.Event) Attempt {
	at := d.now()
	a := Attempt{At: at}
	if len(events) == 0 {
		a.Err = errors.New("send events: no events")
		return a
	}
	if len(events) == 1 {
		a.BodyID = events[0].ID
	}
	d.t.send(ctx, events, &a)
	a.Latency = d.now().Sub(at)
	return a
}

// Close closes the destination's file, connections or idle connections.
// Sends after Close fail for stdout, file and NATS destinations.
func (d *Destination) Close() error { return d.t.close() }

// single returns the body of one event in the destination's format, as
// the kinds that carry one event a message (lines, NATS) write it.
func (d *Destination) single(e cursor.Event) (Body, error) {
	return encode(d.format, []cursor.Event{e}, false, d.to)
}

// lineWriter is what the kinds that write JSON lines (stdout, file) share:
// one line per event in the destination's format, one write per Send,
// never interleaved with another Send's, refused after close.
type lineWriter struct {
	d *Destination

	mu     sync.Mutex // serializes writes; guards closed and the kind's own state
	closed bool
}

// send writes events with write, which runs with l.mu held.
func (l *lineWriter) send(events []cursor.Event, a *Attempt, write func([]byte) error) {
	var buf bytes.Buffer
	for _, e := range events {
		b, err := l.d.single(e)
		if err != nil {
			a.Err = err
			return
		}
		buf.Write(b.Bytes)
		buf.WriteByte('\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		a.Err = errors.New("write events: destination closed")
		return
	}
	a.Err = write(buf.Bytes())
}

// close refuses later sends and calls release, with l.mu held.
func (l *lineWriter) close(release func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return release()
}

// signer makes the headers that identify and sign a message, alike for
// HTTP requests and NATS messages.
type signer struct {
	format Format
	secret string // as configured; "" signs nothing
	key    []byte // the Standard Webhooks key; nil sends no webhook-signature
}

// newSigner checks cfg's secret for format f.
func newSigner(cfg config.Destination, f Format, log *slog.Logger) (signer, error) {
	s := signer{format: f, secret: string(cfg.Secret)}
	if s.secret == "" {
		return s, nil
	}
	key, err := SigningKey(s.secret)
	own := f.SignatureHeaders(s.secret, nil)
	switch {
	case err == nil:
		s.key = key
	case len(own) > 0:
		log.Info("secret is not a Standard Webhooks secret (whsec_…): sending the format's own signature only",
			"headers", strings.Join(slices.Sorted(maps.Keys(own)), ", "))
	default:
		return s, fmt.Errorf("secret: %w", err)
	}
	return s, nil
}

// headers calls set with webhook-id, webhook-timestamp and, with a
// secret, webhook-signature and the format's own signature headers, for
// the message id whose body is body, sent at at.
func (s signer) headers(id string, at time.Time, body []byte, set func(k, v string)) {
	set(HeaderWebhookID, id)
	set(HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	if s.key != nil {
		set(HeaderWebhookSignature, sign(s.key, id, at, body))
	}
	if s.secret != "" {
		for k, v := range s.format.SignatureHeaders(s.secret, body) {
			set(k, v)
		}
	}
}

// tlsConfig returns the TLS client settings cfg.TLS asks for, reading its
// files now so that a missing or bad one is an error at start rather
// than at the first delivery; nil when it asks for nothing.
func tlsConfig(c config.TLS, log *slog.Logger) (*tls.Config, error) {
	if !c.InsecureSkipVerify && c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify}
	if c.InsecureSkipVerify {
		log.Warn("tls certificate verification is off")
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", c.CAFile)
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file and tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
