package config

import (
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/pollhook/pollhook/config/datefmt"
	"github.com/pollhook/pollhook/internal/redact"
)

// validator checks a decoded config, fills in the defaults that depend on
// other keys and the parsed forms, and adds a problem for every rule broken.
// No message ever holds the value of a Secret or of a header.
type validator struct {
	d *decoder
	c *Config
}

// errf adds a problem at p, unless p has one already or is the key that
// an unknown key probably meant.
func (v *validator) errf(p keyPath, format string, args ...any) {
	if k := p.String(); v.d.bad[k] || v.d.meant[k] {
		return
	}
	v.d.addf(max(v.d.line(p), 1), p, format, args...)
}

// has reports whether key k under p was written in the file.
func (v *validator) has(p keyPath, k string) bool { return v.d.has(p.field(k)) }

func (v *validator) validate() {
	c := v.c
	v.local()

	v.names("sources", len(c.Sources), func(i int) string { return c.Sources[i].Name })
	v.names("resources", len(c.Resources), func(i int) string { return c.Resources[i].Name })
	v.names("destinations", len(c.Destinations), func(i int) string { return c.Destinations[i].Name })
	if len(c.Sources) == 0 {
		v.errf(keyPath{{key: "sources"}}, "at least one source is required, such as\n  sources:\n    - name: api\n      base_url: https://api.example.com")
	}
	if len(c.Resources) == 0 {
		v.errf(keyPath{{key: "resources"}}, "at least one resource is required, such as\n  resources:\n    - name: items\n      source: api\n      object: item\n      url: /items")
	}
	for i := range c.Sources {
		v.source(keyPath{{key: "sources"}}.index(i), &c.Sources[i])
	}
	for i := range c.Resources {
		v.resource(keyPath{{key: "resources"}}.index(i), &c.Resources[i])
	}
	// The events a destination may ask for are those some resource can
	// emit; a delete needs deletes: snapshot. unemitted are the deletes of
	// the other resources, for the hint.
	var types, unemitted []string
	for _, r := range c.Resources {
		if !objectRE.MatchString(r.Object) {
			continue
		}
		for _, t := range r.EventTypes() {
			switch {
			case slices.Contains(r.PossibleEventTypes(), t):
				if !slices.Contains(types, t) {
					types = append(types, t)
				}
			case !slices.Contains(unemitted, t):
				unemitted = append(unemitted, t)
			}
		}
	}
	unemitted = slices.DeleteFunc(unemitted, func(t string) bool { return slices.Contains(types, t) })
	for i := range c.Destinations {
		v.destination(keyPath{{key: "destinations"}}.index(i), &c.Destinations[i], types, unemitted)
	}
	v.sharedStreams(types)
}

// local checks the state: block and the http: block, all that
// ParseLocal reads.
func (v *validator) local() {
	v.state(keyPath{{key: "state"}})
	v.httpBlock(keyPath{{key: "http"}})
}

// names checks the names of the items of a top-level list.
func (v *validator) names(list string, n int, name func(int) string) {
	first := map[string]int{}
	for i := range n {
		p := keyPath{{key: list}}.index(i).field("name")
		s := name(i)
		switch {
		case s == "":
			v.errf(p, "name is required")
		case !validName(s):
			v.errf(p, "want a name of letters, digits, _, . and - (got %q)", s)
		default:
			if j, ok := first[s]; ok {
				v.errf(p, "name %q is already used by %s[%d] at line %d; names must be unique", s, list, j, v.d.line(keyPath{{key: list}}.index(j)))
				continue
			}
			first[s] = i
		}
	}
}

// state checks where the state is kept: a SQLite path or a PostgreSQL
// DSN, not both.
func (v *validator) state(p keyPath) {
	st := &v.c.State
	switch {
	case st.DSN != "" && st.Path != "":
		v.errf(p.field("dsn"), "state.path and state.dsn are both set: keep path for SQLite, or dsn for PostgreSQL")
	case st.DSN != "":
		if msg := checkDSN(string(st.DSN)); msg != "" {
			v.errf(p.field("dsn"), "%s", msg)
		}
	case st.Path == "":
		st.Path = DefaultStatePath
	}
	if v.has(p, "lease") && st.Lease.D() < MinLease {
		v.errf(p.field("lease"), "want at least %s: a lease is renewed every third of it (got %s)", MinLease, st.Lease.D())
	}
}

