package poller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/time/rate"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/internal/clip"
	"github.com/pollhook/pollhook/internal/redact"
	"github.com/pollhook/pollhook/internal/retryafter"
)

const (
	// firstBackoff is the wait before the first retry of a failed request;
	// each later wait doubles, up to the source's retry.max_wait.
	firstBackoff = time.Second
	// snippetBytes is how much of an upstream body an error quotes.
	snippetBytes = 200
	// errorBodyBytes is how much of a non-2xx body is read.
	errorBodyBytes = 4 << 10
	// drainBytes is how much of an unread body is drained before closing,
	// so that the connection can be reused.
	drainBytes = 64 << 10
)

// ClientOptions tunes a Client. The zero value is ready for production use.
type ClientOptions struct {
	// Transport sends every request, those for oauth2 tokens included. Nil
	// means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Sleep waits d or until ctx is done, returning ctx's error then. It is
	// used for retry backoff and rate-limit waits. Nil means a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives a line per retry. Nil discards.
	Logger *slog.Logger
}

// Client fetches URLs from one source: it resolves them against the base
// URL, adds the source's headers and credentials, waits for the rate limit,
// bounds each request with the source's timeout and body cap, and retries
// 429s, 5xx, timeouts and connection errors with backoff. A Client is safe
// for concurrent use.
type Client struct {
	name     string
	base     string // base_url without fragment; "" when unset
	auth     config.Auth
	headers  map[string]string
	timeout  time.Duration
	attempts int
	maxWait  time.Duration
	maxBody  int64

	http    *http.Client
	limiter *rate.Limiter
	sleep   func(ctx context.Context, d time.Duration) error
	log     *slog.Logger

	// secrets are the credential values scrubbed from every error and log
	// line; queryParam is the query auth parameter, left out of the URLs
	// a Response reports.
	secrets    []string
	queryParam string

	oauth    *clientcredentials.Config
	oauthCtx context.Context
	tokenMu  sync.Mutex
	tokens   oauth2.TokenSource
}

// Response is a successful (2xx) response with its whole body.
type Response struct {
	// URL is the absolute URL that answered, after redirects, without the
	// query credential of auth type query. Redact it before showing it: it
	// may hold credentials written into the resource URL.
	URL      string
	Status   int
	Header   http.Header
	Body     []byte
	Attempts int
}

// StatusError is a request that ended with a non-2xx status: at once for a
// status that is not retried, or when the attempts ran out.
type StatusError struct {
	// URL is the request URL, redacted (no user information, query values
	// hidden).
	URL string
	// Status is the HTTP status code; StatusText is the status line, "404
	// Not Found".
	Status     int
	StatusText string
	Attempts   int
	// Body is the start of the response body on one line, credentials
	// scrubbed.
	Body string
}

// Error says the URL, the status, the attempts and the start of the body.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("get %s after %s: %s", e.URL, plural(e.Attempts, "attempt"), e.StatusText)
	if e.Body != "" {
		s += ": body: " + e.Body
	}
	return s
}

