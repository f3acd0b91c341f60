package hooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/redact"
)

// API dialects: the API a subscription was made through.
const (
	DialectKeap      = "keap"
	DialectPipedrive = "pipedrive"
)

// HeaderHookSecret carries the secret of the verification handshake, to
// the subscriber and back.
const HeaderHookSecret = "X-Hook-Secret"

// NamePrefix starts the Subscriber name of every subscription:
// "hook:<key>".
const NamePrefix = "hook:"

// Limits and timeouts of the API.
const (
	// HandshakeTimeout bounds one verification handshake.
	HandshakeTimeout = 10 * time.Second
	// MaxRequestBytes bounds a request body.
	MaxRequestBytes = 64 << 10
	// KeapTimeout is how long a Keap subscriber has to answer a delivery:
	// Keap's 30 seconds.
	KeapTimeout = 30 * time.Second
	// PipedriveTimeout is how long a Pipedrive subscriber has to answer a
	// delivery: Pipedrive's 10 seconds.
	PipedriveTimeout = 10 * time.Second
	// PipedriveRemoveAfter is how long a Pipedrive webhook may go without
	// a successful delivery before Deactivate deactivates it: Pipedrive
	// deletes a webhook after 3 days without one.
	PipedriveRemoveAfter = 72 * time.Hour
)

// Retry schedules of subscribers: the wait before each retry of a failed
// delivery. After the last retry fails the event is dead and the engine
// calls Deactivate.
var (
	// KeapRetrySchedule is Keap's policy: four attempts in all, the second
	// 30–60 s after the first failed, the third 5 minutes after the
	// second, the fourth 30 minutes after the third.
	KeapRetrySchedule = []time.Duration{45 * time.Second, 5 * time.Minute, 30 * time.Minute}
	// PipedriveRetrySchedule is Pipedrive's policy: three more attempts,
	// 3, 30 and 150 seconds after the first failed.
	PipedriveRetrySchedule = []time.Duration{3 * time.Second, 30 * time.Second, 150 * time.Second}
)

// Store is the subscription table the API keeps; every cursor.Store implements
// it. Its methods must be safe for concurrent use.
type Store interface {
	CreateSubscription(ctx context.Context, sub cursor.Subscription) (cursor.Subscription, error)
	Subscription(ctx context.Context, key string) (cursor.Subscription, error)
	SubscriptionByID(ctx context.Context, id int64) (cursor.Subscription, error)
	Subscriptions(ctx context.Context) ([]cursor.Subscription, error)
	UpdateSubscription(ctx context.Context, key string, change func(*cursor.Subscription) error) (cursor.Subscription, error)
	DeleteSubscription(ctx context.Context, key string) error
	DeliverySummary(ctx context.Context, dest string) (cursor.DeliverySummary, error)
	EnsureDestination(ctx context.Context, name string, since time.Time) (cursor.DestinationState, error)
	EnableDestination(ctx context.Context, name string) error
}

var _ Store = cursor.Store(nil)

// Options are what an API takes from its surroundings.
type Options struct {
	// Token is the bearer token of the API (http.token). Empty turns the
	// API off: every route answers 404 and says so. It is never open
	// without a token.
	Token string
	// EventKeys are the event types (noun.verb) the configured resources
	// can produce (each resource's PossibleEventTypes()): what GET /hooks/event_keys
	// lists and subscriptions may name.
	EventKeys []string
	// AllowTargets are the non-public addresses subscriber URLs may reach
	// (http.allow_targets).
	AllowTargets []netip.Prefix
	// SelfAddrs are pollhook's own listen addresses (host:port), which
	// subscriber URLs may never reach.
	SelfAddrs []string
	// Resolver resolves the host names of subscriber URLs; nil means
	// net.DefaultResolver.
	Resolver Resolver
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger gets subscription changes and handshake results; nil
	// discards them.
	Logger *slog.Logger
	// OnChange is called after any change to a subscription, so that the
	// delivery engine reads Subscribers again; nil for none. It must not
	// block.
	OnChange func()
}

