// Package config owns pollhook's YAML configuration: the schema, its
// defaults, ${ENV} expansion, strict decoding and validation with errors that
// name the file, line and key. It reads the config file and does no other I/O.
//
// Load returns a *Config whose every field is defaulted and validated, with
// the parsed forms (date formats, time zones, URL templates, schedules)
// filled in next to the text they came from, so that the packages that use
// a Config never parse it again. A file with mistakes yields Errors: every
// mistake of the file, ordered by line, each with the key path (list items
// named by their name: resources[contacts].lookback), the bad value and
// what would be valid. No error ever shows the value of a secret.
//
// # Decoding
//
// Keys are strict: an unknown or misspelt key is an error (with a "did you
// mean" when one is close). Top-level keys starting with x- are ignored, as
// a place for YAML anchors; merge keys (<<: *anchor) work anywhere. A key
// left out, or given no value, keeps its default; a value written is
// validated as written (max_in_flight: 0 is an error, not the default).
//
// # Environment variables
//
// Values (not keys) may hold variables, expanded after the YAML is parsed,
// so that a value with YAML syntax in it (a password holding ": " or "#")
// is taken as it is:
//
//	${NAME}           the variable NAME; an error names it when it is unset
//	${NAME:-default}  NAME, or default when NAME is unset or empty
//	$${               a literal ${
//
// NAME is a letter or _ followed by letters, digits and _; $NAME without
// braces is not expanded, and expanded text is not expanded again. A value
// that expands to nothing counts as left out, so its default applies. The
// URL placeholders ${gmtDate:…}, ${date:…}, ${epoch} and ${epoch_ms}, and
// ${id} in an item_url, are not variables. Inside YAML's { } and [ ], a value holding ${…} must be
// quoted: auth: { type: bearer, token: "${TOKEN}" }.
package config

import (
	"time"

	"github.com/pollhook/pollhook/config/datefmt"
)

// Defaults. Each is applied where the YAML leaves the key out.
const (
	// DefaultStatePath is the SQLite file used when state.path is empty.
	DefaultStatePath = "pollhook.db"
	// DefaultTimeout bounds one HTTP request to a source or a destination.
	DefaultTimeout = 30 * time.Second
	// DefaultSchedule is how often a resource is polled when schedule is empty.
	DefaultSchedule = "5m"
	// DefaultItems is the jq expression for the records of a page: the body
	// itself is the array.
	DefaultItems = "."
	// DefaultIDField is the field that identifies a record.
	DefaultIDField = "id"
	// DefaultLookback is how far behind the watermark each poll re-reads.
	DefaultLookback = time.Minute
	// DefaultCreatedTolerance is how close a record's created and updated
	// dates must be for a never-seen record to count as created.
	DefaultCreatedTolerance = time.Second
	// DefaultDeleteGuard is the share of known ids that one snapshot cycle
	// may delete before its deletes are held back.
	DefaultDeleteGuard = 0.5
	// DefaultMaxPages stops a cycle that pages on without end.
	DefaultMaxPages = 10000
	// DefaultPageLimit is the page size sent by offset and page pagination.
	DefaultPageLimit = 100
	// DefaultMaxBodyBytes caps one upstream response body.
	DefaultMaxBodyBytes = 64 << 20
	// DefaultFetchAttempts is how many times one page request is tried
	// within a cycle (429, 5xx, timeouts) before the cycle fails.
	DefaultFetchAttempts = 4
	// DefaultFetchMaxWait caps one wait between fetch attempts, including a
	// wait asked for by Retry-After.
	DefaultFetchMaxWait = time.Minute
	// DefaultFormat is the event body format of a destination.
	DefaultFormat = "pollhook"
	// DefaultMaxEvents is how many events a destination gets in one request.
	DefaultMaxEvents = 1
	// DefaultOrdering lets a destination's events be delivered in any order.
	DefaultOrdering = "unordered"
	// DefaultMaxInFlight is how many requests a destination has open at once.
	DefaultMaxInFlight = 4
)

// DefaultRetrySchedule is the wait before each retry of a failed delivery
// (each waited ±10%): after the last, the event is dead.
var DefaultRetrySchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute,
	2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// Config is a whole pollhook configuration.
