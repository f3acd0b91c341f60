package poller

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pollhook/pollhook/internal/redact"
)

// linkedPages serves pagination types next_url and link_header: firstURL,
// then the page that the last one names, resolved against its URL (RFC
// 3986): for next_url the next_url of its body, for link_header the
// rel="next" target of its Link header. The walk ends when a page names
// none (a next_url absent, null, false or empty; no rel="next" link) or
// is empty. A next URL that
// would take the source's credentials elsewhere is refused (see
// checkNextPage), and one already read is a loop: either fails the walk.
type linkedPages struct {
	f        *Fetcher
	firstURL string
	// firstPage is firstURL resolved: next pages may stay on its host.
	firstPage *url.URL
	// linkHeader takes the next page from the Link header, not the body.
	linkHeader bool
	seen       map[string]bool // the URLs read, without the query credential
}

func newLinkedPages(f *Fetcher, firstURL string, linkHeader bool) *linkedPages {
	// An unresolvable first URL fails in Get.
	first, _ := f.c.resolve(firstURL)
	return &linkedPages{f: f, firstURL: firstURL, firstPage: first, linkHeader: linkHeader, seen: map[string]bool{}}
}

func (p *linkedPages) first() string { return p.firstURL }

func (p *linkedPages) next(pg fetched) (nextPage, error) {
	if pg.body.count() == 0 {
		return nextPage{}, nil
	}
	p.seen[p.f.c.stripAuth(pg.resp.URL)] = true
	ref, err := p.ref(pg)
	if err != nil || ref == "" {
		return nextPage{}, err
	}
	next, err := resolveRef(pg.resp.URL, ref)
	if err == nil {
		err = p.f.checkNextPage(p.firstPage, pg.resp.URL, next)
	}
	if err == nil && p.seen[p.f.c.stripAuth(next)] {
		err = fmt.Errorf("pagination loop: next url %q repeated at page %d", redact.URL(next), pg.n)
	}
	return nextPage{url: next}, err
}

// ref is the next page's URL as pg names it, maybe relative; "" for none.
func (p *linkedPages) ref(pg fetched) (string, error) {
	if p.linkHeader {
		return nextLink(pg.resp.Header), nil
	}
	return pg.body.next()
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