// API is pollhook's REST Hooks subscription API, in Keap's dialect
// (/hooks) and Pipedrive's (/v1/webhooks), both views over one table of
// subscriptions in the state store. See the package documentation.
//
// An API is safe for concurrent use.
type API struct {
	store     Store
	token     []byte // sha256 of the token; nil when the API is off
	eventKeys []string
	keys      map[string]bool
	objects   []string // the nouns of eventKeys, sorted
	guard     *Guard
	client    *http.Client // for handshakes
	now       func() time.Time
	log       *slog.Logger
	onChange  func()
}

// NewAPI returns the API over store. It fails for an event key that is
// not noun.verb.
func NewAPI(store Store, opts Options) (*API, error) {
	if store == nil {
		return nil, errors.New("new hooks api: no store")
	}
	a := &API{
		store:    store,
		keys:     map[string]bool{},
		guard:    NewGuard(opts.AllowTargets, opts.SelfAddrs, opts.Resolver),
		now:      opts.Now,
		log:      opts.Logger,
		onChange: opts.OnChange,
	}
	if opts.Token != "" {
		sum := sha256.Sum256([]byte(opts.Token))
		a.token = sum[:]
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("component", "hooks")
	a.client = a.guard.Client(HandshakeTimeout)
	nouns := map[string]bool{}
	for _, k := range opts.EventKeys {
		noun, verb, ok := strings.Cut(k, ".")
		if !ok || noun == "" || verb == "" || strings.Contains(verb, ".") || strings.Contains(k, "*") {
			return nil, fmt.Errorf("new hooks api: event key %q: want noun.verb such as contact.created", k)
		}
		if !a.keys[k] {
			a.keys[k] = true
			a.eventKeys = append(a.eventKeys, k)
		}
		if !nouns[noun] {
			nouns[noun] = true
			a.objects = append(a.objects, noun)
		}
	}
	slices.Sort(a.eventKeys)
	slices.Sort(a.objects)
	return a, nil
}

// Guard returns the guard that checks subscriber URLs; deliveries to
// subscribers should go through its Transport.
func (a *API) Guard() *Guard { return a.guard }

// Subscriber is a subscription that receives events now.
type Subscriber struct {
	// Name is "hook:" and the subscription key: unique and stable.
	Name string
	// Key and ID are the subscription's key (Keap) and id (Pipedrive).
	Key string
	ID  int64
	URL string
	// Events are globs over noun.verb, as config.MatchEvent reads them.
	Events []string
	// Format is config.FormatKeap or emit.FormatPipedrive.
	Format string
	// BasicAuth is sent to URL when set (Pipedrive's http_auth_user and
	// http_auth_password).
	BasicAuth *config.BasicAuth
	// RetrySchedule is the wait before each retry of a failed delivery.
	RetrySchedule []time.Duration
	// Timeout bounds one delivery request.
	Timeout time.Duration
	// MaxEvents is the most events one request carries.
	MaxEvents int
	// WebhookID is meta.webhook_id of format pipedrive (the id, in
	// decimal).
	WebhookID string
}

// Destination returns the subscriber as a destination configuration, for
// emit.NewDestination (which should be given the Guard's Transport).
func (s Subscriber) Destination() config.Destination {
	d := config.Destination{
		Name:        s.Name,
		URL:         s.URL,
		Events:      slices.Clone(s.Events),
		Format:      s.Format,
		Timeout:     config.Duration(s.Timeout),
		Batch:       config.Batch{MaxEvents: s.MaxEvents},
		Ordering:    config.OrderingUnordered,
		MaxInFlight: config.DefaultMaxInFlight,
	}
	if s.BasicAuth != nil {
		ba := *s.BasicAuth
		d.BasicAuth = &ba
	}
	for _, w := range s.RetrySchedule {
		d.Retry.Schedule = append(d.Retry.Schedule, config.Duration(w))
	}
	return d
}

// Subscribers returns the subscriptions that receive events now: Keap
// hooks whose status is Verified and Pipedrive webhooks that are active,
// in the order they were made.
func (a *API) Subscribers(ctx context.Context) ([]Subscriber, error) {
	subs, err := a.store.Subscriptions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list subscribers: %w", err)
	}
	var out []Subscriber
	for _, s := range subs {
		if s.Status != cursor.SubscriptionVerified {
			continue
		}
		sub := Subscriber{
			Name: NamePrefix + s.Key, Key: s.Key, ID: s.ID, URL: s.URL,
			WebhookID: strconv.FormatInt(s.ID, 10),
		}
		switch s.Dialect {
		case DialectPipedrive:
			sub.Events = pipedriveGlobs(s.EventAction, s.EventObject)
			sub.Format = emit.FormatPipedrive
			sub.RetrySchedule = slices.Clone(PipedriveRetrySchedule)
			sub.Timeout = PipedriveTimeout
			sub.MaxEvents = 1
		default:
			sub.Events = []string{s.EventKey}
			sub.Format = config.FormatKeap
			sub.RetrySchedule = slices.Clone(KeapRetrySchedule)
			sub.Timeout = KeapTimeout
			sub.MaxEvents = emit.KeapMaxKeys
		}
		if len(sub.Events) == 0 {
			continue
		}
		if s.HTTPUser != "" || s.HTTPPassword != "" {
			sub.BasicAuth = &config.BasicAuth{Username: s.HTTPUser, Password: config.Secret(s.HTTPPassword)}
		}
		out = append(out, sub)
	}
	return out, nil
}