type Config struct {
	State        State         `yaml:"state"`
	HTTP         HTTP          `yaml:"http"`
	Sources      []Source      `yaml:"sources"`
	Resources    []Resource    `yaml:"resources"`
	Destinations []Destination `yaml:"destinations"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`
}

// setDefaults fills in what an empty file means: the state in
// DefaultStatePath, no listener.
func (c *Config) setDefaults() {
	c.State.Lease = Duration(DefaultLease)
	c.State.Retention = Retention{Delivered: Duration(DefaultDeliveredRetention), Dead: Duration(DefaultDeadRetention)}
}

// Retention defaults.
const (
	// DefaultDeliveredRetention is how long delivered deliveries and their
	// attempts stay in the delivery log.
	DefaultDeliveredRetention = 7 * 24 * time.Hour
	// DefaultDeadRetention is how long dead deliveries and their attempts
	// stay in the delivery log (and can be replayed).
	DefaultDeadRetention = 30 * 24 * time.Hour
)

// State says where pollhook keeps its cursors and outbox: a SQLite file
// (Path, the embedded default) or a PostgreSQL database (DSN), which
// several pollhook replicas share.
type State struct {
	// Path is the SQLite file; DefaultStatePath when empty and DSN is not
	// set.
	Path string `yaml:"path"`
	// DSN is a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=disable,
	// or key=value pairs); set, it replaces Path. It may hold a password,
	// so it never prints.
	DSN Secret `yaml:"dsn"`
	// Lease is how long a process holds a resource or a destination
	// without renewing it: a replica that stops (or is cut off) has its
	// work taken over after at most this long. Renewed every third of it.
	// It takes effect at start, not at a reload.
	Lease Duration `yaml:"lease"`
	// Retention says how long finished deliveries are kept. Outbox events
	// go with the last delivery that needs them.
	Retention Retention `yaml:"retention"`
}

// DefaultLease is how long a lease lasts unless renewed.
const DefaultLease = 15 * time.Second

// MinLease is the shortest lease: it is renewed every third of it, and
// each renewal is a write to the state store.
const MinLease = 2 * time.Second

// Retention is how long the delivery log keeps finished deliveries.
type Retention struct {
	Delivered Duration `yaml:"delivered"`
	Dead      Duration `yaml:"dead"`
}

// HTTP configures pollhook's own HTTP listener (health, metrics, hooks API).
// An empty Listen means no listener.
type HTTP struct {
	Listen string `yaml:"listen"`
	// Token is the bearer token of the management API; empty turns that
	// API off (it is never open without a token).
	Token Secret `yaml:"token"`
	// AllowTargets lists CIDRs that subscription URLs may reach although
	// they are loopback or private.
	AllowTargets []string `yaml:"allow_targets"`
}

// Source is an upstream API: where it is and how to talk to it.
type Source struct {
	Name      string            `yaml:"name"`
	BaseURL   string            `yaml:"base_url"`
	Auth      Auth              `yaml:"auth"`
	Headers   map[string]string `yaml:"headers"`
	Timeout   Duration          `yaml:"timeout"`
	RateLimit *RateLimit        `yaml:"rate_limit"`
	// Retry bounds the retries of one page request inside a cycle.
	Retry FetchRetry `yaml:"retry"`
	// MaxBodyBytes caps one response body; a larger body fails the cycle.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
}

// setDefaults fills in what a source that gives only name and base_url
// means: no auth, DefaultTimeout, DefaultFetchAttempts tries of a page at
// most DefaultFetchMaxWait apart, bodies up to DefaultMaxBodyBytes, and no
// rate limit. A rate_limit without burst gets a burst of per_second
// rounded up (at least 1).
func (s *Source) setDefaults() {
	s.Auth.Type = AuthNone
	s.Timeout = Duration(DefaultTimeout)
	s.Retry = FetchRetry{Attempts: DefaultFetchAttempts, MaxWait: Duration(DefaultFetchMaxWait)}
	s.MaxBodyBytes = DefaultMaxBodyBytes
}

// Auth types.
const (
	AuthNone   = "none"
	AuthBearer = "bearer"
	AuthBasic  = "basic"
	AuthHeader = "header"
	AuthQuery  = "query"
	AuthOAuth2 = "oauth2"
)

