package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pollhook/pollhook/config"
)

// walkPages runs one Each over srv and returns the ids of every page, in
// order, and the URLs (path and query) the server saw.
func walkPages(t *testing.T, srv *httptest.Server, r config.Resource, firstURL string, src config.Source) ([]string, []Page, error) {
	t.Helper()
	if r.Name == "" {
		r.Name = "things"
	}
	src.BaseURL = srv.URL + "/api/v1"
	c := newClient(t, src, &sleeps{})
	x := newExtractor(t, &r)
	f := NewFetcher(&r, c, x)
	var got []string
	var pages []Page
	err := f.Each(context.Background(), firstURL, func(p Page) error {
		pages = append(pages, p)
		got = append(got, ids(p.Records)...)
		return nil
	})
	return got, pages, err
}

// records are the upstream's records 1…n.
func records(from, to int) []map[string]any {
	var out []map[string]any
	for i := from; i <= to; i++ {
		out = append(out, map[string]any{"id": i})
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// requests records the requests a server saw.
type requests struct {
	mu   sync.Mutex
	urls []string
}

func (q *requests) add(r *http.Request) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.urls = append(q.urls, r.URL.RequestURI())
}

func (q *requests) list() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.urls)
}

func atoi(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func TestPaginationTypes(t *testing.T) {
	const total = 7
	all := []string{"1", "2", "3", "4", "5", "6", "7"}
	firstPage0 := 0
	tests := []struct {
		name     string
		r        config.Resource
		first    string
		handler  func(w http.ResponseWriter, r *http.Request)
		wantURLs []string
		want     []string
	}{
		{
			name:  "none",
			r:     config.Resource{Items: ".data"},
			first: "/items?q=x",
			handler: func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, map[string]any{"data": records(1, 3)})
			},
			wantURLs: []string{"/api/v1/items?q=x"},
			want:     []string{"1", "2", "3"},
		},
		{
			name:  "offset",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageOffset, Limit: 3}},
			first: "/items?offset=50&q=a%20b&limit=9",
			handler: func(w http.ResponseWriter, r *http.Request) {
				off, lim := atoi(r.URL.Query().Get("offset"), -1), atoi(r.URL.Query().Get("limit"), -1)
				writeJSON(w, map[string]any{"data": records(off+1, min(off+lim, total))})
			},
			// Each page after the first starts at the last record of the
			// one before.
			wantURLs: []string{
				"/api/v1/items?q=a%20b&offset=0&limit=3",
				"/api/v1/items?q=a%20b&offset=2&limit=3",
				"/api/v1/items?q=a%20b&offset=4&limit=3",
				"/api/v1/items?q=a%20b&offset=6&limit=3",
			},
			want: all,
		},
		{
			name:  "offset with custom params, ending on the overlap record",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageOffset, Limit: 7, OffsetParam: "skip", LimitParam: "top"}},
			first: "/items",
			handler: func(w http.ResponseWriter, r *http.Request) {
				off := atoi(r.URL.Query().Get("skip"), -1)
				writeJSON(w, map[string]any{"data": records(off+1, min(off+7, total))})
			},
			wantURLs: []string{"/api/v1/items?skip=0&top=7", "/api/v1/items?skip=6&top=7"},
			want:     all,
		},
		{
			name:  "page",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PagePage, Limit: 3, PageParam: "p", LimitParam: "per_page"}},
			first: "/items?p=9",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p := atoi(r.URL.Query().Get("p"), -1)
				writeJSON(w, map[string]any{"data": records((p-1)*3+1, min(p*3, total))})
			},
			wantURLs: []string{"/api/v1/items?p=1&per_page=3", "/api/v1/items?p=2&per_page=3", "/api/v1/items?p=3&per_page=3"},
			want:     all,
		},
		{
			name:  "page from 0",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PagePage, Limit: 4, FirstPage: &firstPage0}},
			first: "/items",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p := atoi(r.URL.Query().Get("page"), -1)
				writeJSON(w, map[string]any{"data": records(p*4+1, min(p*4+4, total))})
			},
			wantURLs: []string{"/api/v1/items?page=0&limit=4", "/api/v1/items?page=1&limit=4"},
			want:     all,
		},
		{
			name:  "cursor",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageCursor, CursorParam: "after", NextCursor: ".meta.next"}},
			first: "/items?since=2024",
			handler: func(w http.ResponseWriter, r *http.Request) {
				from := 1
				if a := r.URL.Query().Get("after"); a != "" {
					from = atoi(strings.TrimPrefix(a, "c"), -1) + 1
				}
				to := min(from+2, total)
				next := any(nil)
				if to < total {
					next = "c" + strconv.Itoa(to)
				}
				writeJSON(w, map[string]any{"data": records(from, to), "meta": map[string]any{"next": next}})
			},
			wantURLs: []string{"/api/v1/items?since=2024", "/api/v1/items?since=2024&after=c3", "/api/v1/items?since=2024&after=c6"},
			want:     all,
		},
		{
			name:  "cursor by jq, numeric, ending on an empty string",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageCursor, NextCursor: `.paging | if .more then .last else "" end`}},
			first: "/items",
			handler: func(w http.ResponseWriter, r *http.Request) {
				from := atoi(r.URL.Query().Get("cursor"), 0) + 1
				to := min(from+3, total)
				writeJSON(w, map[string]any{"data": records(from, to), "paging": map[string]any{"more": to < total, "last": to}})
			},
			wantURLs: []string{"/api/v1/items", "/api/v1/items?cursor=4"},
			want:     all,
		},
		{
			name:  "next_url relative",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: "links.next"}},
			first: "/items",
			handler: func(w http.ResponseWriter, r *http.Request) {
				from := atoi(r.URL.Query().Get("from"), 1)
				to := min(from+2, total)
				next := ""
				if to < total {
					// Relative to /api/v1/items: RFC 3986 gives /api/v1/items?from=…
					next = "items?from=" + strconv.Itoa(to+1)
				}
				writeJSON(w, map[string]any{"data": records(from, to), "links": map[string]any{"next": next}})
			},
			wantURLs: []string{"/api/v1/items", "/api/v1/items?from=4", "/api/v1/items?from=7"},
			want:     all,
		},
		{
			name:  "next_url absolute, ending on a missing key",
			r:     config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: ".next"}},
			first: "/items",
			handler: func(w http.ResponseWriter, r *http.Request) {
				from := atoi(r.URL.Query().Get("from"), 1)
				to := min(from+3, total)
				body := map[string]any{"data": records(from, to)}
				if to < total {
					body["next"] = "http://" + r.Host + "/other/items?from=" + strconv.Itoa(to+1)
				}
				writeJSON(w, body)
			},
			wantURLs: []string{"/api/v1/items", "/other/items?from=5"},
			want:     all,
		},
		{
			name:  "link_header",
			r:     config.Resource{Pagination: config.Pagination{Type: config.PageLinkHeader}},
			first: "/items?per_page=3",
			handler: func(w http.ResponseWriter, r *http.Request) {
				from := atoi(r.URL.Query().Get("from"), 1)
				to := min(from+2, total)
				links := []string{`</api/v1/items?per_page=3&from=1>; rel="first"`}
				if to < total {
					links = append(links, fmt.Sprintf(`</api/v1/items?per_page=3&from=%d>; rel="next"`, to+1))
				}
				w.Header().Add("Link", strings.Join(links, ", "))
				w.Header().Add("Link", `</api/v1/items?per_page=3&from=7>; rel="last"`)
				writeJSON(w, records(from, to))
			},
			wantURLs: []string{"/api/v1/items?per_page=3", "/api/v1/items?per_page=3&from=4", "/api/v1/items?per_page=3&from=7"},
			want:     all,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen requests
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen.add(r)
				tt.handler(w, r)
			}))
			defer srv.Close()
			got, pages, err := walkPages(t, srv, tt.r, tt.first, config.Source{})
			if err != nil {
				t.Fatalf("Each: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids = %q, want %q", got, tt.want)
			}
			if urls := seen.list(); !slices.Equal(urls, tt.wantURLs) {
				t.Errorf("requests =\n  %q\nwant\n  %q", urls, tt.wantURLs)
			}
			for i, p := range pages {
				if p.Number != i+1 {
					t.Errorf("page %d has Number %d", i+1, p.Number)
				}
				if !strings.HasPrefix(p.URL, srv.URL) {
					t.Errorf("page %d URL %q is not absolute", p.Number, p.URL)
				}
			}
		})
	}
}

