package emit

import (
	"bytes"
	"context"
	"crypto/tls"
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
	"github.com/pollhook/pollhook/internal/retryafter"
)

// UserAgent is the User-Agent of deliveries, unless a destination's headers
// set another.
const UserAgent = "pollhook"

// Bounds on reading a receiver's response.
const (
	// ResponseSnippetBytes is how much of a response body an Attempt keeps.
	ResponseSnippetBytes = 512
	// maxDrainBytes is how much more of a response body is read (and
	// dropped) so that the connection can be reused; a longer body is
	// closed unread.
	maxDrainBytes = 64 << 10
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

type kind int

const (
	kindHTTP kind = iota
	kindStdout
	kindFile
)

// Destination delivers events to one configured place: an http(s) URL,
// standard output, or a file of JSON lines. It makes one attempt per Send;
// retries, batching and logging of attempts belong to its caller.
//
// A Destination is safe for concurrent use: HTTP sends run in parallel,
// writes to standard output or a file are serialized (each Send's lines are
// written together, never interleaved with another's).
type Destination struct {
	cfg     config.Destination
	kind    kind
	url     string // the http(s) URL as configured
	safeURL string // url as redact.URL shows it, for errors
	path    string // the file of a file destination
	format  Format
	batched bool
	timeout time.Duration
	key     []byte // Standard Webhooks signing key; nil sends no webhook-signature

	client *http.Client
	given  http.RoundTripper // Options.Transport
	own    *http.Transport   // the transport this Destination made, if any
	now    func() time.Time
	stdout io.Writer
	to     Recipient // named in pipedrive bodies
	log    *slog.Logger
	filter *gojq.Code // the filter key; nil passes every event

	mu     sync.Mutex // guards file and closed, and serializes line writes
	file   *os.File
	closed bool
}

// NewDestination returns the destination cfg describes. It checks the URL,
// the format and the secret; it opens nothing (a file is opened by the
// first Send).
//
// A secret must be a Standard Webhooks secret (whsec_ and a base64 key),
// except with a format that signs in its own way (cloud-elements, whose
// signature key may be any string): when it is not a Standard Webhooks
// secret, that destination sends the format's own signature only
// (Elements-Webhook-Signature), and says so once in the log.
func NewDestination(cfg config.Destination, opts Options) (*Destination, error) {
	f, err := FormatByName(cfg.Format)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", cfg.Name, err)
	}
	d := &Destination{
		cfg:     cfg,
		format:  f,
		batched: cfg.Batch.MaxEvents > 1,
		timeout: cfg.Timeout.D(),
		now:     opts.Now,
		stdout:  opts.Stdout,
		log:     opts.Logger,
		to:      opts.Recipient,
	}
	if d.timeout <= 0 {
		d.timeout = config.DefaultTimeout
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.stdout == nil {
		d.stdout = os.Stdout
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
		d.kind = kindStdout
		return d, nil
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Parse quotes the URL in its error; keep only the reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("destination %s: url: %w", cfg.Name, err)
	}
	switch u.Scheme {
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			return nil, fmt.Errorf("destination %s: url: want file:///absolute/path.jsonl (got %q)", cfg.Name, redact.URL(cfg.URL))
		}
		d.kind, d.path = kindFile, u.Path
		return d, nil
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("destination %s: url: no host (got %q)", cfg.Name, redact.URL(cfg.URL))
		}
	default:
		return nil, fmt.Errorf("destination %s: url: want an http(s) URL, %q or file:///absolute/path.jsonl (got %q)", cfg.Name, StdoutURL, redact.URL(cfg.URL))
	}
	d.kind, d.url, d.safeURL = kindHTTP, cfg.URL, redact.URL(cfg.URL)

	if cfg.Secret != "" {
		key, err := SigningKey(string(cfg.Secret))
		own := d.format.SignatureHeaders(string(cfg.Secret), nil)
		switch {
		case err == nil:
			d.key = key
		case len(own) > 0:
			d.log.Info("secret is not a Standard Webhooks secret (whsec_…): sending the format's own signature only",
				"headers", strings.Join(slices.Sorted(maps.Keys(own)), ", "))
		default:
			return nil, fmt.Errorf("destination %s: secret: %w", cfg.Name, err)
		}
	}

	d.given = opts.Transport
	rt := opts.Transport
	if rt == nil {
		d.own = http.DefaultTransport.(*http.Transport).Clone()
		rt = d.own
	}
	if cfg.TLS.InsecureSkipVerify {
		t, ok := rt.(*http.Transport)
		if !ok {
			return nil, fmt.Errorf("destination %s: tls.insecure_skip_verify: the HTTP transport in use cannot be configured", cfg.Name)
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.InsecureSkipVerify = true
		d.own, rt = t, t
		d.log.Warn("tls certificate verification is off")
	}
	d.client = &http.Client{
		Transport: rt,
		// A redirect is not followed: the receiver is told what it is
		// sent, not where it moved; a 3xx is a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return d, nil
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
	// for standard output and files.
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
	// ResponseSnippetBytes, made valid UTF-8).
	Response string
	// BodyID is the webhook-id of what was sent.
	BodyID string
}

// OK reports whether the events were delivered: a 2xx response, or lines
// written (and synced, for a file).
func (a Attempt) OK() bool { return a.Err == nil }

// Send makes one attempt to deliver events, in the destination's format.
// The events go in one request (one body), so a destination whose
// batch.max_events is 1 should be sent one event at a time; with format keap
// they must share one type.
//
// An http(s) destination POSTs the body with Content-Type, User-Agent,
// webhook-id, webhook-timestamp, webhook-signature (with a secret),
// Elements-Webhook-Signature (format cloud-elements, with a secret), the
// configured headers and basic auth, within the configured timeout. Only a
// 2xx response is success; redirects are not followed.
//
// A stdout or file destination writes each event as one JSON line in the
// destination's format (a pollhook envelope by default) and makes one write
// per Send; a file is opened for appending (created 0600 when missing), kept
// open, and synced after each write. A failed write fails the attempt and
// the file is reopened by the next Send.
func (d *Destination) Send(ctx context.Context, events []cursor.Event) Attempt {
	at := d.now()
	a := Attempt{At: at}
	if len(events) == 0 {
		a.Err = errors.New("send events: no events")
		return a
	}
	a.BodyID = BodyID(events)
	switch d.kind {
	case kindHTTP:
		d.post(ctx, events, &a)
	default:
		d.writeLines(events, &a)
	}
	a.Latency = d.now().Sub(at)
	return a
}

func (d *Destination) post(ctx context.Context, events []cursor.Event, a *Attempt) {
	body, err := encode(d.format, events, d.batched, d.to)
	if err != nil {
		a.Err = err
		return
	}
	a.BodyID = body.ID
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body.Bytes))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		a.Err = fmt.Errorf("post %s: %w", d.safeURL, err)
		return
	}
	req.Header.Set("User-Agent", UserAgent)
	for k, v := range d.cfg.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if ba := d.cfg.BasicAuth; ba != nil {
		req.SetBasicAuth(ba.Username, string(ba.Password))
	}
	// Set last: configured headers cannot replace them.
	req.Header.Set("Content-Type", body.ContentType)
	req.Header.Set(HeaderWebhookID, body.ID)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(a.At.Unix(), 10))
	if d.key != nil {
		req.Header.Set(HeaderWebhookSignature, sign(d.key, body.ID, a.At, body.Bytes))
	}
	if d.cfg.Secret != "" {
		for k, v := range d.format.SignatureHeaders(string(d.cfg.Secret), body.Bytes) {
			req.Header.Set(k, v)
		}
	}

	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			a.Err = fmt.Errorf("post %s: no response within %s: %w", d.safeURL, d.timeout, err)
			return
		}
		a.Err = fmt.Errorf("post %s: %w", d.safeURL, err)
		return
	}
	defer resp.Body.Close()
	snippet, err := io.ReadAll(io.LimitReader(resp.Body, ResponseSnippetBytes))
	a.Status = resp.StatusCode
	a.Response = strings.ToValidUTF8(string(snippet), "\uFFFD")
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))

	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if err != nil {
			// The receiver took the request; a body cut short does not
			// undo that.
			d.log.Debug("read response", "status", resp.StatusCode, "error", err)
		}
		return
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		to := ""
		if loc, lerr := resp.Location(); lerr == nil {
			to = " to " + redact.URL(loc.String())
		}
		a.Err = fmt.Errorf("post %s: %s: redirect%s not followed (a destination must answer 2xx)", d.safeURL, resp.Status, to)
	case resp.StatusCode == http.StatusGone:
		a.Gone = true
		a.Err = fmt.Errorf("post %s: %s: the receiver wants no more events", d.safeURL, resp.Status)
	default:
		a.Err = fmt.Errorf("post %s: %s", d.safeURL, resp.Status)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.RetryAfter, _ = retryafter.Parse(resp.Header.Get("Retry-After"), d.now(), maxRetryAfter)
	}
}