// Deactivate is called by the delivery engine when subscriber name
// answered 410 Gone (Keap hooks only: for a Pipedrive webhook a 410 is a
// failure like any other) or an event's last attempt failed. A Keap hook
// becomes Inactive at once (Keap's rule); POST /hooks/{key}/verify
// reactivates it. A Pipedrive webhook follows Pipedrive's rule instead:
// it is deactivated (is_active 0, with remove_time and remove_reason, and
// still listed) only when it has had no successful delivery for
// PipedriveRemoveAfter (3 days) — since it was made or last changed —
// and is otherwise left active. Deactivating an inactive subscription
// does nothing.
func (a *API) Deactivate(ctx context.Context, name string, reason string) error {
	key, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return fmt.Errorf("deactivate subscriber %s: not a subscription (want %s<key>)", name, NamePrefix)
	}
	sub, err := a.store.Subscription(ctx, key)
	if err != nil {
		return fmt.Errorf("deactivate subscriber %s: %w", name, err)
	}
	now := a.now()
	if sub.Dialect == DialectPipedrive {
		d, err := a.store.DeliverySummary(ctx, name)
		if err != nil {
			return fmt.Errorf("deactivate subscriber %s: %w", name, err)
		}
		since := sub.UpdatedAt
		if d.LastSuccess.After(since) {
			since = d.LastSuccess
		}
		if now.Sub(since) < PipedriveRemoveAfter {
			a.log.Info("pipedrive webhook failing but kept active: it had a successful delivery or a change within 3 days",
				"subscription", key, "since", since, "reason", reason)
			return nil
		}
	}
	changed := false
	_, err = a.store.UpdateSubscription(ctx, key, func(s *cursor.Subscription) error {
		if s.Status == cursor.SubscriptionInactive {
			return nil
		}
		changed = true
		s.Status, s.InactiveAt, s.InactiveReason = cursor.SubscriptionInactive, now, reason
		s.Secret = "" // a delayed verification of an earlier handshake cannot reactivate it
		s.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("deactivate subscriber %s: %w", name, err)
	}
	if changed {
		a.log.Warn("subscription deactivated: it receives nothing until it is verified again",
			"subscription", key, "dialect", sub.Dialect, "url", redact.URL(sub.URL), "reason", reason)
		a.changed()
	}
	return nil
}