// Auth is how requests to a source are authenticated. Which fields apply
// depends on Type:
//
//	none                  nothing
//	bearer                token
//	basic                 username, password
//	header                name (the header), value
//	query                 name (the query parameter), value
//	oauth2                token_url, client_id, client_secret, scopes
//	                      (the client-credentials grant)
type Auth struct {
	Type         string   `yaml:"type"`
	Token        Secret   `yaml:"token"`
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	Name         string   `yaml:"name"`
	Value        Secret   `yaml:"value"`
	TokenURL     string   `yaml:"token_url"`
	ClientID     string   `yaml:"client_id"`
	ClientSecret Secret   `yaml:"client_secret"`
	Scopes       []string `yaml:"scopes"`
}

// RateLimit is a token bucket over a source's requests.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

// FetchRetry bounds the retries of a page request within one cycle.
type FetchRetry struct {
	// Attempts is the number of tries, the first included.
	Attempts int `yaml:"attempts"`
	// MaxWait caps one wait, Retry-After included.
	MaxWait Duration `yaml:"max_wait"`
}

// Delete detection modes.
const (
	DeletesNone     = "none"
	DeletesSnapshot = "snapshot"
)

// Start modes; any other value is an RFC 3339 time.
const (
	StartNow       = "now"
	StartBeginning = "beginning"
)

// Resource is one collection of records polled from a source.
type Resource struct {
	Name   string `yaml:"name"`
	Source string `yaml:"source"`
	// Object is the noun of the resource's events: contact.created.
	Object string `yaml:"object"`
	// URL is resolved against the source's base_url; it may hold
	// ${gmtDate:FMT}, ${date:FMT}, ${epoch} and ${epoch_ms}.
	URL      string   `yaml:"url"`
	Schedule Schedule `yaml:"schedule"`
	// Items is a jq expression giving the array of records in a page.
	Items string `yaml:"items"`
	// Filter is a jq expression run on each record: a record is kept when
	// it gives true; the rest are ignored (no events, and in snapshot mode
	// they count as absent). Paging counts records before the filter.
	Filter string `yaml:"filter"`
	// IDField is a dotted path or a jq expression giving a record's id.
	IDField string `yaml:"id_field"`
	Dates   Dates  `yaml:"dates"`
	// Transform is a jq program run on each record after its id and dates
	// are read: its one output is the record from then on, hashed, kept
	// and emitted. A record it fails on is skipped and reported.
	Transform string `yaml:"transform"`
	// IgnoreFields are paths (dotted, or jq path expressions) of fields
	// whose changes are no change: a record that changed only there
	// produces no event. The updated date field is then not compared
	// either.
	IgnoreFields []string `yaml:"ignore_fields"`
	// WatchFields are the converse of IgnoreFields: only changes in these
	// fields count. At most one of the two may be set.
	WatchFields []string `yaml:"watch_fields"`
	// KeepContent keeps each record's last content in the state, so that
	// events carry the record's previous version and changed fields.
	KeepContent bool `yaml:"keep_content"`

	Pagination Pagination `yaml:"pagination"`
	Deletes    string     `yaml:"deletes"`
	// ItemURL is the URL of one record, ${id} where its id goes (resolved
	// as URL is). With deletes: snapshot, a record missing from a
	// complete listing is looked up there: gone (404, 410) confirms the
	// delete at once; found, the record exists and is diffed. Without it,
	// a delete is confirmed by a second complete listing that misses the
	// record too.
	ItemURL string `yaml:"item_url"`
	// ItemRecord is a jq expression or dotted path giving the record in
	// an item_url body; "." (the body itself) when empty.
	ItemRecord string `yaml:"item_record"`
	// DeleteGuard is the largest share of known ids (0 to 1) that one
	// snapshot cycle may delete; more is held back and reported.
	DeleteGuard      *float64 `yaml:"delete_guard"`
	Lookback         Duration `yaml:"lookback"`
	CreatedTolerance Duration `yaml:"created_tolerance"`
	// Start is now, beginning or an RFC 3339 time.
	Start string `yaml:"start"`
	// EventNames is "pollhook" (created/updated/deleted) or "keap"
	// (add/edit/delete).
	EventNames string `yaml:"event_names"`

	// Parsed forms, filled in by Load.

	// Template is URL, parsed.
	Template *Template `yaml:"-"`
	// ItemTemplate is ItemURL, parsed; nil without one.
	ItemTemplate *ItemTemplate `yaml:"-"`
	// StartTime is Start when it is a time.
	StartTime time.Time `yaml:"-"`
}