// maxRetryAfter keeps a huge Retry-After from overflowing a Duration; the
// engine waits at most the retry schedule's largest step anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// lines returns events as JSON lines in the destination's format.
func (d *Destination) lines(events []cursor.Event) ([]byte, error) {
	var buf bytes.Buffer
	for _, e := range events {
		b, err := encode(d.format, []cursor.Event{e}, false, d.to)
		if err != nil {
			return nil, err
		}
		buf.Write(b.Bytes)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func (d *Destination) writeLines(events []cursor.Event, a *Attempt) {
	b, err := d.lines(events)
	if err != nil {
		a.Err = err
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		a.Err = errors.New("write events: destination closed")
		return
	}
	if d.kind == kindStdout {
		if _, err := d.stdout.Write(b); err != nil {
			a.Err = fmt.Errorf("write stdout: %w", err)
		}
		return
	}
	if d.file == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			a.Err = fmt.Errorf("open events file: %w", err)
			return
		}
		d.file = f
	}
	if _, err := d.file.Write(b); err != nil {
		a.Err = fmt.Errorf("write events file: %w", err)
		d.dropFile()
		return
	}
	if err := d.file.Sync(); err != nil {
		a.Err = fmt.Errorf("sync events file: %w", err)
		d.dropFile()
	}
}

// dropFile closes the file after a failure so that the next Send reopens
// it. d.mu is held.
func (d *Destination) dropFile() {
	_ = d.file.Close()
	d.file = nil
}

// Close closes the destination's file and idle connections. Sends after
// Close fail for stdout and file destinations.
func (d *Destination) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.own != nil {
		d.own.CloseIdleConnections()
	}
	if d.file == nil {
		return nil
	}
	err := d.file.Close()
	d.file = nil
	if err != nil {
		return fmt.Errorf("close events file: %w", err)
	}
	return nil
}
