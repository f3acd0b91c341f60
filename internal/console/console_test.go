package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/poller"
)

// fakeRuntime is a runtime that records the actions asked of it.
type fakeRuntime struct {
	mu    sync.Mutex
	cfg   *config.Config
	calls []string
	err   error // what the actions return
}

func (f *fakeRuntime) Config() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}
func (f *fakeRuntime) Holder() string { return "test-holder" }
func (f *fakeRuntime) Ready() error   { return nil }
func (f *fakeRuntime) Schedule(string) (poller.LoopState, bool) {
	return poller.LoopState{Next: t0.Add(time.Hour)}, true
}

func (f *fakeRuntime) call(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return f.err
}
func (f *fakeRuntime) PollNow(r string) error { return f.call("poll %s", r) }
func (f *fakeRuntime) ResetCursor(_ context.Context, r string, to time.Time) error {
	return f.call("reset %s %s", r, iso(to))
}
func (f *fakeRuntime) Replay(_ context.Context, d, e string) (int64, error) {
	return 3, f.call("replay %s %q", d, e)
}
func (f *fakeRuntime) EnableDestination(_ context.Context, d string) error {
	return f.call("enable %s", d)
}

func (f *fakeRuntime) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const testToken = "tok-3f9c"

// fixture is a console over a real store, with a fake runtime and clock.
type fixture struct {
	t     *testing.T
	c     *Console
	rt    *fakeRuntime
	store *cursor.SQLite
	now   time.Time
	mu    sync.Mutex
}

func testConfig(t testing.TB, token string) *config.Config {
	t.Helper()
	yaml := `state: { path: unused.db }
http: { listen: 127.0.0.1:0, token: "` + token + `" }
sources: [{ name: up, base_url: "http://127.0.0.1:1" }]
resources:
  - { name: contacts, object: contact, url: /c, schedule: 5m }
  - { name: deals, object: deal, url: /d, schedule: 5m }
destinations:
  - { name: app, url: "https://user:pw@app.example.com/hook?key=secret" }
`
	cfg, err := config.Parse("pollhook.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := cursor.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{t: t, rt: &fakeRuntime{cfg: testConfig(t, testToken)}, store: store, now: t0.Add(time.Hour)}
	f.c = New(Options{Runtime: f.rt, State: store, Now: f.clock})
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// response is what a request got.
type response struct {
	code int
	head http.Header
	body string
}

// do sends a request from addr (with the session cookie when sid is
// set) and returns the response.
func (f *fixture) do(method, path, addr, sid string, form url.Values) response {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = addr + ":40000"
	if sid != "" {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: sid})
	}
	w := httptest.NewRecorder()
	f.c.ServeHTTP(w, req)
	return response{w.Code, w.Header(), w.Body.String()}
}

// signIn signs in from addr and returns the session id and its CSRF
// token.
func (f *fixture) signIn(addr string) (sid, csrf string) {
	f.t.Helper()
	r := f.do("POST", "/ui/login", addr, "", url.Values{"token": {testToken}})
	if r.code != http.StatusSeeOther {
		f.t.Fatalf("sign in: %d %s", r.code, r.body)
	}
	for _, ck := range (&http.Response{Header: r.head}).Cookies() {
		if ck.Name == cookieName {
			sid = ck.Value
		}
	}
	page := f.do("GET", "/ui/", addr, sid, nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.body)
	if sid == "" || m == nil {
		f.t.Fatalf("sign in gave no session (%q) or no CSRF token in:\n%s", sid, page.body)
	}
	return sid, m[1]
}

func TestConsoleOffWithoutToken(t *testing.T) {
	f := newFixture(t)
	f.rt.cfg = testConfig(t, "")
	for _, tt := range []struct{ method, path string }{
		{"GET", "/ui/"}, {"GET", "/ui/login"}, {"POST", "/ui/login"}, {"GET", "/ui/resources/contacts"}, {"GET", "/ui/assets/console.css"},
	} {
		r := f.do(tt.method, tt.path, "10.0.0.1", "", url.Values{"token": {""}})
		if r.code != http.StatusNotFound || !strings.Contains(r.body, "http.token") || strings.Contains(r.body, "contacts") {
			t.Errorf("%s %s without http.token: %d, want 404 saying to set http.token and nothing of the state:\n%s", tt.method, tt.path, r.code, r.body)
		}
	}
}

