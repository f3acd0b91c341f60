package poller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/internal/clip"
	"github.com/pollhook/pollhook/internal/redact"
)

// Query parameter names used when a resource's pagination leaves them out.
const (
	DefaultLimitParam  = "limit"
	DefaultOffsetParam = "offset"
	DefaultPageParam   = "page"
	DefaultCursorParam = "cursor"
	// DefaultFirstPage is the number of the first page of page pagination.
	DefaultFirstPage = 1
)

// Fetcher walks the pages of one resource, one page in memory at a time. A
// Fetcher is immutable and safe for concurrent use; each Each call is one
// walk.
type Fetcher struct {
	name      string
	p         config.Pagination
	limit     int
	firstPage int
	maxPages  int
	c         *Client
	x         *Extractor
}

// Page is one fetched page of records.
type Page struct {
	// Number counts pages from 1 within a walk.
	Number int
	// URL is the page's URL, redacted (no user information, query values
	// hidden).
	URL     string
	Records []Record
	Skips   []Skip
	// Date is the response's Date header, the API's clock when it served
	// the page; zero when absent or unparseable.
	Date time.Time
}

// NewFetcher returns a Fetcher for r that fetches with c and extracts with
// x (which NewExtractor built from r). Zero values in r.Pagination mean the
// defaults: type none, config.DefaultPageLimit, DefaultLimitParam and the
// other Default*Param names, DefaultFirstPage and config.DefaultMaxPages.
func NewFetcher(r *config.Resource, c *Client, x *Extractor) *Fetcher {
	f := &Fetcher{name: r.Name, p: r.Pagination, limit: r.Pagination.Limit, maxPages: r.Pagination.MaxPages, firstPage: DefaultFirstPage, c: c, x: x}
	if f.p.Type == "" {
		f.p.Type = config.PageNone
	}
	if f.limit <= 0 {
		f.limit = config.DefaultPageLimit
	}
	if f.maxPages <= 0 {
		f.maxPages = config.DefaultMaxPages
	}
	if f.p.FirstPage != nil {
		f.firstPage = *f.p.FirstPage
	}
	f.p.LimitParam = orDefault(f.p.LimitParam, DefaultLimitParam)
	f.p.OffsetParam = orDefault(f.p.OffsetParam, DefaultOffsetParam)
	f.p.PageParam = orDefault(f.p.PageParam, DefaultPageParam)
	f.p.CursorParam = orDefault(f.p.CursorParam, DefaultCursorParam)
	return f
}