// checkDSN says what is wrong with the form of a PostgreSQL connection
// string, without quoting it (it may hold a password); "" when nothing.
// Whether the server answers is found out when pollhook connects.
func checkDSN(dsn string) string {
	const want = "want a PostgreSQL connection string such as postgres://pollhook@db:5432/pollhook?sslmode=disable, or host=db dbname=pollhook user=pollhook"
	if !strings.Contains(dsn, "://") {
		for _, f := range strings.Fields(dsn) {
			k, _, ok := strings.Cut(f, "=")
			if !ok || k == "" {
				return want + fmt.Sprintf(" (got a word %q that is not key=value)", clipWord(k))
			}
		}
		if strings.TrimSpace(dsn) == "" {
			return want
		}
		return ""
	}
	u, err := url.Parse(dsn)
	switch {
	case err != nil:
		return want + " (the URL does not parse)"
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return want + fmt.Sprintf(" (got scheme %q)", u.Scheme)
	case u.Host == "" && u.Query().Get("host") == "":
		return want + " (no host)"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return want + fmt.Sprintf(" (port %q)", p)
		}
	}
	return ""
}

// clipWord shortens a word for a message.
func clipWord(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func (v *validator) httpBlock(p keyPath) {
	h := &v.c.HTTP
	if v.has(p, "listen") {
		host, port, err := net.SplitHostPort(h.Listen)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
			v.errf(p.field("listen"), "want host:port such as 127.0.0.1:8080 or :8080 (got %q)", h.Listen)
		}
	}
	for i, t := range h.AllowTargets {
		if _, err := netip.ParsePrefix(t); err != nil {
			v.errf(p.field("allow_targets").index(i), "want a CIDR such as 10.0.0.0/8 or 192.168.1.5/32 (got %q)", t)
		}
	}
}

var authTypes = []string{AuthNone, AuthBearer, AuthBasic, AuthHeader, AuthQuery, AuthOAuth2}

// authFields lists, for each auth type, the keys it uses; the first
// `required` of them must be set.
var authFields = map[string]struct {
	keys     []string
	required int
}{
	AuthNone:   {nil, 0},
	AuthBearer: {[]string{"token"}, 1},
	AuthBasic:  {[]string{"username", "password"}, 1},
	AuthHeader: {[]string{"name", "value"}, 2},
	AuthQuery:  {[]string{"name", "value"}, 2},
	AuthOAuth2: {[]string{"token_url", "client_id", "client_secret", "scopes"}, 3},
}

// authUsers says which auth types use a key, for hints.
var authUsers = map[string]string{
	"token": "bearer", "username": "basic", "password": "basic",
	"name": "header or query", "value": "header or query",
	"token_url": "oauth2", "client_id": "oauth2", "client_secret": "oauth2", "scopes": "oauth2",
}

func (v *validator) source(p keyPath, s *Source) {
	v.httpURL(p.field("base_url"), s.BaseURL, "base_url", "https://api.example.com/v1")
	v.auth(p.field("auth"), &s.Auth)
	v.headers(p.field("headers"), s.Headers)
	if s.Timeout <= 0 {
		v.errf(p.field("timeout"), "want a duration above 0, such as 30s (got %s)", s.Timeout.D())
	}
	if rl := s.RateLimit; rl != nil {
		rp := p.field("rate_limit")
		if rl.PerSecond <= 0 {
			v.errf(rp.field("per_second"), "want requests per second above 0, such as 5 or 0.5 (got %g)", rl.PerSecond)
		}
		if !v.has(rp, "burst") {
			rl.Burst = max(1, int(math.Ceil(rl.PerSecond)))
		} else if rl.Burst < 1 {
			v.errf(rp.field("burst"), "want a burst of at least 1 (got %d)", rl.Burst)
		}
	}
	if s.Retry.Attempts < 1 {
		v.errf(p.field("retry").field("attempts"), "want at least 1 attempt, the first included (got %d)", s.Retry.Attempts)
	}
}