func TestPaginationLoops(t *testing.T) {
	tests := []struct {
		name    string
		r       config.Resource
		handler func(w http.ResponseWriter, r *http.Request)
		want    string
		pages   int
	}{
		{
			name: "cursor",
			r:    config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageCursor, NextCursor: ".next"}},
			handler: func(w http.ResponseWriter, r *http.Request) {
				// c1 → c2 → c1 …
				next := "c1"
				if r.URL.Query().Get("cursor") == "c1" {
					next = "c2"
				}
				writeJSON(w, map[string]any{"data": records(1, 1), "next": next})
			},
			want:  `pagination loop: next cursor "c1" repeated at page 3`,
			pages: 3,
		},
		{
			name: "next_url back to the first page",
			r:    config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: ".next"}},
			handler: func(w http.ResponseWriter, r *http.Request) {
				next := "/api/v1/items?p=2"
				if r.URL.Query().Get("p") == "2" {
					next = "/api/v1/items"
				}
				writeJSON(w, map[string]any{"data": records(1, 1), "next": next})
			},
			want:  `pagination loop: next url "http://127.0.0.1`,
			pages: 2,
		},
		{
			name: "link header to itself",
			r:    config.Resource{Pagination: config.Pagination{Type: config.PageLinkHeader}},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `<items>; rel="next"`)
				writeJSON(w, records(1, 1))
			},
			want:  `/api/v1/items" repeated at page 1`,
			pages: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(tt.handler))
			defer srv.Close()
			_, pages, err := walkPages(t, srv, tt.r, "/items", config.Source{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if len(pages) != tt.pages {
				t.Errorf("fn got %d pages, want %d", len(pages), tt.pages)
			}
		})
	}
}