// NewClient returns a Client for src. Zero values in src mean the config
// defaults (DefaultTimeout, DefaultFetchAttempts, DefaultFetchMaxWait,
// DefaultMaxBodyBytes).
func NewClient(src config.Source, opts ClientOptions) (*Client, error) {
	c := &Client{
		name:     src.Name,
		auth:     src.Auth,
		headers:  src.Headers,
		timeout:  src.Timeout.D(),
		attempts: src.Retry.Attempts,
		maxWait:  src.Retry.MaxWait.D(),
		maxBody:  int64(src.MaxBodyBytes),
		sleep:    opts.Sleep,
		log:      opts.Logger,
	}
	if c.timeout <= 0 {
		c.timeout = config.DefaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = config.DefaultFetchAttempts
	}
	if c.maxWait <= 0 {
		c.maxWait = config.DefaultFetchMaxWait
	}
	if c.maxBody <= 0 {
		c.maxBody = config.DefaultMaxBodyBytes
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("source", src.Name)

	if src.BaseURL != "" {
		u, err := url.Parse(src.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("sources[%s].base_url: want an http or https URL (got %q)", src.Name, redact.URL(src.BaseURL))
		}
		c.base, _, _ = strings.Cut(src.BaseURL, "#")
	}

	transport := opts.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	c.http = &http.Client{Transport: transport, CheckRedirect: c.checkRedirect}

	for _, s := range []config.Secret{src.Auth.Token, src.Auth.Password, src.Auth.Value, src.Auth.ClientSecret} {
		if len(s) >= 4 {
			c.secrets = append(c.secrets, string(s))
		}
	}
	switch src.Auth.Type {
	case "", config.AuthNone, config.AuthBearer, config.AuthBasic:
	case config.AuthHeader:
		if src.Auth.Name == "" {
			return nil, fmt.Errorf("sources[%s].auth.name: want the header that carries the credential", src.Name)
		}
	case config.AuthQuery:
		if src.Auth.Name == "" {
			return nil, fmt.Errorf("sources[%s].auth.name: want the query parameter that carries the credential", src.Name)
		}
		c.queryParam = src.Auth.Name
	case config.AuthOAuth2:
		if src.Auth.TokenURL == "" {
			return nil, fmt.Errorf("sources[%s].auth.token_url: want the oauth2 token endpoint", src.Name)
		}
		c.oauth = &clientcredentials.Config{
			ClientID:     src.Auth.ClientID,
			ClientSecret: string(src.Auth.ClientSecret),
			TokenURL:     src.Auth.TokenURL,
			Scopes:       src.Auth.Scopes,
		}
		c.oauthCtx = context.WithValue(context.Background(), oauth2.HTTPClient,
			&http.Client{Transport: transport, Timeout: c.timeout})
		c.tokens = c.oauth.TokenSource(c.oauthCtx)
	default:
		return nil, fmt.Errorf("sources[%s].auth.type: want none, bearer, basic, header, query or oauth2 (got %q)", src.Name, src.Auth.Type)
	}

	if rl := src.RateLimit; rl != nil && rl.PerSecond > 0 {
		burst := rl.Burst
		if burst < 1 {
			burst = 1
		}
		c.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), burst)
	}
	return c, nil
}

// Get fetches rawURL and returns its 2xx response. rawURL is absolute
// (http:// or https://) or relative to the source's base_url. A relative
// URL is appended to the whole base URL, path included: base
// https://api.example.com/crm/rest/v1 and /contacts?x=1 give
// https://api.example.com/crm/rest/v1/contacts?x=1 (RFC 3986 resolution
// would drop /crm/rest/v1); a base URL's own query is kept. A URL starting
// with "?" adds only a query.
//
// Every attempt first waits for the rate limit. 429, 408, 5xx other than
// 501, timeouts and connection errors are retried with exponential backoff
// and jitter, or after Retry-After when the response has one, each wait
// capped at the source's retry.max_wait, until retry.attempts tries are
// spent. Other statuses fail at once with a *StatusError.
func (c *Client) Get(ctx context.Context, rawURL string) (*Response, error) {
	u, err := c.resolve(rawURL)
	if err != nil {
		return nil, c.scrub(fmt.Errorf("resolve url %s: %w", redact.URL(rawURL), err))
	}
	shown := redact.URL(u.String())
	reauthorized := false
	for n := 1; ; n++ {
		if err := c.waitRate(ctx); err != nil {
			return nil, c.scrub(fmt.Errorf("get %s: wait for the rate limit: %w", shown, err))
		}
		resp, f := c.try(ctx, u, shown)
		if f == nil {
			resp.Attempts = n
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, c.scrub(fmt.Errorf("get %s after %s: %w", shown, plural(n, "attempt"), context.Cause(ctx)))
		}
		if f.status == http.StatusUnauthorized && c.oauth != nil && !reauthorized {
			// The token may have been revoked before it expired: fetch a
			// new one once.
			reauthorized = true
			c.resetToken()
			f.retryable = true
		}
		if !f.retryable || n >= c.attempts {
			return nil, c.scrub(f.final(shown, n))
		}
		wait := c.backoff(n)
		if f.retryAfter >= 0 {
			wait = f.retryAfter
		}
		c.log.Warn("upstream request failed; retrying",
			"url", shown, "attempt", n, "attempts", c.attempts, "wait", wait, "error", c.scrubString(f.brief()))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, c.scrub(fmt.Errorf("get %s after %s: %w", shown, plural(n, "attempt"), err))
		}
	}
}

// failure is one failed attempt.
type failure struct {
	status     int // 0 when no response came
	statusText string
	body       string
	err        error
	retryable  bool
	retryAfter time.Duration // at most maxWait; -1 when the response said nothing
}

func (f *failure) final(shown string, attempts int) error {
	if f.status != 0 {
		return &StatusError{URL: shown, Status: f.status, StatusText: f.statusText, Attempts: attempts, Body: f.body}
	}
	return fmt.Errorf("get %s after %s: %w", shown, plural(attempts, "attempt"), f.err)
}

func (f *failure) brief() string {
	if f.status != 0 {
		return f.statusText
	}
	return f.err.Error()
}