func (v *validator) auth(p keyPath, a *Auth) {
	spec, ok := authFields[a.Type]
	if !ok {
		v.errf(p.field("type"), "unknown auth type %q; want one of %s%s", a.Type, strings.Join(authTypes, ", "), didYouMean(a.Type, authTypes))
		return
	}
	set := map[string]bool{
		"token": a.Token != "", "username": a.Username != "", "password": a.Password != "",
		"name": a.Name != "", "value": a.Value != "", "token_url": a.TokenURL != "",
		"client_id": a.ClientID != "", "client_secret": a.ClientSecret != "", "scopes": len(a.Scopes) > 0,
	}
	for _, k := range []string{"token", "username", "password", "name", "value", "token_url", "client_id", "client_secret", "scopes"} {
		if (set[k] || v.has(p, k)) && !slices.Contains(spec.keys, k) {
			v.errf(p.field(k), "not used by auth type %s (%s goes with type %s)", a.Type, k, authUsers[k])
		}
	}
	for _, k := range spec.keys[:spec.required] {
		if !set[k] {
			v.errf(p.field(k), "required by auth type %s", a.Type)
		}
	}
	switch a.Type {
	case AuthHeader:
		if a.Name != "" && !validHeaderName(a.Name) {
			v.errf(p.field("name"), "want a header name such as X-API-Key (got %q)", a.Name)
		}
		if strings.ContainsAny(string(a.Value), "\r\n") {
			v.errf(p.field("value"), "a header value cannot hold a line break")
		}
	case AuthOAuth2:
		if a.TokenURL != "" {
			v.httpURL(p.field("token_url"), a.TokenURL, "token_url", "https://auth.example.com/oauth/token")
		}
	}
}

func (v *validator) headers(p keyPath, h map[string]string) {
	for k, val := range h {
		if !validHeaderName(k) {
			v.errf(p.field(k), "want a header name of letters, digits and -, such as Accept (got %q)", k)
		}
		if strings.ContainsAny(val, "\r\n") {
			v.errf(p.field(k), "a header value cannot hold a line break")
		}
	}
}

// validHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// httpURL checks an absolute http(s) URL.
func (v *validator) httpURL(p keyPath, s, key, example string) {
	if s == "" {
		v.errf(p, "%s is required: an http(s) URL such as %s", key, example)
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errf(p, "want an absolute http(s) URL such as %s (got %q)", example, redact.URL(s))
	}
}

var (
	objectRE     = regexp.MustCompile(`^[a-z0-9_]+$`)
	dottedPathRE = regexp.MustCompile(`^[^.\s"'\[\]|(),{}$]+(\.[^.\s"'\[\]|(),{}$]+)*$`)
)

func (v *validator) resource(p keyPath, r *Resource) {
	c := v.c
	var names []string
	for _, s := range c.Sources {
		names = append(names, s.Name)
	}
	switch {
	case len(c.Sources) == 0:
		// Reported once, as "at least one source is required".
	case r.Source == "" && len(c.Sources) == 1 && validName(c.Sources[0].Name):
		r.Source = c.Sources[0].Name
	case r.Source == "":
		v.errf(p.field("source"), "source is required: the name of one of the sources (%s)", strings.Join(names, ", "))
	case c.Source(r.Source) == nil:
		v.errf(p.field("source"), "no source named %q; defined: %s%s", r.Source, strings.Join(names, ", "), didYouMean(r.Source, names))
	}

	switch {
	case r.Object == "":
		v.errf(p.field("object"), "object is required: the noun of the resource's events, as in object: contact for contact.created")
	case !objectRE.MatchString(r.Object):
		v.errf(p.field("object"), "want lowercase letters, digits and _, such as contact (got %q)", r.Object)
	}

	v.resourceURL(p, r)

	if r.Items == "" {
		v.errf(p.field("items"), "want a jq expression for the array of records in a body, such as .data or . (the body itself)")
	} else if !dottedPathRE.MatchString(r.Items) {
		// A dotted path (results, data.items) is read as keys; anything
		// else is jq.
		v.jq(p.field("items"), r.Items)
	}
	if r.Filter != "" {
		v.jq(p.field("filter"), r.Filter)
	}
	v.pathOrJQ(p.field("id_field"), r.IDField)
	v.dates(p.field("dates"), &r.Dates)
	if r.Transform != "" {
		v.jq(p.field("transform"), r.Transform)
	}
	v.fieldPaths(p, r)
	v.pagination(p.field("pagination"), &r.Pagination)

	switch r.Deletes {
	case DeletesNone:
	case DeletesSnapshot:
		if r.Template != nil && r.Template.HasSince() {
			v.errf(p.field("deletes"), "deletes: snapshot needs every record each cycle, but url asks only for changes (it holds a since placeholder); remove the ${gmtDate}/${date}/${epoch} filter from url or use deletes: none")
		}
	default:
		v.errf(p.field("deletes"), "want none or snapshot (got %q)%s", r.Deletes, didYouMean(r.Deletes, []string{DeletesNone, DeletesSnapshot}))
	}
	v.itemURL(p, r)
	if g := r.DeleteGuard; g != nil && (*g < 0 || *g > 1) {
		v.errf(p.field("delete_guard"), "want a share of known ids between 0 and 1, such as 0.5 for 50%% (got %g)", *g)
	}

	switch r.Start {
	case StartNow, StartBeginning:
	default:
		t, err := time.Parse(time.RFC3339, r.Start)
		switch {
		case err != nil:
			v.errf(p.field("start"), "want now, beginning or an RFC 3339 time such as 2024-01-31T00:00:00Z (got %q)", r.Start)
		case r.Dates.UpdatedField == "":
			// The first cycle keeps quiet about the records updated
			// before the start time; without an updated date every
			// record would be reported.
			v.errf(p.field("start"), "a start time needs dates.updated_field (and dates.updated_format), to tell the records changed after it from the others; set them, or use start: now or start: beginning (got %q)", r.Start)
		}
		r.StartTime = t
	}

	switch r.EventNames {
	case EventNamesPollhook, EventNamesKeap:
	default:
		v.errf(p.field("event_names"), "want pollhook (object.created/updated/deleted) or keap (object.add/edit/delete) (got %q)", r.EventNames)
	}
}

