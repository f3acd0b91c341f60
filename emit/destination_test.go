package emit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	user   string
	pass   string
	host   string
}

// receiver is an httptest server that records requests and answers with
// handle (200 when nil).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	handle http.HandlerFunc
}

func newReceiver(t *testing.T, handle http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{handle: handle}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		user, pass, _ := req.BasicAuth()
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: body, user: user, pass: pass, host: req.Host})
		r.mu.Unlock()
		if r.handle != nil {
			r.handle(w, req)
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func newDest(t *testing.T, cfg config.Destination, opts Options) *Destination {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	d, err := NewDestination(cfg, opts)
	if err != nil {
		t.Fatalf("NewDestination: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestSendFormatsSigned(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e1, e2 := event("1", "updated"), event("2", "updated")
	tests := []struct {
		format      string
		maxEvents   int
		events      []cursor.Event
		contentType string
		check       func(t *testing.T, body []byte)
	}{
		{config.FormatPollhook, 1, []cursor.Event{e1}, "application/json", func(t *testing.T, b []byte) {
			if env := decode[Envelope](t, b); env.ID != e1.ID || env.Type != e1.Type {
				t.Errorf("envelope = %+v", env)
			}
		}},
		{config.FormatPollhook, 10, []cursor.Event{e1, e2}, "application/json", func(t *testing.T, b []byte) {
			if envs := decode[[]Envelope](t, b); len(envs) != 2 {
				t.Errorf("envelopes = %+v", envs)
			}
		}},
		{config.FormatCloudEvents, 1, []cursor.Event{e1}, "application/cloudevents+json", func(t *testing.T, b []byte) {
			if ce := decode[map[string]any](t, b); ce["specversion"] != "1.0" || ce["id"] != e1.ID {
				t.Errorf("cloud event = %v", ce)
			}
		}},
		{config.FormatCloudEvents, 10, []cursor.Event{e1, e2}, "application/cloudevents-batch+json", func(t *testing.T, b []byte) {
			if ces := decode[[]map[string]any](t, b); len(ces) != 2 {
				t.Errorf("cloud events = %v", ces)
			}
		}},
		{config.FormatKeap, 10, []cursor.Event{e1, e2}, "application/json", func(t *testing.T, b []byte) {
			if k := decode[KeapBody](t, b); k.EventKey != "contact.updated" || len(k.ObjectKeys) != 2 {
				t.Errorf("keap body = %+v", k)
			}
		}},
		{config.FormatCloudElements, 1, []cursor.Event{e1}, "application/json", func(t *testing.T, b []byte) {
			if n := decode[CloudElementsNotification](t, b); len(n.Events) != 1 || n.Events[0].EventType != "UPDATED" {
				t.Errorf("notification = %+v", n)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.format, len(tt.events)), func(t *testing.T) {
			rcv := newReceiver(t, nil)
			d := newDest(t, config.Destination{
				URL: rcv.URL + "/hook", Format: tt.format, Secret: testSecret,
				Batch: config.Batch{MaxEvents: tt.maxEvents},
			}, Options{})
			a := d.Send(context.Background(), tt.events)
			if !a.OK() || a.Status != 200 {
				t.Fatalf("attempt = %+v", a)
			}
			reqs := rcv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if err := wh.Verify(r.body, r.header); err != nil {
				t.Errorf("the receiver's Standard Webhooks Verify: %v", err)
			}
			if got := r.header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if got := r.header.Get("User-Agent"); got != "pollhook" {
				t.Errorf("User-Agent %q", got)
			}
			if id := r.header.Get("webhook-id"); id != BodyID(tt.events) || id != a.BodyID {
				t.Errorf("webhook-id %q, attempt body id %q, want %q", id, a.BodyID, BodyID(tt.events))
			}
			if ts := r.header.Get("webhook-timestamp"); ts != fmt.Sprint(a.At.Unix()) {
				t.Errorf("webhook-timestamp %q, attempt at %d", ts, a.At.Unix())
			}
			ces := r.header.Get("Elements-Webhook-Signature")
			if tt.format == config.FormatCloudElements {
				if ces != CloudElementsSignature(testSecret, r.body) {
					t.Errorf("Elements-Webhook-Signature %q does not sign the body", ces)
				}
			} else if ces != "" {
				t.Errorf("format %s sent Elements-Webhook-Signature", tt.format)
			}
			tt.check(t, r.body)
		})
	}
}

func TestSendUnsigned(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{URL: rcv.URL}, Options{})
	if a := d.Send(context.Background(), []cursor.Event{event("1", "updated")}); !a.OK() {
		t.Fatal(a.Err)
	}
	h := rcv.requests()[0].header
	if h.Get("webhook-signature") != "" || h.Get("webhook-id") == "" || h.Get("webhook-timestamp") == "" {
		t.Errorf("headers without a secret: %v", h)
	}
}

func TestSendCloudElementsPlainSecret(t *testing.T) {
	// A Cloud Elements signature key that is no whsec_ secret still signs
	// the Cloud Elements way.
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{URL: rcv.URL, Format: config.FormatCloudElements, Secret: "MySecretEventSignatureKey"}, Options{})
	if a := d.Send(context.Background(), []cursor.Event{event("1", "created")}); !a.OK() {
		t.Fatal(a.Err)
	}
	r := rcv.requests()[0]
	if got := r.header.Get("Elements-Webhook-Signature"); got != CloudElementsSignature("MySecretEventSignatureKey", r.body) {
		t.Errorf("Elements-Webhook-Signature = %q", got)
	}
	if r.header.Get("webhook-signature") != "" {
		t.Error("webhook-signature sent with a key that is no Standard Webhooks secret")
	}
}

func TestSendAuthAndHeaders(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{
		URL: rcv.URL,
		Headers: map[string]string{
			"X-Tenant": "acme", "User-Agent": "acme-hooks/1",
			"Content-Type": "text/plain", "webhook-id": "forged", "Host": "hooks.example",
		},
		BasicAuth: &config.BasicAuth{Username: "hook", Password: "s3cret"},
	}, Options{})
	e := event("1", "updated")
	if a := d.Send(context.Background(), []cursor.Event{e}); !a.OK() {
		t.Fatal(a.Err)
	}
	r := rcv.requests()[0]
	if r.user != "hook" || r.pass != "s3cret" {
		t.Errorf("basic auth %q:%q", r.user, r.pass)
	}
	if r.header.Get("X-Tenant") != "acme" || r.header.Get("User-Agent") != "acme-hooks/1" || r.host != "hooks.example" {
		t.Errorf("configured headers not sent: %v, host %q", r.header, r.host)
	}
	if r.header.Get("Content-Type") != "application/json" || r.header.Get("webhook-id") != e.ID {
		t.Errorf("configured headers replaced Content-Type or webhook-id: %v", r.header)
	}
}

func TestSendOutcomes(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	redirected := newReceiver(t, nil)
	tests := []struct {
		name       string
		handle     http.HandlerFunc
		ok         bool
		status     int
		gone       bool
		retryAfter time.Duration
		errHas     string
	}{
		{"200", nil, true, 200, false, 0, ""},
		{"204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, true, 204, false, 0, ""},
		{"410", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) }, false, 410, true, 0, "410 Gone"},
		{"429 seconds", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(429)
		}, false, 429, false, 2 * time.Minute, "429 Too Many Requests"},
		{"503 date", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))
			w.WriteHeader(503)
		}, false, 503, false, 90 * time.Second, "503 Service Unavailable"},
		{"500 ignores Retry-After", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(500)
		}, false, 500, false, 0, "500 Internal Server Error"},
		{"302", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, redirected.URL+"/elsewhere?token=abc", http.StatusFound)
		}, false, 302, false, 0, "redirect to " + redirected.URL + "/elsewhere?token=REDACTED not followed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.handle)
			d := newDest(t, config.Destination{URL: rcv.URL + "/hook"}, Options{Now: func() time.Time { return now }})
			a := d.Send(context.Background(), []cursor.Event{event("1", "updated")})
			if a.OK() != tt.ok || a.Status != tt.status || a.Gone != tt.gone || a.RetryAfter != tt.retryAfter {
				t.Errorf("attempt = ok %v status %d gone %v retry after %s; want %v %d %v %s (err %v)",
					a.OK(), a.Status, a.Gone, a.RetryAfter, tt.ok, tt.status, tt.gone, tt.retryAfter, a.Err)
			}
			if tt.errHas != "" && (a.Err == nil || !strings.Contains(a.Err.Error(), tt.errHas) || !strings.Contains(a.Err.Error(), rcv.URL+"/hook")) {
				t.Errorf("err = %v, want one with %q and the URL", a.Err, tt.errHas)
			}
			if !a.At.Equal(now) {
				t.Errorf("at = %s, want %s", a.At, now)
			}
		})
	}
	if n := len(redirected.requests()); n != 0 {
		t.Errorf("redirect followed: %d requests", n)
	}
}