// try makes one attempt.
func (c *Client) try(ctx context.Context, u *url.URL, shown string) (*Response, *failure) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := u
	if c.queryParam != "" {
		v := *u
		v.RawQuery = setQuery(v.RawQuery, c.queryParam, string(c.auth.Value))
		target = &v
	}
	req, err := http.NewRequestWithContext(actx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, &failure{err: redactURLError(err), retryAfter: -1}
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "pollhook")
	}
	if f := c.authorize(req); f != nil {
		return nil, f
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &failure{err: redactURLError(err), retryable: transient(err), retryAfter: -1}
	}
	defer drainClose(resp.Body)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
		ra, ok := retryafter.Parse(resp.Header.Get("Retry-After"), time.Now(), c.maxWait)
		if !ok {
			ra = -1
		}
		return nil, &failure{
			status:     resp.StatusCode,
			statusText: resp.Status,
			body:       c.scrubString(snippet(body)),
			retryable:  retryableStatus(resp.StatusCode),
			retryAfter: ra,
		}
	}

	tooLarge := &failure{err: fmt.Errorf("response body exceeds max_body_bytes %s; raise sources[%s].max_body_bytes",
		formatSize(c.maxBody), c.name), retryAfter: -1}
	if resp.ContentLength > c.maxBody {
		// Said up front: fail without reading (or holding) any of it;
		// closing drops the connection rather than draining it.
		resp.Body.Close()
		return nil, tooLarge
	}
	var body []byte
	if resp.ContentLength > 0 {
		// A known size: one allocation, not doublings.
		var buf bytes.Buffer
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
		_, err = buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
		body = buf.Bytes()
	} else {
		// io.ReadAll grows more gently than bytes.Buffer's doubling: its
		// peak for a body cut at max_body_bytes is the lower.
		body, err = io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	}
	if err != nil {
		return nil, &failure{err: fmt.Errorf("read body: %w", redactURLError(err)), retryable: true, retryAfter: -1}
	}
	if int64(len(body)) > c.maxBody {
		return nil, tooLarge
	}
	final := *resp.Request.URL
	if c.queryParam != "" {
		final.RawQuery = removeQuery(final.RawQuery, c.queryParam)
	}
	return &Response{URL: final.String(), Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// authorize adds the credentials of every auth type but query, which try
// puts in the URL.
func (c *Client) authorize(req *http.Request) *failure {
	switch c.auth.Type {
	case config.AuthBearer:
		req.Header.Set("Authorization", "Bearer "+string(c.auth.Token))
	case config.AuthBasic:
		req.SetBasicAuth(c.auth.Username, string(c.auth.Password))
	case config.AuthHeader:
		req.Header.Set(c.auth.Name, string(c.auth.Value))
	case config.AuthOAuth2:
		c.tokenMu.Lock()
		ts := c.tokens
		c.tokenMu.Unlock()
		tok, err := ts.Token()
		if err != nil {
			retry := true
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil {
				retry = retryableStatus(re.Response.StatusCode)
			}
			return &failure{
				err:        fmt.Errorf("fetch oauth2 token from %s: %w", redact.URL(c.oauth.TokenURL), redactURLError(err)),
				retryable:  retry,
				retryAfter: -1,
			}
		}
		tok.SetAuthHeader(req)
	}
	return nil
}

// resetToken drops the cached oauth2 token.
func (c *Client) resetToken() {
	c.tokenMu.Lock()
	c.tokens = c.oauth.TokenSource(c.oauthCtx)
	c.tokenMu.Unlock()
}

// errDowngrade is a redirect from https to plain http, refused: it would
// send the credentials unencrypted. It is not retried.
var errDowngrade = errors.New("refuse a redirect from https to plain http: pollhook does not send credentials unencrypted")

// checkRedirect follows up to 10 redirects, refuses one from https to plain
// http, and drops the header credential when a redirect leaves the original
// host (net/http drops Authorization itself).
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Scheme == "http" && via[len(via)-1].URL.Scheme == "https" {
		return errDowngrade
	}
	if c.auth.Type == config.AuthHeader && req.URL.Host != via[0].URL.Host {
		req.Header.Del(c.auth.Name)
	}
	return nil
}