func (v *validator) resourceURL(p keyPath, r *Resource) {
	up := p.field("url")
	if r.URL == "" {
		v.errf(up, "url is required: a path under the source's base_url such as /contacts, or an absolute http(s) URL")
		return
	}
	t, err := ParseTemplate(r.URL)
	if err != nil {
		v.errf(up, "%s", err.Error())
		return
	}
	r.Template = t
	u, err := url.Parse(t.probe())
	switch {
	case err != nil:
		v.errf(up, "want a path such as /contacts?limit=10, or an absolute http(s) URL (got %q)", redact.URL(t.probe()))
	case u.Scheme == "":
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(up, "want a path such as /contacts, or an http(s) URL (got scheme %q)", u.Scheme)
	case u.Host == "":
		v.errf(up, "want an absolute http(s) URL with a host (got %q)", redact.URL(r.URL))
	}
}

// itemURL checks item_url and item_record.
func (v *validator) itemURL(p keyPath, r *Resource) {
	up := p.field("item_url")
	if r.ItemURL == "" {
		if r.ItemRecord != "" {
			v.errf(p.field("item_record"), "item_record is set without item_url: it says where the record is in an item_url body")
		}
		if r.Deletes == DeletesSnapshot && slices.Contains(PositionalPageTypes, r.Pagination.Type) {
			v.errf(p.field("deletes"), "deletes: snapshot with pagination %s needs item_url: pages counted by position shift when records are deleted or moved during a walk, so a walk can miss a record that exists, and a missed record would be reported deleted; set item_url to where one record is (such as /contacts/${id}), and a missing record is looked up there before it is deleted", r.Pagination.Type)
		}
		return
	}
	if r.Deletes != DeletesSnapshot {
		v.errf(up, "item_url is used by deletes: snapshot only (to confirm that a record missing from a listing is gone); set deletes: snapshot or remove item_url")
	}
	t, err := ParseItemTemplate(r.ItemURL)
	if err != nil {
		v.errf(up, "%s", err.Error())
		return
	}
	r.ItemTemplate = t
	u, err := url.Parse(t.Expand("0"))
	switch {
	case err != nil:
		v.errf(up, "want a path such as /contacts/${id}, or an absolute http(s) URL (got %q)", redact.URL(r.ItemURL))
	case u.Scheme == "":
	case u.Scheme != "http" && u.Scheme != "https":
		v.errf(up, "want a path such as /contacts/${id}, or an http(s) URL (got scheme %q)", u.Scheme)
	case u.Host == "":
		v.errf(up, "want an absolute http(s) URL with a host (got %q)", redact.URL(r.ItemURL))
	}
	if r.ItemRecord != "" && !dottedPathRE.MatchString(r.ItemRecord) {
		v.jq(p.field("item_record"), r.ItemRecord)
	}
}

