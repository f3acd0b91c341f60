package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sessions and sign-in limits.
const (
	// SessionIdle ends a session after this long without a request.
	SessionIdle = time.Hour
	// SessionMax ends a session this long after sign-in, however busy.
	SessionMax = 12 * time.Hour
	// MaxSessions bounds the sessions kept; a sign-in beyond it ends the
	// session seen least recently.
	MaxSessions = 1000
	// AddrFailures is how many wrong tokens one client address may send
	// in a row; then one more every AddrEvery.
	AddrFailures = 5
	AddrEvery    = 12 * time.Second
	// AllFailures and AllEvery are the same for all clients together.
	AllFailures = 30
	AllEvery    = 2 * time.Second
	// maxAddrs bounds the client addresses whose failures are
	// remembered; those back to a full allowance are forgotten first.
	maxAddrs = 10_000
	// maxForm bounds a form's body.
	maxForm = 64 << 10
)

// cookieName is the session cookie's name.
const cookieName = "pollhook_console"

// session is one signed-in browser.
type session struct {
	id    string
	csrf  string   // the token every form of the session carries
	token [32]byte // the SHA-256 of the http.token it signed in with
	start time.Time
	seen  time.Time
	// flash is a message for the next page, and whether it is an error.
	flash    string
	flashErr bool
}

// auth keeps the sessions and the limits of wrong tokens. Safe for
// concurrent use.
type auth struct {
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	addrs    map[string]*rate.Limiter
	all      *rate.Limiter
}

func newAuth(now func() time.Time) *auth {
	return &auth{
		now: now, sessions: map[string]*session{}, addrs: map[string]*rate.Limiter{},
		all: rate.NewLimiter(rate.Every(AllEvery), AllFailures),
	}
}

// randomText is 32 random bytes, base64url: a session id or CSRF token.
func randomText() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// session returns the live session r's cookie names, bound to token,
// and marks it seen.
func (a *auth) session(r *http.Request, token [32]byte) (*session, bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, false
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.sessions[ck.Value]
	if !ok {
		return nil, false
	}
	if !a.live(s, now) || subtle.ConstantTimeCompare(s.token[:], token[:]) != 1 {
		delete(a.sessions, s.id)
		return nil, false
	}
	s.seen = now
	return s, true
}

// live reports whether s has not expired at now. a.mu is held.
func (a *auth) live(s *session, now time.Time) bool {
	return now.Sub(s.seen) < SessionIdle && now.Sub(s.start) < SessionMax
}

// start begins a session bound to token.
func (a *auth) start(token [32]byte) *session {
	now := a.now()
	s := &session{id: randomText(), csrf: randomText(), token: token, start: now, seen: now}
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, old := range a.sessions {
		if !a.live(old, now) {
			delete(a.sessions, id)
		}
	}
	if len(a.sessions) >= MaxSessions {
		var oldest *session
		for _, old := range a.sessions {
			if oldest == nil || old.seen.Before(oldest.seen) {
				oldest = old
			}
		}
		delete(a.sessions, oldest.id)
	}
	a.sessions[s.id] = s
	return s
}

// end ends session s.
func (a *auth) end(s *session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, s.id)
}

// setFlash leaves msg for the next page of s.
func (a *auth) setFlash(s *session, msg string, isErr bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s.flash, s.flashErr = msg, isErr
}

// takeFlash returns and clears the message left for s.
func (a *auth) takeFlash(s *session) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	msg, isErr := s.flash, s.flashErr
	s.flash, s.flashErr = "", false
	return msg, isErr
}

// limited returns how long a client at addr must wait before its next
// try, or 0: while either its own allowance of wrong tokens or that of
// all clients is spent.
func (a *auth) limited(addr string) time.Duration {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	wait := waitFor(a.all, now)
	if l, ok := a.addrs[addr]; ok {
		wait = max(wait, waitFor(l, now))
	}
	return wait
}

// waitFor is how long until l has a whole token at now.
func waitFor(l *rate.Limiter, now time.Time) time.Duration {
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	secs := (1 - tokens) / float64(l.Limit())
	return time.Duration(math.Ceil(secs * float64(time.Second)))
}