// resolve makes rawURL absolute; see Get.
func (c *Client) resolve(rawURL string) (*url.URL, error) {
	if isAbsoluteURL(rawURL) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, redactURLError(err)
		}
		if u.Host == "" {
			return nil, errors.New("absolute url has no host")
		}
		u.Fragment, u.RawFragment = "", ""
		return u, nil
	}
	if c.base == "" {
		return nil, fmt.Errorf("a relative url needs sources[%s].base_url", c.name)
	}
	ref, _, _ := strings.Cut(rawURL, "#")
	refPath, refQuery, _ := strings.Cut(ref, "?")
	basePath, baseQuery, _ := strings.Cut(c.base, "?")
	s := basePath
	if refPath != "" {
		s = strings.TrimRight(basePath, "/") + "/" + strings.TrimLeft(refPath, "/")
	}
	var qs []string
	for _, q := range []string{baseQuery, refQuery} {
		if q != "" {
			qs = append(qs, q)
		}
	}
	if len(qs) > 0 {
		s += "?" + strings.Join(qs, "&")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, redactURLError(err)
	}
	return u, nil
}

func isAbsoluteURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// waitRate waits for the rate limiter, through c.sleep. A wait that would
// pass ctx's deadline fails at once.
func (c *Client) waitRate(ctx context.Context) error {
	if c.limiter == nil {
		return nil
	}
	r := c.limiter.Reserve()
	if !r.OK() {
		return errors.New("rate limit allows no request")
	}
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		r.Cancel()
		return fmt.Errorf("wait of %s would pass the deadline: %w", d.Round(time.Millisecond), context.DeadlineExceeded)
	}
	if err := c.sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	return nil
}

// backoff is the wait after the n-th failed attempt: firstBackoff doubled
// n-1 times, capped at maxWait, then drawn from its upper half.
func (c *Client) backoff(n int) time.Duration {
	d := c.maxWait
	if n-1 < 32 {
		if b := firstBackoff << (n - 1); b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

func retryableStatus(code int) bool {
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return true
	case code == http.StatusNotImplemented:
		return false
	default:
		return code >= 500
	}
}

// transient reports whether a transport error may pass on retry: anything
// but a certificate that does not verify and a refused downgrade.
func transient(err error) bool {
	var (
		verr *tls.CertificateVerificationError
		uerr x509.UnknownAuthorityError
		herr x509.HostnameError
		cerr x509.CertificateInvalidError
	)
	return !errors.As(err, &verr) && !errors.As(err, &uerr) && !errors.As(err, &herr) && !errors.As(err, &cerr) &&
		!errors.Is(err, errDowngrade)
}

// drainClose drains a bounded part of body, so that the connection can be
// reused, and closes it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, drainBytes)
	_ = body.Close()
}

// redactURLError redacts the URL in a *url.Error (net/http puts the
// request URL, query credential included, in its errors).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redact.URL(ue.URL)
	}
	return err
}

// scrubbedError is an error whose message has the source's credential
// values replaced.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub hides the source's credential values in err's message, wherever a
// server or a library may have echoed them.
func (c *Client) scrub(err error) error {
	return &scrubbedError{msg: c.scrubString(err.Error()), err: err}
}

func (c *Client) scrubString(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, redact.Hidden)
		if e := url.QueryEscape(v); e != v {
			s = strings.ReplaceAll(s, e, redact.Hidden)
		}
	}
	return s
}

func unescapeKey(k string) string {
	if u, err := url.QueryUnescape(k); err == nil {
		return u
	}
	return k
}

// setQuery returns rawQuery with each key/value pair of kv set: pairs with
// that key are removed, the new one is appended, and every other pair is
// kept as written.
func setQuery(rawQuery string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		rawQuery = removeQuery(rawQuery, kv[i])
		p := url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1])
		if rawQuery == "" {
			rawQuery = p
		} else {
			rawQuery += "&" + p
		}
	}
	return rawQuery
}

// removeQuery returns rawQuery without the pairs whose key is key.
func removeQuery(rawQuery, key string) string {
	if rawQuery == "" {
		return ""
	}
	pairs := strings.Split(rawQuery, "&")
	kept := pairs[:0]
	for _, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		if p == "" || unescapeKey(k) == key {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// setURLQuery sets query parameters on a URL that may be relative.
func setURLQuery(rawURL string, kv ...string) string {
	rest, frag, hasFrag := strings.Cut(rawURL, "#")
	path, query, _ := strings.Cut(rest, "?")
	s := path
	if q := setQuery(query, kv...); q != "" {
		s += "?" + q
	}
	if hasFrag {
		s += "#" + frag
	}
	return s
}

// snippet returns the start of body on one line, unprintable characters
// replaced, for an error message.
func snippet(body []byte) string {
	s := clip.Bytes(string(body), snippetBytes)
	cut := len(s) < len(body)
	s = strings.Join(strings.Fields(s), " ")
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if cut {
		s += "…"
	}
	return s
}

// formatSize writes n bytes as the config writes sizes: 64MiB, 512KiB, 1000.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
