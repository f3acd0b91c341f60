package emit

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

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

// maxRetryAfter keeps a huge Retry-After from overflowing a Duration; the
// engine waits at most the retry schedule's largest step anyway.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// httpTransport POSTs events to an http(s) URL.
type httpTransport struct {
	d       *Destination
	url     string // as configured
	safeURL string // url as redact.URL shows it, for errors
	client  *http.Client
	own     *http.Transport // the transport it made, if any
}

// newHTTP returns the transport of d, an http(s) destination; rt sends
// its requests (nil: a clone of http.DefaultTransport).
func newHTTP(d *Destination, rt http.RoundTripper) (*httpTransport, error) {
	h := &httpTransport{d: d, url: d.cfg.URL, safeURL: redact.URL(d.cfg.URL)}
	if rt == nil {
		h.own = http.DefaultTransport.(*http.Transport).Clone()
		rt = h.own
	}
	// Every request in flight leaves its connection idle for the next
	// one: a transport that keeps fewer idle connections per host than
	// max_in_flight closes the spare ones and dials anew, a TCP (and TLS)
	// handshake per request. A given transport is shared with others: the
	// destination keeps its own copy.
	if t, ok := rt.(*http.Transport); ok && idlePerHost(t) < d.cfg.MaxInFlight {
		t = t.Clone()
		t.MaxIdleConnsPerHost = d.cfg.MaxInFlight
		if t.MaxIdleConns != 0 && t.MaxIdleConns < d.cfg.MaxInFlight {
			t.MaxIdleConns = d.cfg.MaxInFlight
		}
		h.own, rt = t, t
	}
	tc, err := tlsConfig(d.cfg.TLS, d.log)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		t, ok := rt.(*http.Transport)
		if !ok {
			return nil, errors.New("tls: the HTTP transport in use cannot be configured")
		}
		t = t.Clone()
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		t.TLSClientConfig.InsecureSkipVerify = tc.InsecureSkipVerify
		if tc.RootCAs != nil {
			t.TLSClientConfig.RootCAs = tc.RootCAs
		}
		if tc.Certificates != nil {
			t.TLSClientConfig.Certificates = tc.Certificates
		}
		h.own, rt = t, t
	}
	h.client = &http.Client{
		Transport: rt,
		// A redirect is not followed: the receiver is told what it is
		// sent, not where it moved; a 3xx is a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return h, nil
}

func (h *httpTransport) send(ctx context.Context, events []cursor.Event, a *Attempt) {
	d := h.d
	body, err := encode(d.format, events, d.batched, d.to)
	if err != nil {
		a.Err = err
		return
	}
	a.BodyID = body.ID
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body.Bytes))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		a.Err = fmt.Errorf("post %s: %w", h.safeURL, err)
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
	d.sign.headers(body.ID, a.At, body.Bytes, req.Header.Set)
	// The webhook-id again, under the name that tells net/http the POST
	// may be sent again on a new connection when a kept-alive one turns
	// out closed by the receiver before it read anything.
	req.Header.Set(HeaderIdempotencyKey, body.ID)

	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			a.Err = fmt.Errorf("post %s: no response within %s: %w", h.safeURL, d.timeout, err)
			return
		}
		a.Err = fmt.Errorf("post %s: %w", h.safeURL, err)
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
		a.Err = fmt.Errorf("post %s: %s: redirect%s not followed (a destination must answer 2xx)", h.safeURL, resp.Status, to)
	case resp.StatusCode == http.StatusGone:
		a.Gone = true
		a.Err = fmt.Errorf("post %s: %s: the receiver wants no more events", h.safeURL, resp.Status)
	default:
		a.Err = fmt.Errorf("post %s: %s", h.safeURL, resp.Status)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.RetryAfter, _ = retryafter.Parse(resp.Header.Get("Retry-After"), d.now(), maxRetryAfter)
	}
}

// idlePerHost is how many idle connections t keeps per host.
func idlePerHost(t *http.Transport) int {
	if t.MaxIdleConnsPerHost > 0 {
		return t.MaxIdleConnsPerHost
	}
	return http.DefaultMaxIdleConnsPerHost
}

// close closes the idle connections of the transport it made.
func (h *httpTransport) close() error {
	if h.own != nil {
		h.own.CloseIdleConnections()
	}
	return nil
}