// failed spends one wrong token of addr's allowance and of all clients'.
func (a *auth) failed(addr string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.addrs[addr]
	if !ok {
		if len(a.addrs) >= maxAddrs {
			a.forgetAddrs(now)
		}
		l = rate.NewLimiter(rate.Every(AddrEvery), AddrFailures)
		a.addrs[addr] = l
	}
	l.AllowN(now, 1)
	a.all.AllowN(now, 1)
}

// forgetAddrs drops the addresses back to their full allowance, or, if
// none is, all of them. a.mu is held.
func (a *auth) forgetAddrs(now time.Time) {
	n := len(a.addrs)
	for addr, l := range a.addrs {
		if l.TokensAt(now) >= AddrFailures {
			delete(a.addrs, addr)
		}
	}
	if len(a.addrs) == n {
		clear(a.addrs)
	}
}

// clientAddr is the address of r's connection, without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// secure reports whether r came over TLS, to pollhook or to a proxy in
// front of it.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// setCookie gives the browser the session's cookie; a nil s clears it.
func setCookie(w http.ResponseWriter, r *http.Request, s *session) {
	ck := &http.Cookie{
		Name: cookieName, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	}
	if s == nil {
		ck.MaxAge = -1
	} else {
		ck.Value = s.id
	}
	http.SetCookie(w, ck)
}

// signedIn wraps h for the pages behind sign-in. Without a session, a
// GET is sent to the sign-in form and anything else refused; a POST must
// carry the session's CSRF token.
func (c *Console) signedIn(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		s, ok := c.auth.session(r, c.tokenSum())
		if !ok {
			if r.Method == http.MethodGet {
				c.toLogin(w, r)
				return
			}
			c.log.Warn("console request refused: not signed in", "method", r.Method, "path", r.URL.Path, "addr", clientAddr(r))
			c.fail(w, r, http.StatusForbidden, "Sign in first: this request needs a signed-in session, and was not carried out.")
			return
		}
		if r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.fail(w, r, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			got := r.PostForm.Get("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
				c.log.Warn("console request refused: no valid CSRF token", "method", r.Method, "path", r.URL.Path, "addr", clientAddr(r))
				c.fail(w, r, http.StatusForbidden, "This form did not come from this console session (its CSRF token is missing or stale), "+
					"so nothing was done. Reload the page and try again.")
				return
			}
		}
		h(w, r, s)
	}
}

// toLogin sends a browser to the sign-in form, to come back to r's page.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	target := Prefix + "login"
	if r.URL.Path != Prefix && r.URL.Path != target {
		target += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// nextPage is the page to go to after sign-in: next when it is a page of
// the console, else the overview.
func nextPage(next string) string {
	if strings.HasPrefix(next, Prefix) && !strings.HasPrefix(next, Prefix+"login") &&
		!strings.ContainsAny(next, "\\\r\n") && !strings.HasPrefix(next, "//") {
		return next
	}
	return Prefix
}

// loginView is what the sign-in form shows.
type loginView struct {
	Next  string
	Error string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	next := nextPage(r.URL.Query().Get("next"))
	if _, ok := c.auth.session(r, c.tokenSum()); ok {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	c.pages.render(w, "login", page{Title: "Sign in", Data: loginView{Next: next}})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	addr := clientAddr(r)
	if wait := c.auth.limited(addr); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		c.pages.render(w, "login", page{Title: "Sign in", Data: loginView{
			Next:  nextPage(r.URL.Query().Get("next")),
			Error: "Too many wrong tokens: try again in " + strconv.Itoa(secs) + " s.",
		}})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	r.ParseForm()
	next := nextPage(r.PostForm.Get("next"))
	sum := sha256.Sum256([]byte(r.PostForm.Get("token")))
	want := c.tokenSum()
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		c.auth.failed(addr)
		c.log.Warn("console sign-in refused: wrong token", "addr", addr)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		c.pages.render(w, "login", page{Title: "Sign in", Data: loginView{Next: next,
			Error: "That is not the token: it is http.token of pollhook's configuration."}})
		return
	}
	s := c.auth.start(want)
	setCookie(w, r, s)
	c.log.Info("console sign-in", "addr", addr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	c.auth.end(s)
	setCookie(w, r, nil)
	c.log.Info("console sign-out", "addr", clientAddr(r))
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