// jq checks a jq expression.
func (v *validator) jq(p keyPath, expr string) {
	q, err := gojq.Parse(expr)
	if err == nil {
		_, err = gojq.Compile(q)
	}
	if err != nil {
		v.errf(p, "invalid jq expression: %s (got %q)", err.Error(), expr)
	}
}

// fieldPaths checks ignore_fields and watch_fields: at most one of them,
// each item a dotted path or a jq path expression.
func (v *validator) fieldPaths(p keyPath, r *Resource) {
	if len(r.IgnoreFields) > 0 && len(r.WatchFields) > 0 {
		v.errf(p.field("watch_fields"), "set ignore_fields or watch_fields, not both: watch_fields already leaves out every field it does not list")
		return
	}
	for _, key := range []string{"ignore_fields", "watch_fields"} {
		paths := r.IgnoreFields
		if key == "watch_fields" {
			paths = r.WatchFields
		}
		for i, expr := range paths {
			ip := p.field(key).index(i)
			switch {
			case strings.TrimSpace(expr) == "" || strings.TrimSpace(expr) == ".":
				v.errf(ip, "want the path of a field, such as last_seen_at, stats.views or .tags[].updated_at (got %q)", expr)
			case strings.HasPrefix(expr, "."):
				v.jqPath(ip, expr)
			case !dottedPathRE.MatchString(expr):
				v.errf(ip, "want a dotted path such as stats.views, or a jq path expression starting with . such as .tags[].updated_at (got %q)", expr)
			}
		}
	}
}

// jqPath checks a jq path expression: one that names places in a value
// (.a.b, .items[].x, .["a key"]), as jq's path() takes.
func (v *validator) jqPath(p keyPath, expr string) {
	if _, err := gojq.Parse(expr); err != nil {
		v.errf(p, "invalid jq expression: %s (got %q)", err.Error(), expr)
		return
	}
	q, err := gojq.Parse("path(" + expr + ")")
	var code *gojq.Code
	if err == nil {
		code, err = gojq.Compile(q)
	}
	if err != nil {
		v.errf(p, "invalid jq expression: %s (got %q)", err.Error(), expr)
		return
	}
	// A value rather than a path shows on any input, null included; other
	// errors (iterating over null) depend on the record.
	out, _ := code.Run(nil).Next()
	if err, ok := out.(error); ok && strings.HasPrefix(err.Error(), "invalid path against") {
		v.errf(p, "not a path expression: %s; want a path such as .stats.views or .tags[].updated_at (got %q)", err.Error(), expr)
	}
}

// pathOrJQ checks a field reference: a dotted path or a jq expression.
func (v *validator) pathOrJQ(p keyPath, expr string) {
	switch {
	case strings.HasPrefix(expr, "."):
		v.jq(p, expr)
	case !dottedPathRE.MatchString(expr):
		v.errf(p, "want a dotted path such as id or properties.hs_object_id, or a jq expression starting with . (got %q)", expr)
	}
}

func (v *validator) dates(p keyPath, d *Dates) {
	d.Updated = v.dateField(p, "updated", d.UpdatedField, d.UpdatedFormat, &d.UpdatedTimezone)
	d.Created = v.dateField(p, "created", d.CreatedField, d.CreatedFormat, &d.CreatedTimezone)
}

func (v *validator) dateField(p keyPath, which, field, format string, tz *string) *DateField {
	fp, mp, zp := p.field(which+"_field"), p.field(which+"_format"), p.field(which+"_timezone")
	switch {
	case field == "" && format == "":
		if *tz != "" {
			v.errf(zp, "%s_timezone is set without %s_field and %s_format", which, which, which)
		}
		return nil
	case format == "":
		v.errf(mp, "%s_field is set but %s_format is not: want a date pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSXXX, or rfc3339, unix or unix_ms", which, which)
		return nil
	case field == "":
		v.errf(fp, "%s_format is set but %s_field is not: want the record's field holding the date, such as %s_at", which, which, which)
		return nil
	}
	v.pathOrJQ(fp, field)
	f, err := datefmt.Parse(format)
	if err != nil {
		v.errf(mp, "%s", withGot(err, format))
	}
	loc := time.UTC
	if *tz == "" {
		*tz = "GMT"
	} else if loc, err = datefmt.LoadLocation(*tz); err != nil {
		v.errf(zp, "%s", withGot(err, *tz))
	}
	if f == nil || loc == nil {
		return nil
	}
	return &DateField{Field: field, Format: f, Location: loc}
}