func TestSignInAndOut(t *testing.T) {
	f := newFixture(t)
	// Before sign-in: sent to the form, which shows nothing of the state.
	r := f.do("GET", "/ui/resources/contacts?before=3", "10.0.0.1", "", nil)
	if r.code != http.StatusSeeOther || r.head.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/resources/contacts?before=3") {
		t.Fatalf("a page before sign-in: %d to %q, want 303 to the sign-in form", r.code, r.head.Get("Location"))
	}
	login := f.do("GET", "/ui/login", "10.0.0.1", "", nil)
	for _, secret := range []string{"contacts", "deals", "app.example.com", "test-holder", "ready"} {
		if strings.Contains(login.body, secret) {
			t.Errorf("the sign-in form shows %q", secret)
		}
	}
	// A wrong token.
	r = f.do("POST", "/ui/login", "10.0.0.1", "", url.Values{"token": {"nope"}})
	if r.code != http.StatusUnauthorized || strings.Contains(r.head.Get("Set-Cookie"), cookieName) {
		t.Errorf("a wrong token: %d, cookie %q; want 401 and no session", r.code, r.head.Get("Set-Cookie"))
	}
	// The right one: a session cookie, and back to the page asked for.
	r = f.do("POST", "/ui/login", "10.0.0.1", "", url.Values{"token": {testToken}, "next": {"/ui/resources/contacts?before=3"}})
	if r.code != http.StatusSeeOther || r.head.Get("Location") != "/ui/resources/contacts?before=3" {
		t.Errorf("sign-in: %d to %q, want 303 back to the page", r.code, r.head.Get("Location"))
	}
	ck := r.head.Get("Set-Cookie")
	for _, want := range []string{cookieName + "=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("session cookie %q is Secure over plain HTTP: the browser would not send it back", ck)
	}
	// A next page outside the console is not followed.
	for _, next := range []string{"https://evil.example/", "//evil.example/ui/", "/ui/login", "/metrics"} {
		r = f.do("POST", "/ui/login", "10.0.0.1", "", url.Values{"token": {testToken}, "next": {next}})
		if loc := r.head.Get("Location"); loc != "/ui/" {
			t.Errorf("sign-in with next %q goes to %q, want /ui/", next, loc)
		}
	}
	sid, csrf := f.signIn("10.0.0.1")
	if page := f.do("GET", "/ui/", "10.0.0.1", sid, nil); page.code != 200 || !strings.Contains(page.body, "contacts") ||
		!strings.Contains(page.body, "deals") || !strings.Contains(page.body, `href="/ui/destinations/app"`) {
		t.Errorf("the overview: %d\n%s", page.code, page.body)
	}
	// Sign-out needs the CSRF token too, and ends the session.
	if r := f.do("POST", "/ui/logout", "10.0.0.1", sid, url.Values{}); r.code != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token: %d, want 403", r.code)
	}
	if r := f.do("POST", "/ui/logout", "10.0.0.1", sid, url.Values{"csrf": {csrf}}); r.code != http.StatusSeeOther ||
		!strings.Contains(r.head.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("sign-out: %d, cookie %q; want 303 and the cookie cleared", r.code, r.head.Get("Set-Cookie"))
	}
	if r := f.do("GET", "/ui/", "10.0.0.1", sid, nil); r.code != http.StatusSeeOther {
		t.Errorf("the overview after sign-out: %d, want 303 to sign in", r.code)
	}
}

