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
	if c.State.Path == "" {
		c.State.Path = DefaultStatePath
	}
	v.httpBlock(keyPath{{key: "http"}})

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
	var types []string
	for _, r := range c.Resources {
		if objectRE.MatchString(r.Object) {
			for _, t := range r.EventTypes() {
				if !slices.Contains(types, t) {
					types = append(types, t)
				}
			}
		}
	}
	for i := range c.Destinations {
		v.destination(keyPath{{key: "destinations"}}.index(i), &c.Destinations[i], types)
	}
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

func (v *validator) destination(p keyPath, d *Destination, types []string) {
	v.destinationURL(p.field("url"), d.URL)
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
			v.errf(gp, "%q matches no event of the configured resources (they produce %s)", g, strings.Join(shown, ", "))
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
	const want = "want an http(s) URL, stdout, or file:///absolute/path"
	if s == "" {
		v.errf(p, "url is required: %s", want)
		return
	}
	if s == "stdout" {
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