// activated is called when subscription key starts receiving events (made
// active, verified, reactivated) at at: its destination is created now, in
// the store, so that whichever process delivers to it — this one, or
// another replica that learns of it later — sends what is detected from
// this moment, and it is enabled again if a 410 had disabled it. A
// failure is logged; the process that delivers creates it then.
func (a *API) activated(ctx context.Context, key string, at time.Time) {
	name := NamePrefix + key
	if _, err := a.store.EnsureDestination(ctx, name, at); err != nil {
		a.log.Error("start subscriber's deliveries", "subscription", key, "error", err)
		return
	}
	if err := a.store.EnableDestination(ctx, name); err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
		a.log.Error("enable subscriber", "subscription", key, "error", err)
	}
}

func (a *API) changed() {
	if a.onChange != nil {
		a.onChange()
	}
}

// Handler returns the HTTP handler of the API. It serves /hooks,
// /hooks/… (Keap) and /v1/webhooks, /v1/webhooks/… (Pipedrive), and
// answers 404 elsewhere; mount it at those four patterns, or at "/".
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/hooks" || strings.HasPrefix(path, "/hooks/"):
		a.serveKeap(w, r, strings.Trim(strings.TrimPrefix(path, "/hooks"), "/"))
	case path == "/v1/webhooks" || strings.HasPrefix(path, "/v1/webhooks/"):
		a.servePipedrive(w, r, strings.Trim(strings.TrimPrefix(path, "/v1/webhooks"), "/"))
	default:
		keapError(w, http.StatusNotFound, "no such route: the hooks API serves /hooks and /v1/webhooks")
	}
}

// disabledMessage is the answer of every route while the API is off.
const disabledMessage = "the REST Hooks API is disabled: set http.token in pollhook's configuration to enable it"

// authorized reports whether r carries the token: as a bearer token, or
// as a header or query parameter the dialect's own clients send
// (extra).
func (a *API) authorized(r *http.Request, extra ...string) bool {
	var got []string
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		got = append(got, strings.TrimSpace(tok))
	}
	for _, e := range extra {
		if name, ok := strings.CutPrefix(e, "?"); ok {
			got = append(got, r.URL.Query().Get(name))
		} else {
			got = append(got, r.Header.Get(e))
		}
	}
	for _, g := range got {
		if g == "" {
			continue
		}
		sum := sha256.Sum256([]byte(g))
		if subtle.ConstantTimeCompare(sum[:], a.token) == 1 {
			return true
		}
	}
	return false
}

// hookURL is a subscriber's URL as the API shows it: without user
// information and with every query value hidden (redact.URL), since a
// hookUrl often carries a credential (https://user:pw@…, ?token=…) and
// any holder of the API token may list the subscriptions. Deliveries go
// to the URL as registered.
func hookURL(u string) string { return redact.URL(u) }

// decodeLimit wraps r's body so that reading more than MaxRequestBytes
// fails.
func decodeLimit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
}

// decodeJSON decodes the one JSON value of r's body into v. Anything but
// white space after it is an error: a body with trailing garbage is
// refused whole rather than read in part.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return err
	}
	off := dec.InputOffset()
	rest, err := io.ReadAll(io.MultiReader(dec.Buffered(), r.Body))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return fmt.Errorf("data after the JSON value at byte %d: send one JSON object", off)
	}
	return nil
}

// bodyError says what is wrong with a request body that failed to read or
// decode, and the status to answer.
func bodyError(err error, want string) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes)
	}
	if errors.Is(err, io.EOF) {
		return http.StatusBadRequest, "empty request body: want " + want
	}
	return http.StatusBadRequest, fmt.Sprintf("request body: want %s (%v)", want, err)
}