// withGot is the message of err, with the bad value after it unless the
// message quotes it already.
func withGot(err error, value string) string {
	msg := strings.TrimPrefix(err.Error(), "datefmt: ")
	if strings.Contains(msg, strconv.Quote(value)) {
		return msg
	}
	return fmt.Sprintf("%s (got %q)", msg, value)
}

var pageTypes = []string{PageNone, PageOffset, PagePage, PageCursor, PageNextURL, PageLinkHeader}

func (v *validator) pagination(p keyPath, pg *Pagination) {
	if !slices.Contains(pageTypes, pg.Type) {
		v.errf(p.field("type"), "unknown pagination type %q; want one of %s%s", pg.Type, strings.Join(pageTypes, ", "), didYouMean(pg.Type, pageTypes))
		return
	}
	paged := pg.Type == PageOffset || pg.Type == PagePage
	if paged && !v.has(p, "limit") {
		pg.Limit = DefaultPageLimit
	}
	if v.has(p, "limit") && pg.Limit <= 0 {
		v.errf(p.field("limit"), "want a page size above 0, such as 100 (got %d)", pg.Limit)
	}
	// Keys of another type are most likely a mistaken type.
	owners := map[string]string{
		"offset_param": PageOffset, "page_param": PagePage, "first_page": PagePage,
		"cursor_param": PageCursor, "next_cursor": PageCursor, "next_url": PageNextURL,
	}
	for _, k := range []string{"offset_param", "page_param", "first_page", "cursor_param", "next_cursor", "next_url"} {
		if v.has(p, k) && pg.Type != owners[k] {
			v.errf(p.field(k), "%s is used only by pagination type %s, and type is %s", k, owners[k], pg.Type)
		}
	}
	params := map[string]string{"limit_param": pg.LimitParam, "offset_param": pg.OffsetParam, "page_param": pg.PageParam, "cursor_param": pg.CursorParam}
	for _, k := range []string{"limit_param", "offset_param", "page_param", "cursor_param"} {
		if v.has(p, k) && params[k] == "" {
			v.errf(p.field(k), "want the name of a query parameter")
		}
	}
	if pg.FirstPage != nil && *pg.FirstPage < 0 {
		v.errf(p.field("first_page"), "want 0 or more (got %d)", *pg.FirstPage)
	}
	switch pg.Type {
	case PageCursor:
		if pg.NextCursor == "" {
			v.errf(p.field("next_cursor"), "pagination type cursor needs next_cursor: a jq expression for the next cursor in a body, such as .meta.next_cursor")
		}
	case PageNextURL:
		if pg.NextURL == "" {
			v.errf(p.field("next_url"), "pagination type next_url needs next_url: a jq expression for the next page's URL in a body, such as .links.next")
		}
	}
	if pg.NextCursor != "" {
		v.jq(p.field("next_cursor"), pg.NextCursor)
	}
	if pg.NextURL != "" {
		v.jq(p.field("next_url"), pg.NextURL)
	}
	if pg.MaxPages < 1 {
		v.errf(p.field("max_pages"), "want at least 1 (got %d)", pg.MaxPages)
	}
}

var (
	formats   = []string{FormatPollhook, FormatCloudEvents, FormatKeap, FormatCloudElements}
	orderings = []string{OrderingUnordered, OrderingOrdered}
	globRE    = regexp.MustCompile(`^(\*|[a-z0-9_]+)\.(\*|[a-z0-9_]+)$`)
)

// MaxBatchEvents is the most events a destination may get in one request.
const MaxBatchEvents = 1000