func TestMaxPages(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := atoi(r.URL.Query().Get("page"), 1)
		writeJSON(w, records(p*2-1, p*2)) // always full: never ends
	}))
	defer srv.Close()
	r := config.Resource{Pagination: config.Pagination{Type: config.PagePage, Limit: 2, MaxPages: 3}}
	got, pages, err := walkPages(t, srv, r, "/items", config.Source{})
	want := "pagination reached max_pages 3 with more pages to fetch: the cycle is incomplete; raise resources[things].pagination.max_pages"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "read page 3 at ") {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	if len(pages) != 3 || len(got) != 6 {
		t.Errorf("got %d pages, %d ids; want 3 pages, 6 ids", len(pages), len(got))
	}

	// Exactly max_pages pages, the last one short: complete.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := atoi(r.URL.Query().Get("page"), 1)
		writeJSON(w, records(p*2-1, min(p*2, 5)))
	}))
	defer srv2.Close()
	if got, _, err := walkPages(t, srv2, r, "/items", config.Source{}); err != nil || len(got) != 5 {
		t.Errorf("3 pages with max_pages 3: %d ids, err = %v; want 5 ids, no error", len(got), err)
	}
}

func TestEachErrors(t *testing.T) {
	const secret = "k-secret-1234"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("page") {
		case "1":
			writeJSON(w, records(1, 2))
		case "2":
			if r.URL.Path == "/api/v1/html" {
				fmt.Fprintf(w, "<html>bad key %s</html>", r.URL.Query().Get("key"))
				return
			}
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	r := config.Resource{Pagination: config.Pagination{Type: config.PagePage, Limit: 2}}
	src := config.Source{Retry: config.FetchRetry{Attempts: 1}, Auth: config.Auth{Type: config.AuthQuery, Name: "key", Value: secret}}

	_, pages, err := walkPages(t, srv, r, "/items", src)
	if err == nil || !strings.Contains(err.Error(), "fetch page 2: get "+srv.URL+"/api/v1/items?page=REDACTED&limit=REDACTED after 1 attempt: 500") {
		t.Errorf("err = %v, want it to name page 2, its URL and the status", err)
	}
	if len(pages) != 1 {
		t.Errorf("fn got %d pages before the failure, want 1", len(pages))
	}

	_, _, err = walkPages(t, srv, r, "/html", src)
	if err == nil || !strings.Contains(err.Error(), "read page 2 at "+srv.URL+"/api/v1/html?page=REDACTED&limit=REDACTED: decode body: got HTML") {
		t.Errorf("err = %v, want it to name page 2 and say HTML", err)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("error holds the secret: %v", err)
	}

	// An error from fn stops the walk and comes back as is.
	stop := errors.New("stop")
	c := newClient(t, config.Source{BaseURL: srv.URL + "/api/v1"}, nil)
	r.Name = "things"
	f := NewFetcher(&r, c, newExtractor(t, &r))
	calls := 0
	err = f.Each(context.Background(), "/items", func(Page) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("Each = %v after %d calls, want fn's error after 1", err, calls)
	}
}

func TestEmptyPageStopsCursor(t *testing.T) {
	var seen requests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		writeJSON(w, map[string]any{"data": []any{}, "next": "more"})
	}))
	defer srv.Close()
	r := config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageCursor, NextCursor: ".next"}}
	if _, _, err := walkPages(t, srv, r, "/items", config.Source{}); err != nil {
		t.Fatal(err)
	}
	if n := len(seen.list()); n != 1 {
		t.Errorf("an empty page with a next cursor led to %d requests, want 1", n)
	}
}