func TestSendResponseSnippet(t *testing.T) {
	long := strings.Repeat("é", 2000) // 4000 bytes
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(400)
		io.WriteString(w, long)
	})
	d := newDest(t, config.Destination{URL: rcv.URL}, Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "updated")})
	if a.Status != 400 || a.OK() {
		t.Fatalf("attempt = %+v", a)
	}
	if len(a.Response) > ResponseSnippetBytes || !strings.HasPrefix(long, a.Response) || len(a.Response) < ResponseSnippetBytes-1 {
		t.Errorf("response snippet of %d bytes: %q", len(a.Response), a.Response)
	}
}

func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	d := newDest(t, config.Destination{URL: rcv.URL, Timeout: config.Duration(20 * time.Millisecond)}, Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "updated")})
	if a.OK() || a.Status != 0 || a.Err == nil || !strings.Contains(a.Err.Error(), "no response within 20ms") {
		t.Errorf("attempt = %+v", a)
	}
}

func TestSendCanceled(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{URL: rcv.URL}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a := d.Send(ctx, []cursor.Event{event("1", "updated")}); a.OK() || a.Err == nil {
		t.Errorf("canceled send: %+v", a)
	}
}

// TestSendKeepAliveClosed: a receiver that closes idle kept-alive
// connections (Node's default is after 5 s) may close one just as the
// next request goes out on it. This one does it every time: the second
// request on a connection is read and the connection closed, with no
// response. The delivery must go through on a new connection, without a
// failed attempt (a retry step of the engine's schedule).
func TestSendKeepAliveClosed(t *testing.T) {
	type connKey struct{}
	var mu sync.Mutex
	var ids []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := r.Context().Value(connKey{}).(*int)
		mu.Lock()
		*n++
		first := *n == 1
		ids = append(ids, r.Header.Get(HeaderWebhookID)+" "+r.Header.Get(HeaderIdempotencyKey))
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusOK)
			return
		}
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		c.Close()
	}))
	srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, new(int))
	}
	srv.Start()
	t.Cleanup(srv.Close)
	d := newDest(t, config.Destination{URL: srv.URL}, Options{})
	for i := range 3 {
		a := d.Send(context.Background(), []cursor.Event{event(fmt.Sprint(i), "updated")})
		if !a.OK() {
			t.Fatalf("send %d on a connection the receiver closed: %+v", i, a)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// 1 on connection A; 2 on A (closed), again on B; 3 on B (closed),
	// again on C.
	if len(ids) != 5 {
		t.Fatalf("receiver got %d requests, want 5: %q", len(ids), ids)
	}
	for _, id := range ids {
		wid, key, _ := strings.Cut(id, " ")
		if wid == "" || wid != key {
			t.Errorf("webhook-id %q, Idempotency-Key %q: want the same", wid, key)
		}
	}
}

func TestSendConnectionRefused(t *testing.T) {
	rcv := newReceiver(t, nil)
	u := rcv.URL
	rcv.Close()
	d := newDest(t, config.Destination{URL: u}, Options{})
	if a := d.Send(context.Background(), []cursor.Event{event("1", "updated")}); a.OK() || a.Status != 0 {
		t.Errorf("refused connection: %+v", a)
	}
}

func TestErrorsHideCredentials(t *testing.T) {
	rcv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	u := strings.Replace(rcv.URL, "http://", "http://user:urlpass@", 1) + "/hook?token=querysecret"
	d := newDest(t, config.Destination{
		URL: u, Secret: testSecret, BasicAuth: &config.BasicAuth{Username: "u", Password: "basicpass"},
		Headers: map[string]string{"Authorization-Extra": "headersecret"},
	}, Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "updated")})
	if a.Err == nil {
		t.Fatal("no error for a 500")
	}
	msg := a.Err.Error()
	for _, secret := range []string{"urlpass", "querysecret", "basicpass", "headersecret", strings.TrimPrefix(testSecret, SecretPrefix)} {
		if strings.Contains(msg, secret) {
			t.Errorf("error shows a secret: %s", msg)
		}
	}
	if !strings.Contains(msg, rcv.URL+"/hook") {
		t.Errorf("error does not name the URL: %s", msg)
	}
	if r := rcv.requests()[0]; r.user != "u" || r.pass != "basicpass" {
		t.Errorf("basic auth %q:%q", r.user, r.pass)
	}
}

func TestSendTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	strict := newDest(t, config.Destination{URL: srv.URL}, Options{})
	if a := strict.Send(context.Background(), []cursor.Event{event("1", "updated")}); a.OK() {
		t.Error("self-signed certificate accepted without insecure_skip_verify")
	}
	insecure := newDest(t, config.Destination{URL: srv.URL, TLS: config.TLS{InsecureSkipVerify: true}}, Options{})
	if a := insecure.Send(context.Background(), []cursor.Event{event("1", "updated")}); !a.OK() {
		t.Errorf("insecure_skip_verify: %v", a.Err)
	}
}

func TestNewDestinationErrors(t *testing.T) {
	tests := []struct {
		name   string
		cfg    config.Destination
		errHas string
	}{
		{"scheme", config.Destination{URL: "ftp://example.com/x"}, "want an http(s) URL"},
		{"no host", config.Destination{URL: "https:///hook"}, "no host"},
		{"relative file", config.Destination{URL: "file:events.jsonl"}, "file:///absolute/path.jsonl"},
		{"file host", config.Destination{URL: "file://server/events.jsonl"}, "file:///absolute/path.jsonl"},
		{"format", config.Destination{URL: "stdout", Format: "xml"}, `unknown format "xml" (want pollhook, cloudevents, keap, cloud-elements or pipedrive)`},
		{"secret", config.Destination{URL: "https://example.com", Secret: "not-base64-secret!"}, "secret"},
		{"credentials", config.Destination{URL: "gopher://u:hidden@example.com"}, "gopher://example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name = "app"
			_, err := NewDestination(tt.cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), "destination app") {
				t.Fatalf("err = %v, want one naming the destination and %q", err, tt.errHas)
			}
			if strings.Contains(err.Error(), "hidden") || strings.Contains(err.Error(), "not-base64-secret") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestStdout(t *testing.T) {
	var out bytes.Buffer
	d := newDest(t, config.Destination{URL: "stdout", Secret: testSecret, Batch: config.Batch{MaxEvents: 10}}, Options{Stdout: &out})
	events := []cursor.Event{event("1", "updated"), event("2", "created")}
	a := d.Send(context.Background(), events)
	if !a.OK() || a.BodyID != "" {
		t.Fatalf("attempt = %+v, want no body id: each line is under its own event id", a)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), out.String())
	}
	for i, l := range lines {
		if env := decode[Envelope](t, []byte(l)); env.ID != events[i].ID {
			t.Errorf("line %d = %s, want event %s", i, l, events[i].ID)
		}
	}
}