// destination checks d; types are the events the resources can emit, and
// unemitted those they name but cannot emit (deletes without deletes:
// snapshot).
func (v *validator) destination(p keyPath, d *Destination, types, unemitted []string) {
	v.destinationURL(p.field("url"), d.URL)
	if IsNATSURL(d.URL) {
		v.natsDestination(p, d)
	} else {
		for _, k := range []string{"subject", "stream", "nats"} {
			if v.has(p, k) {
				v.errf(p.field(k), "only for a NATS destination (url: nats://host:port); remove it, or make url a NATS server")
			}
		}
	}
	if t := d.TLS; (t.CertFile == "") != (t.KeyFile == "") {
		missing := "key_file"
		if t.CertFile == "" {
			missing = "cert_file"
		}
		v.errf(p.field("tls").field(missing), "tls.cert_file and tls.key_file go together (a client certificate and its key): set %s too", missing)
	}
	ep := p.field("events")
	if len(d.Events) == 0 {
		v.errf(ep, "want at least one event glob, such as [\"contact.*\"] or [\"*.*\"] for every event")
	}
	for i, g := range d.Events {
		gp := ep.index(i)
		switch {
		case g != "*" && !globRE.MatchString(g):
			v.errf(gp, "want a glob over noun.verb such as contact.*, *.deleted, contact.created or *.* (got %q)", g)
		case len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return MatchEvent(g, t) }):
			shown := types
			if len(shown) > 9 {
				shown = append(shown[:9:9], "…")
			}
			hint := ""
			if slices.ContainsFunc(unemitted, func(t string) bool { return MatchEvent(g, t) }) {
				hint = "; a delete is detected only with deletes: snapshot on the resource"
			}
			v.errf(gp, "%q matches no event of the configured resources (they produce %s)%s", g, strings.Join(shown, ", "), hint)
		}
	}
	if !slices.Contains(formats, d.Format) {
		v.errf(p.field("format"), "unknown format %q; want one of %s%s", d.Format, strings.Join(formats, ", "), didYouMean(d.Format, formats))
	}
	// Cloud Elements signs with the secret as written, so any string will
	// do there; the Standard Webhooks signature needs a whsec_ key.
	if d.Secret != "" && d.Format != FormatCloudElements {
		v.secret(p.field("secret"), string(d.Secret))
	}
	v.headers(p.field("headers"), d.Headers)
	if d.BasicAuth != nil && d.BasicAuth.Username == "" {
		v.errf(p.field("basic_auth").field("username"), "required when basic_auth is set")
	}
	if d.Timeout <= 0 {
		v.errf(p.field("timeout"), "want a duration above 0, such as 30s (got %s)", d.Timeout.D())
	}
	if m := d.Batch.MaxEvents; m < 1 || m > MaxBatchEvents {
		v.errf(p.field("batch").field("max_events"), "want 1 to %d events a request (got %d)", MaxBatchEvents, m)
	}
	rp := p.field("retry").field("schedule")
	if len(d.Retry.Schedule) == 0 {
		v.errf(rp, "want at least one wait, such as [5s, 5m, 30m]")
	}
	for i, w := range d.Retry.Schedule {
		if w <= 0 {
			v.errf(rp.index(i), "want a wait above 0, such as 5s (got %s)", w.D())
		}
	}
	if !slices.Contains(orderings, d.Ordering) {
		v.errf(p.field("ordering"), "want unordered or ordered (got %q)", d.Ordering)
	}
	if d.MaxInFlight < 1 {
		v.errf(p.field("max_in_flight"), "want at least 1 (got %d)", d.MaxInFlight)
	}
	if d.Filter != "" {
		v.jq(p.field("filter"), d.Filter)
	}
}

func (v *validator) destinationURL(p keyPath, s string) {
	const want = "want an http(s) URL, nats://host:port, stdout, or file:///absolute/path"
	if s == "" {
		v.errf(p, "url is required: %s", want)
		return
	}
	if s == "stdout" {
		return
	}
	if IsNATSURL(s) {
		if _, err := NATSServers(s); err != nil {
			v.errf(p, "%s", err.Error())
		}
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.errf(p, "%s (got %q)", want, redact.URL(s))
	case u.Scheme == "http" || u.Scheme == "https":
		if u.Host == "" {
			v.errf(p, "%s; the URL has no host (got %q)", want, redact.URL(s))
		}
	case u.Scheme == "file":
		if (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			v.errf(p, "want file:///absolute/path, with three slashes (got %q)", redact.URL(s))
		}
	default:
		v.errf(p, "%s (got %q)", want, redact.URL(s))
	}
}