func TestSecureCookieBehindTLS(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest("POST", "/ui/login", strings.NewReader("token="+testToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-Proto", "https")
	w := httptest.NewRecorder()
	f.c.ServeHTTP(w, req)
	if ck := w.Header().Get("Set-Cookie"); !strings.Contains(ck, "Secure") {
		t.Errorf("cookie behind a TLS proxy = %q, want Secure", ck)
	}
}

func TestSessionsEnd(t *testing.T) {
	f := newFixture(t)
	ok := func(sid string) bool { return f.do("GET", "/ui/", "10.0.0.1", sid, nil).code == http.StatusOK }

	idle, _ := f.signIn("10.0.0.1")
	f.advance(SessionIdle - time.Minute)
	if !ok(idle) {
		t.Error("a session ended before SessionIdle")
	}
	f.advance(SessionIdle - time.Minute)
	if !ok(idle) {
		t.Error("a session in use ended after SessionIdle since sign-in")
	}
	f.advance(SessionIdle + time.Second)
	if ok(idle) {
		t.Error("a session lived on after SessionIdle unused")
	}

	busy, _ := f.signIn("10.0.0.1")
	for range int(SessionMax/(SessionIdle/2)) + 1 {
		f.advance(SessionIdle / 2)
		ok(busy)
	}
	if ok(busy) {
		t.Error("a busy session lived on after SessionMax")
	}

	// A new token ends the sessions of the old one.
	sid, _ := f.signIn("10.0.0.1")
	f.rt.mu.Lock()
	f.rt.cfg = testConfig(t, "a-new-token")
	f.rt.mu.Unlock()
	if ok(sid) {
		t.Error("a session lived on after http.token changed")
	}
	// Made-up session ids are nobody's.
	if ok("made-up") {
		t.Error("a made-up session id was accepted")
	}
}

func TestWrongTokensAreRateLimited(t *testing.T) {
	f := newFixture(t)
	wrong := func(addr string) response {
		return f.do("POST", "/ui/login", addr, "", url.Values{"token": {"guess"}})
	}
	for i := range AddrFailures {
		if r := wrong("10.0.0.1"); r.code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i+1, r.code)
		}
	}
	r := wrong("10.0.0.1")
	if r.code != http.StatusTooManyRequests || r.head.Get("Retry-After") == "" {
		t.Fatalf("wrong token %d: %d (Retry-After %q), want 429 with Retry-After", AddrFailures+1, r.code, r.head.Get("Retry-After"))
	}
	if secs, _ := strconv.Atoi(r.head.Get("Retry-After")); secs < 1 || secs > int(AddrEvery.Seconds())+1 {
		t.Errorf("Retry-After %q, want up to %s", r.head.Get("Retry-After"), AddrEvery)
	}
	// While limited, even the right token is refused: guesses cannot
	// go on at the same pace.
	if r := f.do("POST", "/ui/login", "10.0.0.1", "", url.Values{"token": {testToken}}); r.code != http.StatusTooManyRequests {
		t.Errorf("the right token while limited: %d, want 429", r.code)
	}
	// Another address is not held back by this one.
	if r := f.do("POST", "/ui/login", "10.0.0.2", "", url.Values{"token": {testToken}}); r.code != http.StatusSeeOther {
		t.Errorf("the right token from another address: %d, want 303", r.code)
	}
	// After AddrEvery, one more try.
	f.advance(AddrEvery)
	if r := wrong("10.0.0.1"); r.code != http.StatusUnauthorized {
		t.Errorf("a try after %s: %d, want 401", AddrEvery, r.code)
	}
	if r := wrong("10.0.0.1"); r.code != http.StatusTooManyRequests {
		t.Errorf("the next at once: %d, want 429", r.code)
	}

	// Many addresses together are held back too.
	g := newFixture(t)
	refused := 0
	for i := range 2 * AllFailures {
		addr := fmt.Sprintf("10.1.%d.%d", i/200, i%200)
		if g.do("POST", "/ui/login", addr, "", url.Values{"token": {"guess"}}).code == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused != AllFailures {
		t.Errorf("%d wrong tokens from %d addresses: %d refused, want %d (beyond the global allowance)", 2*AllFailures, 2*AllFailures, refused, AllFailures)
	}
}

func TestActionsNeedSessionAndCSRF(t *testing.T) {
	f := newFixture(t)
	sid, csrf := f.signIn("10.0.0.1")
	post := func(sid, path string, form url.Values) response { return f.do("POST", path, "10.0.0.1", sid, form) }

	if r := post("", "/ui/resources/contacts/poll", url.Values{"csrf": {csrf}}); r.code != http.StatusForbidden {
		t.Errorf("Poll now without a session: %d, want 403", r.code)
	}
	if r := post(sid, "/ui/resources/contacts/poll", url.Values{}); r.code != http.StatusForbidden || !strings.Contains(r.body, "CSRF") {
		t.Errorf("Poll now without the CSRF token: %d, want 403 saying why", r.code)
	}
	if r := post(sid, "/ui/resources/contacts/poll", url.Values{"csrf": {csrf + "x"}}); r.code != http.StatusForbidden {
		t.Errorf("Poll now with a wrong CSRF token: %d, want 403", r.code)
	}
	other, _ := f.signIn("10.0.0.3")
	if r := post(other, "/ui/resources/contacts/poll", url.Values{"csrf": {csrf}}); r.code != http.StatusForbidden {
		t.Errorf("Poll now with another session's CSRF token: %d, want 403", r.code)
	}
	if r := f.do("GET", "/ui/resources/contacts/poll", "10.0.0.1", sid, nil); r.code == http.StatusSeeOther || r.code == http.StatusOK {
		t.Errorf("Poll now by GET: %d, want refused", r.code)
	}
	if calls := f.rt.called(); len(calls) != 0 {
		t.Fatalf("refused requests acted: %v", calls)
	}

	for _, tt := range []struct {
		path string
		form url.Values
		call string
		back string
	}{
		{"/ui/resources/contacts/poll", url.Values{}, "poll contacts", "/ui/resources/contacts"},
		{"/ui/destinations/app/replay", url.Values{}, `replay app ""`, "/ui/destinations/app"},
		{"/ui/destinations/app/replay", url.Values{"event": {"evt_1"}, "back": {"/ui/events/evt_1"}}, `replay app "evt_1"`, "/ui/events/evt_1"},
		{"/ui/destinations/app/enable", url.Values{}, "enable app", "/ui/destinations/app"},
		{"/ui/resources/deals/reset", url.Values{"to": {"2026-11-01T00:00:00Z"}, "confirm": {"yes"}}, "reset deals 2026-11-01T00:00:00Z", "/ui/resources/deals"},
		{"/ui/resources/deals/reset", url.Values{"to": {""}, "confirm": {"yes"}}, "reset deals ", "/ui/resources/deals"},
	} {
		before := len(f.rt.called())
		tt.form.Set("csrf", csrf)
		r := post(sid, tt.path, tt.form)
		calls := f.rt.called()
		if r.code != http.StatusSeeOther || r.head.Get("Location") != tt.back || len(calls) != before+1 || calls[before] != tt.call {
			t.Errorf("POST %s %v: %d to %q, calls %v; want 303 to %s after %q", tt.path, tt.form, r.code, r.head.Get("Location"), calls[before:], tt.back, tt.call)
		}
	}
	// The outcome is on the next page, once.
	page := f.do("GET", "/ui/resources/deals", "10.0.0.1", sid, nil)
	if !strings.Contains(page.body, "watermark is forgotten") {
		t.Errorf("the page after a reset does not say what was done:\n%s", page.body)
	}
	if page := f.do("GET", "/ui/resources/deals", "10.0.0.1", sid, nil); strings.Contains(page.body, "watermark is forgotten") {
		t.Error("the message of an action shows twice")
	}
	// What the runtime refuses is said.
	f.rt.err = fmt.Errorf("poll contacts: another pollhook process polls it (host:1:abc)")
	post(sid, "/ui/resources/contacts/poll", url.Values{"csrf": {csrf}})
	if page := f.do("GET", "/ui/resources/contacts", "10.0.0.1", sid, nil); !strings.Contains(page.body, "another pollhook process polls it") ||
		!strings.Contains(page.body, `class="flash bad"`) {
		t.Errorf("a refused action is not shown as an error:\n%s", page.body)
	}
}

func TestResetAsksFirst(t *testing.T) {
	f := newFixture(t)
	sid, csrf := f.signIn("10.0.0.1")
	r := f.do("POST", "/ui/resources/contacts/reset", "10.0.0.1", sid, url.Values{"csrf": {csrf}, "to": {"2026-11-01T00:00:00Z"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "Yes, reset the watermark") || !strings.Contains(r.body, "2026-11-01 00:00:00 UTC") {
		t.Errorf("reset without confirmation: %d, want the confirmation page:\n%s", r.code, r.body)
	}
	if calls := f.rt.called(); len(calls) != 0 {
		t.Errorf("reset without confirmation acted: %v", calls)
	}
	r = f.do("POST", "/ui/resources/contacts/reset", "10.0.0.1", sid, url.Values{"csrf": {csrf}, "to": {"last tuesday"}, "confirm": {"yes"}})
	page := f.do("GET", "/ui/resources/contacts", "10.0.0.1", sid, nil)
	if r.code != http.StatusSeeOther || !strings.Contains(page.body, "not an RFC 3339 time") || len(f.rt.called()) != 0 {
		t.Errorf("reset to a bad time: %d, calls %v, page says:\n%s", r.code, f.rt.called(), page.body)
	}
}

func TestSecurityHeadersAndAssets(t *testing.T) {
	f := newFixture(t)
	sid, _ := f.signIn("10.0.0.1")
	r := f.do("GET", "/ui/", "10.0.0.1", sid, nil)
	csp := r.head.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, want)
		}
	}
	if r.head.Get("Cache-Control") != "no-store" || r.head.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("page headers: %v", r.head)
	}
	if strings.Contains(r.body, "style=") || strings.Contains(r.body, "<script>") || regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(r.body) {
		t.Error("the page has an inline style or script, or loads something from elsewhere")
	}
	for path, typ := range map[string]string{
		"/ui/assets/console.css": "text/css", "/ui/assets/console.js": "text/javascript", "/ui/assets/favicon.svg": "image/svg+xml",
	} {
		a := f.do("GET", path, "10.0.0.9", "", nil)
		if a.code != 200 || !strings.HasPrefix(a.head.Get("Content-Type"), typ) || strings.Contains(a.body, "http://") && path != "/ui/assets/favicon.svg" {
			t.Errorf("GET %s: %d %s", path, a.code, a.head.Get("Content-Type"))
		}
	}
}