func TestStdoutFormat(t *testing.T) {
	var out bytes.Buffer
	d := newDest(t, config.Destination{URL: "stdout", Format: config.FormatCloudEvents}, Options{Stdout: &out})
	if a := d.Send(context.Background(), []cursor.Event{event("1", "updated")}); !a.OK() {
		t.Fatal(a.Err)
	}
	if ce := decode[map[string]any](t, out.Bytes()); ce["specversion"] != "1.0" {
		t.Errorf("line = %s, want a cloud event", out.Bytes())
	}
}

func readLines(t *testing.T, path string) []Envelope {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var envs []Envelope
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		envs = append(envs, decode[Envelope](t, sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return envs
}

func TestFileAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	cfg := config.Destination{Name: "file", URL: "file://" + path}

	d, err := NewDestination(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("NewDestination created the file: %v", err)
	}
	for _, events := range [][]cursor.Event{{event("1", "created")}, {event("2", "created"), event("3", "created")}} {
		if a := d.Send(context.Background(), events); !a.OK() {
			t.Fatal(a.Err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if a := d.Send(context.Background(), []cursor.Event{event("9", "created")}); a.OK() {
		t.Error("send after Close succeeded")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode(), err)
	}

	// Reopened: appends, does not truncate.
	d2, err := NewDestination(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a := d2.Send(context.Background(), []cursor.Event{event("4", "updated")}); !a.OK() {
		t.Fatal(a.Err)
	}
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, env := range readLines(t, path) {
		ids = append(ids, env.ObjectID)
	}
	if got := strings.Join(ids, ","); got != "1,2,3,4" {
		t.Errorf("file holds objects %s, want 1,2,3,4", got)
	}
}

func TestFileWriteErrorIsRetryable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	path := filepath.Join(dir, "events.jsonl")
	d := newDest(t, config.Destination{URL: "file://" + path}, Options{})
	if a := d.Send(context.Background(), []cursor.Event{event("1", "created")}); a.OK() || a.Err == nil {
		t.Fatalf("write into a missing directory: %+v", a)
	}
	// The directory appears: the next attempt succeeds.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if a := d.Send(context.Background(), []cursor.Event{event("1", "created")}); !a.OK() {
		t.Fatalf("retry: %v", a.Err)
	}
	if n := len(readLines(t, path)); n != 1 {
		t.Errorf("%d lines, want 1", n)
	}
}

func TestFileConcurrentSends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	d := newDest(t, config.Destination{URL: "file://" + path}, Options{})
	const senders, perSend = 8, 5
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			events := make([]cursor.Event, perSend)
			for i := range events {
				events[i] = event(fmt.Sprintf("%d-%d", s, i), "updated")
			}
			if a := d.Send(context.Background(), events); !a.OK() {
				t.Error(a.Err)
			}
		}()
	}
	wg.Wait()
	envs := readLines(t, path)
	if len(envs) != senders*perSend {
		t.Fatalf("%d lines, want %d", len(envs), senders*perSend)
	}
	// Each Send's lines are contiguous.
	for i := 0; i < len(envs); i += perSend {
		prefix, _, _ := strings.Cut(envs[i].ObjectID, "-")
		for j := range perSend {
			if want := fmt.Sprintf("%s-%d", prefix, j); envs[i+j].ObjectID != want {
				t.Fatalf("line %d is %s, want %s: sends interleaved", i+j, envs[i+j].ObjectID, want)
			}
		}
	}
}