// Each fetches the pages of one cycle from firstURL on (absolute, or
// relative to the source's base_url) and calls fn after each, in order.
//
//	none         firstURL is the only page
//	offset       firstURL with offset_param=0, then the offset of the last
//	             page's last record (one record of overlap; see offsetWalk),
//	             and limit_param=limit
//	page         firstURL with page_param=first_page, first_page+1 … and limit_param=limit
//	cursor       firstURL, then firstURL with cursor_param=<next_cursor of the last body>
//	next_url     firstURL, then <next_url of the last body>, relative URLs
//	             resolved against the last page's URL (RFC 3986)
//	link_header  firstURL, then the rel="next" target of the last Link header
//
// Parameters that Each sets replace those of the same name in firstURL.
// A next URL that would take the source's credentials elsewhere is refused
// with an error: one on another scheme and host than base_url's (unless on
// the host of firstURL), or one that goes from https to plain http.
// Offset and page walks stop after a page of fewer than limit records; the
// others when the next cursor or URL is absent, null or empty; all after an
// empty page (an offset page after the first steps back instead). The
// walk fails with an error naming the page and its URL when
// a page cannot be fetched or read, when a next cursor or URL repeats
// (a loop), or when max_pages pages have been read and more remain; fn still
// gets the page whose body revealed a loop or max_pages. An error from fn
// stops the walk and is returned as is.
func (f *Fetcher) Each(ctx context.Context, firstURL string, fn func(Page) error) error {
	limit := strconv.Itoa(f.limit)
	next := firstURL
	switch f.p.Type {
	case config.PageOffset:
		next = setURLQuery(firstURL, f.p.OffsetParam, "0", f.p.LimitParam, limit)
	case config.PagePage:
		next = setURLQuery(firstURL, f.p.PageParam, strconv.Itoa(f.firstPage), f.p.LimitParam, limit)
	}
	// Next pages named by a response may stay on the first page's host;
	// see checkNextPage. An unresolvable first URL fails in Get.
	first, _ := f.c.resolve(next)
	seen := map[string]bool{}
	var ow *offsetWalk
	if f.p.Type == config.PageOffset && f.limit > 1 {
		ow = &offsetWalk{limit: f.limit}
	}
	for n := 1; ; n++ {
		resp, err := f.c.Get(ctx, next)
		if err != nil {
			return fmt.Errorf("fetch page %d: %w", n, err)
		}
		shown := redact.URL(resp.URL)
		doc, err := f.x.Decode(resp.Body)
		if err != nil {
			// The error quotes the body, which may echo a credential.
			return f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, err))
		}
		items, err := f.x.Items(doc)
		if err != nil {
			return f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, err))
		}
		// Paging counts the records the API sent, before the filter.
		count := len(items)

		// Work out the next page before fn, so that the body can go.
		more, nextErr, accept, reread := false, error(nil), true, 0
		if ow != nil {
			from := ow.offset
			accept, reread, more, nextErr = ow.take(items)
			if !accept && nextErr == nil {
				f.c.log.Info("offset pagination: the listing shifted during the walk; stepping back",
					"resource", f.name, "page", n, "offset", from, "step_back_to", ow.offset)
			}
			next = setURLQuery(firstURL, f.p.OffsetParam, strconv.Itoa(ow.offset), f.p.LimitParam, limit)
		} else if count > 0 {
			switch f.p.Type {
			case config.PageNone:
			case config.PageOffset:
				more = count >= f.limit
				next = setURLQuery(firstURL, f.p.OffsetParam, strconv.Itoa(n*f.limit), f.p.LimitParam, limit)
			case config.PagePage:
				more = count >= f.limit
				next = setURLQuery(firstURL, f.p.PageParam, strconv.Itoa(f.firstPage+n), f.p.LimitParam, limit)
			case config.PageCursor:
				var cur string
				if cur, nextErr = f.x.next(doc); nextErr == nil && cur != "" {
					if seen[cur] {
						nextErr = fmt.Errorf("pagination loop: next cursor %q repeated at page %d", clip.Ellipsis(cur, 100), n)
					}
					seen[cur], more = true, true
					next = setURLQuery(firstURL, f.p.CursorParam, cur)
				}
			case config.PageNextURL, config.PageLinkHeader:
				seen[f.c.stripAuth(resp.URL)] = true
				var ref string
				if f.p.Type == config.PageLinkHeader {
					ref = nextLink(resp.Header)
				} else {
					ref, nextErr = f.x.next(doc)
				}
				if nextErr == nil && ref != "" {
					next, nextErr = resolveRef(resp.URL, ref)
					if nextErr == nil {
						nextErr = f.checkNextPage(first, resp.URL, next)
					}
					if nextErr == nil && seen[f.c.stripAuth(next)] {
						nextErr = fmt.Errorf("pagination loop: next url %q repeated at page %d", redact.URL(next), n)
					}
					more = true
				}
			default:
				return fmt.Errorf("resources[%s].pagination.type: want none, offset, page, cursor, next_url or link_header (got %q)", f.name, f.p.Type)
			}
		}
		doc = nil
		if nextErr == nil && more && n >= f.maxPages {
			nextErr = fmt.Errorf("pagination reached max_pages %d with more pages to fetch: the cycle is incomplete; raise resources[%s].pagination.max_pages", f.maxPages, f.name)
		}
		if nextErr != nil {
			nextErr = f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, nextErr))
		}

		if !accept {
			if nextErr != nil {
				return nextErr
			}
			continue
		}
		recs, skips, err := f.x.RecordsOf(items[reread:])
		if err != nil {
			return f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, err))
		}
		for i := range skips {
			skips[i].Index += reread
		}
		date, _ := http.ParseTime(resp.Header.Get("Date"))
		if err := fn(Page{Number: n, URL: shown, Records: recs, Skips: skips, Date: date}); err != nil {
			return err
		}
		if nextErr != nil {
			return nextErr
		}
		if !more {
			return nil
		}
	}
}