func TestParseLinks(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		next   string
	}{
		{"github", []string{`<https://api.github.com/repos?page=2>; rel="next", <https://api.github.com/repos?page=5>; rel="last"`}, "https://api.github.com/repos?page=2"},
		{"several rels", []string{`<https://x/last?a=1,2>; rel="next last"`}, "https://x/last?a=1,2"},
		{"unquoted, mixed case", []string{`</p/2>;REL=Next`}, "/p/2"},
		{"two headers", []string{`</p/1>; rel="prev"`, `</p/3>; rel="next"`}, "/p/3"},
		{"other params first", []string{`</p/9>; title="a, b; c"; rel="next"`}, "/p/9"},
		{"first rel wins", []string{`</p/4>; rel="prev"; rel="next", </p/5>; rel=next`}, "/p/5"},
		{"nextish is not next", []string{`</p/6>; rel="next-page"`}, ""},
		{"no next", []string{`</p/1>; rel="first"`}, ""},
		{"garbage", []string{`junk, ; rel=next, <`, `</ok>; rel=next`}, "/ok"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Link", v)
			}
			if got := nextLink(h); got != tt.next {
				t.Errorf("nextLink(%q) = %q, want %q (links %+v)", tt.values, got, tt.next, parseLinks(tt.values))
			}
		})
	}
}

func TestSetURLQuery(t *testing.T) {
	tests := []struct {
		raw  string
		kv   []string
		want string
	}{
		{"/items", []string{"offset", "0"}, "/items?offset=0"},
		{"/items?since=2024-01-01T00%3A00%3A00Z&offset=5", []string{"offset", "10", "limit", "5"}, "/items?since=2024-01-01T00%3A00%3A00Z&offset=10&limit=5"},
		{"https://x/a?after=1&after=2#top", []string{"after", "a b&c"}, "https://x/a?after=a+b%26c#top"},
	}
	for _, tt := range tests {
		got := setURLQuery(tt.raw, tt.kv...)
		if got != tt.want {
			t.Errorf("setURLQuery(%q, %q) = %q, want %q", tt.raw, tt.kv, got, tt.want)
		}
		if _, err := url.Parse(got); err != nil {
			t.Errorf("setURLQuery gave an invalid url %q: %v", got, err)
		}
	}
}

// credentialSpy records the requests a server got and the credentials they
// carried.
type credentialSpy struct {
	mu   sync.Mutex
	got  []string // "URI credentials" per request
	srv  *httptest.Server
	body any
}

func newCredentialSpy(t *testing.T, body any) *credentialSpy {
	s := &credentialSpy{body: body}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.URL.RequestURI()+" "+r.Header.Get("Authorization")+r.Header.Get("X-Api-Key"))
		s.mu.Unlock()
		writeJSON(w, s.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *credentialSpy) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func TestNextPageOnAnotherHostIsRefused(t *testing.T) {
	auths := map[string]config.Auth{
		"bearer": {Type: config.AuthBearer, Token: "tok-secret-1"},
		"basic":  {Type: config.AuthBasic, Username: "u", Password: "pw-secret-1"},
		"header": {Type: config.AuthHeader, Name: "X-Api-Key", Value: "key-secret-1"},
		"query":  {Type: config.AuthQuery, Name: "api_key", Value: "key-secret-1"},
	}
	pagings := map[string]config.Resource{
		"next_url":    {Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: ".next"}},
		"link_header": {Items: ".data", Pagination: config.Pagination{Type: config.PageLinkHeader}},
	}
	for authName, auth := range auths {
		for pagingName, r := range pagings {
			t.Run(pagingName+"/"+authName, func(t *testing.T) {
				other := newCredentialSpy(t, map[string]any{"data": records(3, 4)})
				nextURL := other.srv.URL + "/items?p=2"
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Link", "<"+nextURL+`>; rel="next"`)
					writeJSON(w, map[string]any{"data": records(1, 2), "next": nextURL})
				}))
				defer srv.Close()
				_, pages, err := walkPages(t, srv, r, "/items", config.Source{Auth: auth})
				want := "read page 1 at " + srv.URL + "/api/v1/items: pagination: next page " + other.srv.URL + "/items?p=REDACTED" +
					" is on another host than base_url; pollhook does not send credentials there"
				if err == nil || err.Error() != want {
					t.Errorf("err = %v\nwant %s", err, want)
				}
				if got := other.requests(); len(got) > 0 {
					t.Errorf("the other host got %q", got)
				}
				if len(pages) != 1 {
					t.Errorf("fn got %d pages, want the first one", len(pages))
				}
			})
		}
	}
}

