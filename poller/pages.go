package poller

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/config"
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
// The resource's pagination type decides which pages and where the walk
// ends (see paginator); parameters that Each sets replace those of the
// same name in firstURL. The walk fails with an error naming the page and
// its URL when a page cannot be fetched or read, when the next page cannot
// be worked out (a next cursor or URL that repeats, a loop; a next URL
// that would take the source's credentials elsewhere), or when max_pages
// pages have been read and more remain; fn still gets the page whose body
// revealed a loop or max_pages. An error from fn stops the walk and is
// returned as is.
func (f *Fetcher) Each(ctx context.Context, firstURL string, fn func(Page) error) error {
	p, err := f.paginator(firstURL)
	if err != nil {
		return err
	}
	next := p.first()
	for n := 1; ; n++ {
		resp, err := f.c.Get(ctx, next)
		if err != nil {
			return fmt.Errorf("fetch page %d: %w", n, err)
		}
		shown := redact.URL(resp.URL)
		// Paging counts the records the API sent, before the filter.
		body, err := f.x.readPage(resp.Body)
		if err != nil {
			// The error quotes the body, which may echo a credential.
			return f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, err))
		}

		// Work out the next page before fn, so that the body can go.
		np, nextErr := p.next(fetched{n: n, resp: resp, body: body})
		body.doc = nil
		if nextErr == nil && np.url != "" && n >= f.maxPages {
			nextErr = fmt.Errorf("pagination reached max_pages %d with more pages to fetch: the cycle is incomplete; raise resources[%s].pagination.max_pages", f.maxPages, f.name)
		}
		if nextErr != nil {
			nextErr = f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, nextErr))
		}

		if np.skip {
			if nextErr != nil {
				return nextErr
			}
			next = np.url
			continue
		}
		recs, skips, err := body.records(np.reread)
		if err != nil {
			return f.c.scrub(fmt.Errorf("read page %d at %s: %w", n, shown, err))
		}
		for i := range skips {
			skips[i].Index += np.reread
		}
		date, _ := http.ParseTime(resp.Header.Get("Date"))
		if err := fn(Page{Number: n, URL: shown, Records: recs, Skips: skips, Date: date}); err != nil {
			return err
		}
		if nextErr != nil {
			return nextErr
		}
		if np.url == "" {
			return nil
		}
		next = np.url
	}
}

// paginator is one walk's pagination: it names the first page and, from
// each page fetched, works out whether fn gets it and which page comes
// next. Each pagination type has its own:
//
//	none         onePage
//	offset       offsetWalk (numberedPages for a limit of 1)
//	page         numberedPages
//	cursor       cursorPages
//	next_url     linkedPages, the next page named in the body
//	link_header  linkedPages, the next page named in the Link header
//
// A paginator keeps the state of one walk (what it has seen, where it
// stands): Fetcher.paginator makes a new one for each.
type paginator interface {
	// first returns the URL of the walk's first page.
	first() string
	// next judges page pg and works out the page after it. An error
	// ends the walk; fn still gets the page unless it is skipped.
	next(pg fetched) (nextPage, error)
}

// fetched is a page as read, before fn gets it.
type fetched struct {
	n    int // counts pages from 1 within the walk
	resp *Response
	body *pageBody
}

// nextPage is a paginator's verdict on a page. The zero value gives fn
// the whole page and ends the walk.
type nextPage struct {
	// url is the page to fetch next; "" when the walk ends here.
	url string
	// reread is how many of the page's first items fn has had already:
	// fn gets the rest.
	reread int
	// skip keeps the page from fn, and the walk goes on at url instead.
	skip bool
}

// paginator returns a new walk from firstURL for the resource's
// pagination type.
func (f *Fetcher) paginator(firstURL string) (paginator, error) {
	switch f.p.Type {
	case config.PageNone:
		return onePage{url: firstURL}, nil
	case config.PageOffset:
		return newOffsetWalk(f, firstURL), nil
	case config.PagePage:
		return &numberedPages{f: f, firstURL: firstURL, param: f.p.PageParam, from: f.firstPage}, nil
	case config.PageCursor:
		return &cursorPages{f: f, firstURL: firstURL, seen: map[string]bool{}}, nil
	case config.PageNextURL, config.PageLinkHeader:
		return newLinkedPages(f, firstURL, f.p.Type == config.PageLinkHeader), nil
	}
	return nil, fmt.Errorf("resources[%s].pagination.type: want none, offset, page, cursor, next_url or link_header (got %q)", f.name, f.p.Type)
}

// limited is u with param=n and limit_param=limit: the pages of a walk
// that counts its way through the listing.
func (f *Fetcher) limited(u, param string, n int) string {
	return setURLQuery(u, param, strconv.Itoa(n), f.p.LimitParam, strconv.Itoa(f.limit))
}