func TestHTTPConcurrentSends(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{URL: rcv.URL, Secret: testSecret}, Options{})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a := d.Send(context.Background(), []cursor.Event{event(fmt.Sprint(i), "updated")}); !a.OK() {
				t.Error(a.Err)
			}
		}()
	}
	wg.Wait()
	reqs := rcv.requests()
	if len(reqs) != 10 {
		t.Fatalf("%d requests", len(reqs))
	}
	for _, r := range reqs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestSendNoEvents(t *testing.T) {
	d := newDest(t, config.Destination{URL: "stdout"}, Options{Stdout: io.Discard})
	if a := d.Send(context.Background(), nil); a.OK() {
		t.Error("send of no events succeeded")
	}
}

func TestKeapMixedTypesFailAttempt(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDest(t, config.Destination{URL: rcv.URL, Format: config.FormatKeap, Batch: config.Batch{MaxEvents: 100}}, Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "add"), event("2", "edit")})
	if a.OK() || len(rcv.requests()) != 0 {
		t.Errorf("mixed keap types: attempt %+v, %d requests", a, len(rcv.requests()))
	}
}

func TestMatches(t *testing.T) {
	d := newDest(t, config.Destination{URL: "stdout", Events: []string{"contact.*", "*.deleted"}}, Options{})
	tests := map[string]bool{
		"contact.created": true, "contact.deleted": true, "invoice.deleted": true,
		"invoice.created": false, "contactGroup.applied": false,
	}
	for typ, want := range tests {
		if got := d.Matches(typ); got != want {
			t.Errorf("Matches(%q) = %v, want %v", typ, got, want)
		}
	}
	if d.Name() != "test" || d.Config().URL != "stdout" {
		t.Errorf("Name %q, Config %+v", d.Name(), d.Config())
	}
}

// TestConnectionsReused delivers many events one a request, four in
// flight, to receivers that answer with and without a body: the requests
// reuse a connection per request in flight instead of dialing one each
// (the response bodies are drained and closed, and the transport keeps
// max_in_flight idle connections). While the first requests are dialing,
// one that finds a connection freed meanwhile takes it and leaves its own
// dial spare, so the first pass may open a few more than max_in_flight;
// the next pass opens none.
func TestConnectionsReused(t *testing.T) {
	const inFlight, events = 4, 200
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{"no body", http.StatusOK, ""},
		{"a body", http.StatusOK, strings.Repeat("accepted ", 1000)},
		{"failure with a body", http.StatusInternalServerError, strings.Repeat("try later ", 1000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			h := newHarness(t)
			e := h.engine(EngineOptions{}, destConfig("a", srv.URL, func(d *config.Destination) { d.MaxInFlight = inFlight }))
			h.addN(events)
			if res := h.step(e); res.Requests != events {
				t.Fatalf("first step = %+v, want %d requests", res, events)
			}
			first := conns.Load()
			if first > 2*inFlight {
				t.Errorf("%d connections for %d requests, want about %d (one per request in flight)", first, events, inFlight)
			}
			h.addN(events)
			if res := h.step(e); res.Requests != events {
				t.Fatalf("second step = %+v, want %d requests", res, events)
			}
			if n := conns.Load() - first; n > 0 {
				t.Errorf("%d more connections for %d more requests, want none: the idle ones are reused", n, events)
			}
		})
	}
}