func TestNextPageOnTheFirstPageHost(t *testing.T) {
	// The resource's url names another host than base_url: next pages on
	// that host are followed.
	var seen requests
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		if r.URL.Query().Get("p") == "2" {
			writeJSON(w, map[string]any{"data": records(3, 3)})
			return
		}
		writeJSON(w, map[string]any{"data": records(1, 2), "next": srv.URL + "/v2/items?p=2"})
	}))
	defer srv.Close()
	elsewhere := newCredentialSpy(t, map[string]any{})
	r := config.Resource{Name: "things", Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: ".next"}}
	c := newClient(t, config.Source{BaseURL: elsewhere.srv.URL + "/api", Auth: config.Auth{Type: config.AuthBearer, Token: "tok-1"}}, nil)
	f := NewFetcher(&r, c, newExtractor(t, &r))
	var got []string
	err := f.Each(context.Background(), srv.URL+"/v2/items", func(p Page) error {
		got = append(got, ids(p.Records)...)
		return nil
	})
	if err != nil || !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("Each = %v, ids %q; want no error and 1, 2, 3", err, got)
	}
	if urls := seen.list(); !slices.Equal(urls, []string{"/v2/items", "/v2/items?p=2"}) {
		t.Errorf("requests = %q", urls)
	}
}

// plainHTTPSpy is a transport that records, and refuses, every plain http
// request, with the credential it would have carried.
type plainHTTPSpy struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	sent []string
}

func (s *plainHTTPSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		s.mu.Lock()
		s.sent = append(s.sent, r.URL.String()+" "+r.Header.Get("Authorization"))
		s.mu.Unlock()
		return nil, errors.New("plain http refused by the test")
	}
	return s.rt.RoundTrip(r)
}

func (s *plainHTTPSpy) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func TestNextPageDowngradeIsRefused(t *testing.T) {
	var nextURL string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"data": records(1, 2), "next": nextURL})
	}))
	defer srv.Close()
	// The same host and port, without TLS.
	nextURL = "http://" + srv.Listener.Addr().String() + "/api/v1/items?p=2"
	spy := &plainHTTPSpy{rt: srv.Client().Transport}
	c, err := NewClient(config.Source{Name: "api", BaseURL: srv.URL + "/api/v1", Auth: config.Auth{Type: config.AuthBearer, Token: "tok-secret-1"}},
		ClientOptions{Transport: spy, Sleep: (&sleeps{}).sleep})
	if err != nil {
		t.Fatal(err)
	}
	r := config.Resource{Name: "things", Items: ".data", Pagination: config.Pagination{Type: config.PageNextURL, NextURL: ".next"}}
	f := NewFetcher(&r, c, newExtractor(t, &r))
	err = f.Each(context.Background(), "/items", func(Page) error { return nil })
	want := "pagination: next page " + strings.TrimSuffix(nextURL, "2") + "REDACTED leaves https for plain http; pollhook does not send credentials unencrypted"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant it to contain %s", err, want)
	}
	if sent := spy.list(); len(sent) > 0 {
		t.Errorf("sent over plain http: %q", sent)
	}
}

// TestOffsetPagesOfOneRecord: pages of one record leave no room for
// overlap; the walk asks for each offset in turn and ends on an empty page.
func TestOffsetPagesOfOneRecord(t *testing.T) {
	var seen requests
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r)
		off := atoi(r.URL.Query().Get("offset"), -1)
		writeJSON(w, records(off+1, min(off+1, 3)))
	}))
	defer srv.Close()
	r := config.Resource{Pagination: config.Pagination{Type: config.PageOffset, Limit: 1}}
	got, _, err := walkPages(t, srv, r, "/items", config.Source{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
		t.Errorf("ids = %q, want %q", got, want)
	}
	wantURLs := []string{"/api/v1/items?offset=0&limit=1", "/api/v1/items?offset=1&limit=1", "/api/v1/items?offset=2&limit=1", "/api/v1/items?offset=3&limit=1"}
	if urls := seen.list(); !slices.Equal(urls, wantURLs) {
		t.Errorf("requests =\n  %q\nwant\n  %q", urls, wantURLs)
	}
}
