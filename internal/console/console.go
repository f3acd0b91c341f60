// Package console is pollhook's web console: pages, served under /ui/,
// that show every resource, cursor, backlog and delivery of a running
// pollhook, and buttons that act on them (poll now, reset a cursor,
// replay, enable).
//
// It is server-rendered with html/template; its stylesheet, its small
// script and its icon are embedded in the binary, and nothing is fetched
// from elsewhere. Every page works with scripts off: the script only
// reloads a page (on request, or while a poll runs) and shows times in
// the browser's zone.
// Charts are SVG drawn on the server.
//
// # Access
//
// The console is on when http.token is set, and answers every path with
// a page saying how to turn it on otherwise. Nothing of the state is
// shown before sign-in: a form takes the token (compared in constant
// time) and starts a session, kept in this process's memory under a
// random id, in an HttpOnly, SameSite=Strict cookie (Secure when the
// request came over TLS or says X-Forwarded-Proto: https). A session ends
// when signed out, after SessionIdle without a request, SessionMax after
// sign-in, when the token changes, or when the process stops. Wrong
// tokens are rate-limited per client address (the connection's: a proxy
// in front makes its clients share one) and for all clients together.
// Every request that changes something is a POST carrying the session's
// CSRF token, checked in constant time.
//
// # Acting
//
// The console acts only through the runtime ([Runtime]): a poll is the
// scheduler's, a cursor reset waits for the cycle in hand, a replay or an
// enable wakes the delivery engine. It reads the state through [State],
// the read methods of the store, with queries that cost the same however
// many events, records or deliveries there are: pages of rows are read by
// position (keyset), never by offset, and a backlog of more than
// CountLimit deliveries is shown from the last sample the runtime took.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/poller"
)

// Runtime is what the console asks of the running pollhook: its
// configuration, its readiness, where each resource's loop stands, and
// the actions, each taken through the part of the runtime that owns the
// work.
type Runtime interface {
	Config() *config.Config
	// Holder names this process in the leases.
	Holder() string
	// Ready is nil when the runtime can do its work, else why not.
	Ready() error
	Schedule(resource string) (poller.LoopState, bool)
	PollNow(resource string) error
	ResetCursor(ctx context.Context, resource string, to time.Time) error
	// Replay replays one event to dest, or every dead delivery of dest
	// when eventID is empty.
	Replay(ctx context.Context, dest, eventID string) (int64, error)
	EnableDestination(ctx context.Context, name string) error
}

// State is the console's view of the state store: reads only
// (cursor.Store has them all).
type State interface {
	Cursors(ctx context.Context) ([]cursor.ResourceState, error)
	Cycles(ctx context.Context, f cursor.CycleFilter) ([]cursor.CycleRecord, error)
	EventsPerHour(ctx context.Context, since time.Time) ([]cursor.HourCount, error)
	EachEvent(ctx context.Context, f cursor.EventFilter, fn func(cursor.Event) error) error
	Event(ctx context.Context, id string) (cursor.Event, error)
	Destinations(ctx context.Context) ([]cursor.DestinationState, error)
	BacklogAtMost(ctx context.Context, dest string, limit int64) (cursor.Backlog, error)
	BacklogHistory(ctx context.Context, dest string, since time.Time) ([]cursor.BacklogSample, error)
	Deliveries(ctx context.Context, f cursor.DeliveryFilter) ([]cursor.Delivery, error)
	Attempts(ctx context.Context, f cursor.AttemptFilter) ([]cursor.AttemptLog, error)
	Subscriptions(ctx context.Context) ([]cursor.Subscription, error)
	Leases(ctx context.Context) ([]cursor.Lease, error)
}

// Limits of what a page shows.
const (
	// CountLimit is the most pending or dead deliveries a page counts;
	// above it, the count is the last backlog sample's.
	CountLimit = 1000
	// PageRows is how many rows a table shows at a time; older rows are
	// a link away.
	PageRows = 50
	// CycleRows is how many cycles a resource page shows at a time.
	CycleRows = 20
	// AttemptRows is how many attempts are shown with each delivery.
	AttemptRows = 5
	// ChartSpan is how far back the charts go.
	ChartSpan = 24 * time.Hour
)

// Options are the console's collaborators.
type Options struct {
	// Runtime and State are required.
	Runtime Runtime
	State   State
	// Logger gets a line per sign-in, sign-out, refused sign-in and
	// action; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// SampleEvery is how often the runtime samples the backlogs, as the
	// backlog chart says.
	SampleEvery time.Duration
}

// Console serves the web console. It is an http.Handler for the paths
// under /ui/; safe for concurrent use.
type Console struct {
	rt    Runtime
	state State
	log   *slog.Logger
	now   func() time.Time
	// sampleEvery is the runtime's backlog sample interval.
	sampleEvery time.Duration
	pages       *pages
	auth        *auth
	mux         *http.ServeMux
}

//go:embed templates assets
var files embed.FS

// New returns the console of opts.Runtime over opts.State.
func New(opts Options) *Console {
	c := &Console{rt: opts.Runtime, state: opts.State, log: opts.Logger, now: opts.Now, sampleEvery: opts.SampleEvery}
	if c.sampleEvery <= 0 {
		c.sampleEvery = time.Minute
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "console")
	if c.now == nil {
		c.now = time.Now
	}
	c.pages = mustParsePages()
	c.auth = newAuth(c.now)
	c.mux = c.routes()
	return c
}

// Prefix is where the console is served.
const Prefix = "/ui/"

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(files, "assets")
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", assetServer(assets)))
	mux.HandleFunc("GET /ui/login", c.loginPage)
	mux.HandleFunc("POST /ui/login", c.login)
	mux.HandleFunc("POST /ui/logout", c.signedIn(c.logout))
	mux.HandleFunc("GET /ui/{$}", c.signedIn(c.overview))
	mux.HandleFunc("GET /ui/resources/{name}", c.signedIn(c.resource))
	mux.HandleFunc("POST /ui/resources/{name}/poll", c.signedIn(c.pollNow))
	mux.HandleFunc("POST /ui/resources/{name}/reset", c.signedIn(c.resetCursor))
	mux.HandleFunc("GET /ui/destinations/{name}", c.signedIn(c.destination))
	mux.HandleFunc("POST /ui/destinations/{name}/replay", c.signedIn(c.replay))
	mux.HandleFunc("POST /ui/destinations/{name}/enable", c.signedIn(c.enable))
	mux.HandleFunc("GET /ui/events/{id}", c.signedIn(c.event))
	mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := c.auth.session(r, c.tokenSum()); !ok {
			c.toLogin(w, r)
			return
		}
		c.fail(w, r, http.StatusNotFound, "No such page.")
	})
	return mux
}

// ServeHTTP serves the console, or, without http.token, a page saying
// how to turn it on.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	if c.token() == "" {
		h.Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		c.pages.render(w, "off", page{Title: "Console off"})
		return
	}
	c.mux.ServeHTTP(w, r)
}

// token is the running configuration's http.token.
func (c *Console) token() string { return string(c.rt.Config().HTTP.Token) }

// tokenSum is the SHA-256 of the token, which sessions are bound to: a
// new token ends them.
func (c *Console) tokenSum() [32]byte { return sha256.Sum256([]byte(c.token())) }

// errNotFound marks an error whose page is a 404.
var errNotFound = errors.New("not found")