// natsDestination checks what a NATS destination needs: its subject
// template, stream name and credentials.
func (v *validator) natsDestination(p keyPath, d *Destination) {
	sp := p.field("subject")
	if d.Subject == "" {
		v.errf(sp, "subject is required for a NATS destination: a subject template such as pollhook.{resource}.{type}")
	} else if s, err := ParseSubject(d.Subject); err != nil {
		v.errf(sp, "%s", err.Error())
	} else {
		var resources, sources []string
		for _, r := range v.c.Resources {
			resources = append(resources, r.Name)
		}
		for _, src := range v.c.Sources {
			sources = append(sources, src.Name)
		}
		for _, f := range []struct {
			field, what string
			names       []string
		}{{"resource", "resource", resources}, {"source", "source", sources}} {
			if !s.Uses(f.field) {
				continue
			}
			if i := slices.IndexFunc(f.names, func(n string) bool { return strings.Contains(n, ".") }); i >= 0 {
				v.errf(sp, "{%s} would put the name of %s %q in the subject, and its \".\" would split a subject token; rename the %s or leave {%s} out", f.field, f.what, f.names[i], f.what, f.field)
			}
		}
	}
	if d.Stream != "" {
		if why := validStreamName(d.Stream); why != "" {
			v.errf(p.field("stream"), "want a stream name with %s (got %q)", why, d.Stream)
		}
	}
	if d.BasicAuth != nil {
		v.errf(p.field("basic_auth"), "basic_auth is for http(s) destinations; a NATS server takes nats.user and nats.password")
	}
	n, np := d.NATS, p.field("nats")
	switch {
	case n.Password != "" && n.User == "":
		v.errf(np.field("user"), "nats.password needs nats.user")
	case n.User != "" && n.Password == "":
		v.errf(np.field("password"), "nats.user needs nats.password")
	}
	ways := 0
	for _, set := range []bool{n.User != "" || n.Password != "", n.Token != "", n.Creds != ""} {
		if set {
			ways++
		}
	}
	switch {
	case ways > 1:
		v.errf(np, "give one way to authenticate: nats.user and nats.password, nats.token, or nats.creds")
	case ways == 1 && natsUserinfo(d.URL):
		v.errf(p.field("url"), "the url holds credentials and so does nats; keep one of them")
	}
}

// sharedStreams reports two NATS destinations on the same servers that
// publish the same events into one stream: both give an event's id as its
// Nats-Msg-Id, so the stream would drop the second one's copy as a
// duplicate.
func (v *validator) sharedStreams(types []string) {
	first := map[[2]string]int{}
	for i := range v.c.Destinations {
		d := &v.c.Destinations[i]
		if !IsNATSURL(d.URL) || d.Stream == "" {
			continue
		}
		key := [2]string{strings.ReplaceAll(d.URL, " ", ""), d.Stream}
		j, ok := first[key]
		if !ok {
			first[key] = i
			continue
		}
		o := &v.c.Destinations[j]
		for _, t := range types {
			if matchAny(d.Events, t) && matchAny(o.Events, t) {
				v.errf(keyPath{{key: "destinations"}}.index(i).field("stream"),
					"destination %s publishes %s into stream %q too; the stream keeps one message per event id (Nats-Msg-Id), so one of the copies would be dropped: give each destination a stream of its own", o.Name, t, d.Stream)
				break
			}
		}
	}
}

// matchAny reports whether any of globs matches eventType.
func matchAny(globs []string, eventType string) bool {
	return slices.ContainsFunc(globs, func(g string) bool { return MatchEvent(g, eventType) })
}

// secret checks a Standard Webhooks signing key without ever showing it.
func (v *validator) secret(p keyPath, s string) {
	const hint = "Standard Webhooks keys are whsec_ followed by base64; make one with: echo whsec_$(head -c 32 /dev/urandom | base64)"
	rest, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		v.errf(p, "the secret does not start with whsec_; %s", hint)
		return
	}
	if b, err := base64.StdEncoding.DecodeString(rest); err != nil || len(b) == 0 {
		v.errf(p, "the part after whsec_ is not base64; %s", hint)
	}
}

// didYouMean suggests the closest of valid, or says nothing.
func didYouMean(got string, valid []string) string {
	if best := closestWord(got, valid); best != "" {
		return "; did you mean " + best + "?"
	}
	return ""
}
