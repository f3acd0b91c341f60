package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

const testToken = "t0ken-for-tests"

var (
	loopbackNet = netip.MustParsePrefix("127.0.0.0/8")
	t0          = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	testKeys    = []string{
		"contact.created", "contact.updated", "contact.deleted",
		"deal.add", "deal.edit", "deal.delete",
	}
)

// fakeResolver resolves names from a table that a test may change.
type fakeResolver struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
}

func newResolver(pairs ...string) *fakeResolver {
	f := &fakeResolver{names: map[string][]netip.Addr{}}
	for i := 0; i+1 < len(pairs); i += 2 {
		f.set(pairs[i], pairs[i+1])
	}
	return f
}

func (f *fakeResolver) set(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = strings.ToLower(name)
	f.names[name] = nil
	for _, a := range addrs {
		f.names[name] = append(f.names[name], netip.MustParseAddr(a))
	}
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.names[strings.ToLower(host)]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is an API over a real store, served by an httptest server.
type env struct {
	api      *API
	store    *cursor.SQLite
	srv      *httptest.Server
	clock    *clock
	resolver *fakeResolver
	changes  atomic.Int64
}

// newEnv starts an API with testToken, testKeys, loopback allowed, and
// the test server's own address as its listen address; edit changes the
// options first.
func newEnv(t *testing.T, edit ...func(*Options)) *env {
	t.Helper()
	store, err := cursor.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{store: store, clock: &clock{t: t0}, resolver: newResolver()}
	e.srv = httptest.NewUnstartedServer(nil)
	opts := Options{
		Token:        testToken,
		EventKeys:    testKeys,
		AllowTargets: []netip.Prefix{loopbackNet},
		SelfAddrs:    []string{e.srv.Listener.Addr().String()},
		Resolver:     e.resolver,
		Now:          e.clock.now,
		OnChange:     func() { e.changes.Add(1) },
	}
	for _, f := range edit {
		f(&opts)
	}
	e.api, err = NewAPI(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Config.Handler = e.api.Handler()
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// response is an API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// message returns the error message of a Keap or Pipedrive error body.
func (r response) message(t *testing.T) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	r.json(t, &m)
	return m.Message + m.Error
}

// do sends a request with the bearer token; header pairs are added (an
// "Authorization" pair replaces the token, "" removes it).
func (e *env) do(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// createHook makes a Keap hook and returns it.
func (e *env) createHook(t *testing.T, eventKey, hookURL string) KeapHook {
	t.Helper()
	r := e.do(t, "POST", "/hooks", fmt.Sprintf(`{"eventKey":%q,"hookUrl":%q}`, eventKey, hookURL))
	if r.status != http.StatusCreated {
		t.Fatalf("POST /hooks: %d %s", r.status, r.body)
	}
	var h KeapHook
	r.json(t, &h)
	return h
}

func (e *env) getHook(t *testing.T, key string) KeapHook {
	t.Helper()
	r := e.do(t, "GET", "/hooks/"+key, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /hooks/%s: %d %s", key, r.status, r.body)
	}
	var h KeapHook
	r.json(t, &h)
	return h
}

// subscribers returns the names of the API's Subscribers.
func (e *env) subscribers(t *testing.T) map[string]Subscriber {
	t.Helper()
	subs, err := e.api.Subscribers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Subscriber{}
	for _, s := range subs {
		out[s.Name] = s
	}
	return out
}

// receiver is a subscriber's endpoint: it records the X-Hook-Secret of
// each request and answers status, echoing the secret when echo is set.
type receiver struct {
	*httptest.Server
	status int
	echo   func(secret string) string // the header to send back; nil sends none

	mu      sync.Mutex
	secrets []string
}

func newReceiver(t *testing.T, status int, echo func(string) string) *receiver {
	t.Helper()
	rc := &receiver{status: status, echo: echo}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s := r.Header.Get(HeaderHookSecret)
		rc.mu.Lock()
		rc.secrets = append(rc.secrets, s)
		rc.mu.Unlock()
		if rc.echo != nil {
			w.Header().Set(HeaderHookSecret, rc.echo(s))
		}
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func echoSecret(s string) string { return s }

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.secrets...)
}