// PositionalPageTypes are the pagination types whose pages are told by
// position (a page number, or a next link that usually carries a page
// number or an offset), with no overlap to check a walk against: a record
// deleted or moved ahead of the walk shifts the later ones, and one of
// them can be missed. With deletes: snapshot they need item_url.
var PositionalPageTypes = []string{PagePage, PageNextURL, PageLinkHeader}

// setDefaults fills in what a resource that gives only name, source,
// object and url means: polled every DefaultSchedule, the body is the array
// of records (DefaultItems) identified by DefaultIDField, one request per
// cycle (pagination none; offset and page paging send DefaultPageLimit
// records a page unless limit is set), no delete detection, DefaultLookback,
// DefaultCreatedTolerance, start now, events named
// object.created/updated/deleted, no transform, every field compared, and
// each record's last content kept. Dates without a timezone are read in
// GMT.
func (r *Resource) setDefaults() {
	r.Schedule = Schedule{Spec: DefaultSchedule, Every: mustDuration(DefaultSchedule)}
	r.Items = DefaultItems
	r.IDField = DefaultIDField
	firstPage := 1
	r.Pagination = Pagination{
		Type:        PageNone,
		LimitParam:  "limit",
		OffsetParam: "offset",
		PageParam:   "page",
		FirstPage:   &firstPage,
		CursorParam: "cursor",
		MaxPages:    DefaultMaxPages,
	}
	r.Deletes = DeletesNone
	guard := DefaultDeleteGuard
	r.DeleteGuard = &guard
	r.Lookback = Duration(DefaultLookback)
	r.CreatedTolerance = Duration(DefaultCreatedTolerance)
	r.Start = StartNow
	r.EventNames = EventNamesPollhook
	r.KeepContent = true
}

func mustDuration(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return d
}

// Event naming schemes of a resource.
const (
	// EventNamesPollhook names events object.created, object.updated and
	// object.deleted.
	EventNamesPollhook = "pollhook"
	// EventNamesKeap names events as Keap's REST Hooks do: object.add,
	// object.edit and object.delete.
	EventNamesKeap = "keap"
)

// Dates says where a resource's records keep their updated and created
// dates and how they are written: the Cloud Elements datesConfiguration.
// A field needs its format and a format its field; a date without a
// timezone is read in GMT (and the timezone is set to "GMT").
type Dates struct {
	UpdatedField    string `yaml:"updated_field"`
	UpdatedFormat   string `yaml:"updated_format"`
	UpdatedTimezone string `yaml:"updated_timezone"`
	CreatedField    string `yaml:"created_field"`
	CreatedFormat   string `yaml:"created_format"`
	CreatedTimezone string `yaml:"created_timezone"`

	// Parsed forms, filled in by Load (nil where the field is unset).
	Updated *DateField `yaml:"-"`
	Created *DateField `yaml:"-"`
}

// DateField is one date of a record: where it is, how it is written and in
// which zone it is read when the value holds none.
type DateField struct {
	Field    string
	Format   *datefmt.Format
	Location *time.Location
}

// Pagination types.
const (
	PageNone       = "none"
	PageOffset     = "offset"
	PagePage       = "page"
	PageCursor     = "cursor"
	PageNextURL    = "next_url"
	PageLinkHeader = "link_header"
)