// checkNextPage refuses a next page URL that a response named (next_url,
// link_header) when fetching it would send the source's credentials and
// headers where the config does not point: to another scheme and host than
// base_url's, unless to the host of the first page (the resource's url), or
// from https to plain http.
func (f *Fetcher) checkNextPage(first *url.URL, page, next string) error {
	n, err := url.Parse(next)
	if err != nil {
		return fmt.Errorf("parse next url: %w", redactURLError(err))
	}
	p, _ := url.Parse(page)
	if strings.EqualFold(n.Scheme, "http") && (isHTTPS(first) || isHTTPS(p)) {
		return fmt.Errorf("pagination: next page %s leaves https for plain http; pollhook does not send credentials unencrypted", redact.URL(next))
	}
	if first != nil && sameHost(first, n) {
		return nil
	}
	than := "the first page"
	if f.c.base != "" {
		than = "base_url"
		if b, err := url.Parse(f.c.base); err == nil && strings.EqualFold(b.Scheme, n.Scheme) && sameHost(b, n) {
			return nil
		}
	}
	return fmt.Errorf("pagination: next page %s is on another host than %s; pollhook does not send credentials there", redact.URL(next), than)
}

func isHTTPS(u *url.URL) bool { return u != nil && strings.EqualFold(u.Scheme, "https") }

// sameHost reports whether a and b name the same host and port, a default
// port (80, 443) written or not.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

// portOf is u's port, or "" for its scheme's default port.
func portOf(u *url.URL) string {
	p := u.Port()
	if (p == "80" && strings.EqualFold(u.Scheme, "http")) || (p == "443" && strings.EqualFold(u.Scheme, "https")) {
		return ""
	}
	return p
}

// stripAuth removes the query credential from an absolute URL, so that
// URLs compare equal with or without it.
func (c *Client) stripAuth(raw string) string {
	if c.queryParam == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery = removeQuery(u.RawQuery, c.queryParam)
	return u.String()
}

// resolveRef resolves ref against base per RFC 3986.
func resolveRef(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parse page url: %w", redactURLError(err))
	}
	r, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return "", fmt.Errorf("parse next url: %w", redactURLError(err))
	}
	u := b.ResolveReference(r)
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// link is one link of a Link header (RFC 8288).
type link struct {
	target string
	rels   []string
}

// nextLink returns the target of the first link whose rel holds "next" in
// h's Link headers, or "".
func nextLink(h http.Header) string {
	for _, l := range parseLinks(h.Values("Link")) {
		for _, rel := range l.rels {
			if strings.EqualFold(rel, "next") {
				return l.target
			}
		}
	}
	return ""
}

// parseLinks parses Link header values: `<url>; rel="next last"; title=x,
// <url2>; rel=prev`. Links that do not parse are skipped; of several rel
// parameters the first counts.
func parseLinks(values []string) []link {
	var links []link
	for _, s := range values {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] != '<' {
				s = skipParam(s[1:])
				continue
			}
			end := strings.IndexByte(s, '>')
			if end < 0 {
				break
			}
			l := link{target: strings.TrimSpace(s[1:end])}
			s = s[end+1:]
			relSeen := false
			for {
				s = strings.TrimLeft(s, " \t")
				if s == "" || s[0] == ',' {
					break
				}
				if s[0] != ';' {
					s = skipParam(s)
					continue
				}
				s = strings.TrimLeft(s[1:], " \t")
				i := strings.IndexAny(s, "=;,")
				if i < 0 {
					s = ""
					break
				}
				name := strings.TrimSpace(s[:i])
				if s[i] != '=' {
					s = s[i:]
					continue
				}
				var value string
				value, s = paramValue(strings.TrimLeft(s[i+1:], " \t"))
				if strings.EqualFold(name, "rel") && !relSeen {
					relSeen = true
					l.rels = strings.Fields(value)
				}
			}
			links = append(links, l)
		}
	}
	return links
}

// paramValue reads a token or a quoted string from the start of s.
func paramValue(s string) (value, rest string) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, ";,")
		if i < 0 {
			return strings.TrimSpace(s), ""
		}
		return strings.TrimSpace(s[:i]), s[i:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// skipParam drops s up to the next separator (; or ,) outside quotes.
func skipParam(s string) string {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '\\' && quoted:
			i++
		case !quoted && (s[i] == ',' || s[i] == ';'):
			return s[i:]
		}
	}
	return ""
}