// newKey returns a random subscription key (26 base32 characters: 128
// bits).
func newKey() string { return rand.Text() }

// newSecret returns a random handshake secret (64 hex digits: 256 bits).
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// handshake runs the verification handshake against hookURL: a POST with
// X-Hook-Secret, which succeeds when the subscriber answers 200 and echoes
// the header. detail says why it failed.
func (a *API) handshake(ctx context.Context, hookURL, secret string) (ok bool, detail string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hookURL, http.NoBody)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set(HeaderHookSecret, secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", emit.UserAgent)
	resp, err := a.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold credentials
		}
		return false, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("answered %s, want 200 OK", resp.Status)
	}
	echo := resp.Header.Get(HeaderHookSecret)
	if echo == "" {
		return false, "answered 200 without the X-Hook-Secret header"
	}
	if subtle.ConstantTimeCompare([]byte(echo), []byte(secret)) != 1 {
		return false, "answered 200 with an X-Hook-Secret header that differs from the one sent"
	}
	return true, ""
}

// errStale is returned by a change whose subscription changed meanwhile.
var errStale = errors.New("subscription changed meanwhile")

// verify stores a new secret for sub, runs the handshake, and records its
// outcome: Verified, or Unverified (awaiting a delayed verification with
// that secret). It returns the subscription as it then is.
func (a *API) verify(ctx context.Context, key string) (cursor.Subscription, error) {
	secret := newSecret()
	sub, err := a.store.UpdateSubscription(ctx, key, func(s *cursor.Subscription) error {
		s.Secret = secret
		return nil
	})
	if err != nil {
		return cursor.Subscription{}, err
	}
	hctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	ok, detail := a.handshake(hctx, sub.URL, secret)
	cancel()
	now := a.now()
	out, err := a.store.UpdateSubscription(ctx, key, func(s *cursor.Subscription) error {
		if s.Secret != secret || s.URL != sub.URL {
			return errStale
		}
		s.UpdatedAt = now
		if ok {
			s.Status, s.InactiveAt, s.InactiveReason = cursor.SubscriptionVerified, time.Time{}, ""
		} else {
			s.Status = cursor.SubscriptionUnverified
		}
		return nil
	})
	if errors.Is(err, errStale) {
		return a.store.Subscription(ctx, key)
	}
	if err != nil {
		return cursor.Subscription{}, err
	}
	if ok {
		a.activated(ctx, key, now)
		a.log.Info("subscription verified", "subscription", key, "url", redact.URL(sub.URL))
	} else {
		a.log.Info("subscription verification handshake failed: it stays Unverified until verified again or through delayedVerify",
			"subscription", key, "url", redact.URL(sub.URL), "error", detail)
	}
	a.changed()
	return out, nil
}

// pipedriveVerbs are the pollhook verbs (both namings) of a Pipedrive
// event_action; nil for "*" and for an action pollhook does not know.
func pipedriveVerbs(action string) []string {
	switch action {
	case "added", "create":
		return []string{config.VerbCreated, "add"}
	case "updated", "change":
		return []string{config.VerbUpdated, "edit"}
	case "deleted", "delete":
		return []string{config.VerbDeleted, "delete"}
	}
	return nil
}

// pipedriveGlobs returns the event globs of a Pipedrive event_action and
// event_object: object.verb for each verb the action means ("*" for any
// object or action).
func pipedriveGlobs(action, object string) []string {
	if object == "" {
		return nil
	}
	if action == "*" {
		return []string{object + ".*"}
	}
	var out []string
	for _, v := range pipedriveVerbs(action) {
		out = append(out, object+"."+v)
	}
	return out
}

// storeError answers a failure of the store, which the client cannot fix.
func (a *API) storeError(err error) string {
	a.log.Error("hooks api: state store failed", "error", err)
	return "pollhook's state store failed; see its log"
}