// Pagination says how to get from one page to the next.
//
//	none         one request is the whole cycle
//	offset       ?<offset_param>=0,limit,2*limit… &<limit_param>=limit
//	page         ?<page_param>=first_page,first_page+1… &<limit_param>=limit
//	cursor       ?<cursor_param>=<value of next_cursor in the last body>
//	next_url     GET <value of next_url in the last body>
//	link_header  GET the rel="next" URL of the Link header
//
// Offset and page paging stop at a page with fewer than limit records; the
// others stop when the next cursor or URL is absent or empty; all stop at an
// empty page. The same next cursor or URL twice fails the cycle.
type Pagination struct {
	Type        string `yaml:"type"`
	Limit       int    `yaml:"limit"`
	LimitParam  string `yaml:"limit_param"`
	OffsetParam string `yaml:"offset_param"`
	PageParam   string `yaml:"page_param"`
	FirstPage   *int   `yaml:"first_page"`
	CursorParam string `yaml:"cursor_param"`
	// NextCursor is a jq expression giving the next cursor from a body.
	NextCursor string `yaml:"next_cursor"`
	// NextURL is a jq expression giving the next page's URL from a body.
	NextURL  string `yaml:"next_url"`
	MaxPages int    `yaml:"max_pages"`
}

// Body formats of a destination.
const (
	FormatPollhook      = "pollhook"
	FormatCloudEvents   = "cloudevents"
	FormatKeap          = "keap"
	FormatCloudElements = "cloud-elements"
)

// Ordering modes of a destination.
const (
	OrderingUnordered = "unordered"
	OrderingOrdered   = "ordered"
)

// Destination is a place events are delivered to: an http(s) URL,
// "stdout", a file:///path of JSON lines, or NATS servers
// (nats://host:port, several separated by commas) whose JetStream stream
// captures Subject.
type Destination struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Subject is a NATS destination's subject template (see Subject),
	// such as pollhook.{resource}.{type}; required for NATS, refused for
	// the other kinds.
	Subject string `yaml:"subject"`
	// Stream names the JetStream stream a NATS destination publishes to:
	// created when missing (capturing the subject template with its
	// placeholders as wildcards), used as it is when present. Empty: any
	// stream that captures the subjects.
	Stream string `yaml:"stream"`
	// NATS holds a NATS destination's credentials.
	NATS NATS `yaml:"nats"`
	// Events are globs over noun.verb: contact.*, *.deleted, *.*.
	Events    []string          `yaml:"events"`
	Format    string            `yaml:"format"`
	Secret    Secret            `yaml:"secret"`
	Headers   map[string]string `yaml:"headers"`
	BasicAuth *BasicAuth        `yaml:"basic_auth"`
	Timeout   Duration          `yaml:"timeout"`
	TLS       TLS               `yaml:"tls"`
	Batch     Batch             `yaml:"batch"`
	Retry     Retry             `yaml:"retry"`
	Ordering  string            `yaml:"ordering"`
	// MaxInFlight is how many requests to this destination are open at once.
	MaxInFlight int `yaml:"max_in_flight"`
	// Filter is a jq program run on each event, as the pollhook format
	// writes it (.type, .data, .previous, .changed_fields …), whose events
	// match: the event is delivered when its first output is neither false
	// nor null. Empty delivers every event that matches.
	Filter string `yaml:"filter"`
}

// setDefaults fills in what a destination that gives only name and url
// means: every event ("*.*") in DefaultFormat, unsigned, one event a
// request (DefaultMaxEvents), DefaultTimeout, retried on
// DefaultRetrySchedule, DefaultOrdering, DefaultMaxInFlight requests open.
func (d *Destination) setDefaults() {
	d.Events = []string{"*.*"}
	d.Format = DefaultFormat
	d.Timeout = Duration(DefaultTimeout)
	d.Batch.MaxEvents = DefaultMaxEvents
	d.Retry.Schedule = make([]Duration, len(DefaultRetrySchedule))
	for i, w := range DefaultRetrySchedule {
		d.Retry.Schedule[i] = Duration(w)
	}
	d.Ordering = DefaultOrdering
	d.MaxInFlight = DefaultMaxInFlight
}

// BasicAuth is HTTP basic authentication sent to a destination.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// TLS tunes a destination's TLS client (http(s) and NATS). Files are
// read when the destination starts; a relative path is taken from the
// working directory.
type TLS struct {
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CAFile is a PEM file of the certificates that verify the server,
	// instead of the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, sent
	// to a server that asks for one; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Batch groups events into one request.
type Batch struct {
	MaxEvents int      `yaml:"max_events"`
	MaxWait   Duration `yaml:"max_wait"`
}

// Retry is a destination's retry schedule.
type Retry struct {
	Schedule []Duration `yaml:"schedule"`
}
