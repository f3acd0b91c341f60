// Package examples_test checks the example configurations in this folder:
// that each loads as `pollhook check` would load it, and that each, replayed
// against a fake of its API serving the pages in testdata/<example>/, asks
// for what the real API expects and turns the pages into the right events.
package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/poller"
)

// testSecret is a well-formed Standard Webhooks key.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// Dummy credentials; the fake APIs check that they arrive where each API
// expects them.
const (
	keapToken      = "test-keap-token"
	pipedriveToken = "test-pipedrive-token"
	githubToken    = "test-github-token"
	hubspotToken   = "test-hubspot-token"
	inventoryKey   = "test-inventory-key"
)

// requiredEnv is, per example, every variable it needs: its header comment
// must name each, loading must fail without any one of them, and loading
// with only these must succeed.
var requiredEnv = map[string]map[string]string{
	"keap-contacts.yaml": {
		"KEAP_TOKEN": keapToken, "WEBHOOK_URL": "https://hooks.example.com/keap", "WEBHOOK_SECRET": testSecret,
	},
	"keap-appointments.yaml": {"KEAP_TOKEN": keapToken},
	"pipedrive-deals.yaml":   {"PIPEDRIVE_API_TOKEN": pipedriveToken},
	"github-issues.yaml": {
		"GITHUB_TOKEN": githubToken, "GITHUB_OWNER": "octo-org", "GITHUB_REPO": "hello-world",
		"WEBHOOK_URL": "https://hooks.example.com/github", "WEBHOOK_SECRET": testSecret,
	},
	"hubspot-contacts.yaml": {"HUBSPOT_TOKEN": hubspotToken},
	"generic-snapshot.yaml": {"INVENTORY_API_KEY": inventoryKey},
}

// optionalEnv are variables an example names but has a default for.
var optionalEnv = map[string][]string{
	"generic-snapshot.yaml": {"INVENTORY_API_URL"},
	"github-issues.yaml":    {"GITHUB_API_URL"},
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example configs found")
	}
	return files
}

// headerComment returns the comment lines that open a YAML file.
func headerComment(data []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestExamplesCheck is `pollhook check` of every example: each loads with
// the variables it documents, and fails, naming the variable, without any
// one of them.
func TestExamplesCheck(t *testing.T) {
	replayed := map[string]bool{}
	for _, tc := range replayCases {
		replayed[tc.file] = true
	}
	for _, file := range exampleFiles(t) {
		t.Run(file, func(t *testing.T) {
			env, ok := requiredEnv[file]
			if !ok {
				t.Fatalf("%s has no entry in requiredEnv: list the variables it needs", file)
			}
			if !replayed[file] {
				t.Errorf("%s has no replay case", file)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			header := headerComment(data)
			if len(header) < 200 {
				t.Errorf("header comment is %d bytes; want one saying what the API is, its auth and caveats", len(header))
			}
			for _, name := range append(slices.Sorted(maps.Keys(env)), optionalEnv[file]...) {
				if !strings.Contains(header, name) {
					t.Errorf("header comment does not name the variable %s", name)
				}
			}

			for name, value := range env {
				t.Setenv(name, value)
			}
			for _, name := range optionalEnv[file] {
				unsetenv(t, name)
			}
			cfg, err := config.Load(file)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if filepath.IsAbs(cfg.State.Path) || !strings.HasPrefix(cfg.State.Path, "pollhook-data/") {
				t.Errorf("state.path %q: want a relative path under pollhook-data/", cfg.State.Path)
			}
			if len(cfg.Resources) == 0 || len(cfg.Destinations) == 0 {
				t.Errorf("%d resources, %d destinations; want at least one of each", len(cfg.Resources), len(cfg.Destinations))
			}

			for missing := range env {
				lookup := func(name string) (string, bool) {
					if name == missing {
						return "", false
					}
					v, ok := env[name]
					return v, ok
				}
				_, err := config.Parse(file, data, lookup)
				if err == nil || !strings.Contains(err.Error(), missing) {
					t.Errorf("without %s: got %v, want an error naming it", missing, err)
				}
			}
		})
	}
}

// unsetenv unsets name for the test, restoring it after.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// fakeAPI serves an example's fixture pages. A page may hold {{BASE}}, the
// server's URL, and {{q:NAME}}, the request's query parameter NAME
// (query-escaped), so that next links point back at the fake and carry the
// filters of the request, as real APIs' do.
type fakeAPI struct {
	t      *testing.T
	base   string
	handle func(a *fakeAPI, w http.ResponseWriter, r *http.Request)

	mu    sync.Mutex
	pages map[string][]byte
	reqs  []*url.URL
	// unlisted are records the API holds that no page lists (a walk
	// missed them), by id.
	unlisted map[string]any
}

func newFakeAPI(t *testing.T, fixtures string, handle func(a *fakeAPI, w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", fixtures, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", fixtures, err)
	}
	a := &fakeAPI{t: t, handle: handle, pages: map[string][]byte{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(bytes.ReplaceAll(b, []byte("{{"), []byte("xx"))) {
			t.Fatalf("%s is not JSON", f)
		}
		a.pages[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	a.base = srv.URL
	return a
}

func (a *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.reqs = append(a.reqs, r.URL)
	a.mu.Unlock()
	if r.Method != http.MethodGet {
		a.reject(w, r, "method %s, want GET", r.Method)
		return
	}
	a.handle(a, w, r)
}

var placeholderRE = regexp.MustCompile(`\{\{(BASE|q:[A-Za-z_]+)\}\}`)

// serve answers r with the fixture page name.
func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request, name string) {
	a.mu.Lock()
	body, ok := a.pages[name]
	a.mu.Unlock()
	if !ok {
		a.reject(w, r, "no fixture page %q", name)
		return
	}
	body = placeholderRE.ReplaceAllFunc(body, func(m []byte) []byte {
		key := string(m[2 : len(m)-2])
		if key == "BASE" {
			return []byte(a.base)
		}
		return []byte(url.QueryEscape(r.URL.Query().Get(strings.TrimPrefix(key, "q:"))))
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(body)
}

// reject fails the test and answers 400, which fails the cycle at once.
func (a *fakeAPI) reject(w http.ResponseWriter, r *http.Request, format string, args ...any) {
	a.t.Errorf("request %s: %s", r.URL, fmt.Sprintf(format, args...))
	http.Error(w, `{"message":"rejected by the test"}`, http.StatusBadRequest)
}

// want rejects r unless its query parameters have the values given.
func (a *fakeAPI) want(w http.ResponseWriter, r *http.Request, params map[string]string) bool {
	q := r.URL.Query()
	for k, v := range params {
		if got := q.Get(k); got != v {
			a.reject(w, r, "query parameter %s is %q, want %q", k, got, v)
			return false
		}
	}
	return true
}

// wantHeader rejects r unless its header name has the value given.
func (a *fakeAPI) wantHeader(w http.ResponseWriter, r *http.Request, name, value string) bool {
	if got := r.Header.Get(name); got != value {
		a.reject(w, r, "header %s is %q, want %q", name, got, value)
		return false
	}
	return true
}

// wantPath rejects r unless its path is one of paths.
func (a *fakeAPI) wantPath(w http.ResponseWriter, r *http.Request, paths ...string) bool {
	if !slices.Contains(paths, r.URL.Path) {
		a.reject(w, r, "path %q, want %q", r.URL.Path, paths)
		return false
	}
	return true
}

// requests returns and forgets the URLs requested so far.
func (a *fakeAPI) requests() []*url.URL {
	a.mu.Lock()
	defer a.mu.Unlock()
	reqs := a.reqs
	a.reqs = nil
	return reqs
}

// replace replaces every old in page with new.
func (a *fakeAPI) replace(page, old, new string) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.pages[page]
	if !bytes.Contains(b, []byte(old)) {
		a.t.Fatalf("page %s holds no %q", page, old)
	}
	a.pages[page] = bytes.ReplaceAll(b, []byte(old), []byte(new))
}

// doc returns page decoded (numbers as json.Number), or nil when it is
// not a JSON object.
func (a *fakeAPI) doc(page string) map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	doc, _ := decodePage(a.pages[page])
	return doc
}

// edit decodes page, lets fn change it and encodes it again.
func (a *fakeAPI) edit(page string, fn func(doc map[string]any)) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	doc, err := decodePage(a.pages[page])
	if err != nil {
		a.t.Fatalf("page %s: %v", page, err)
	}
	fn(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		a.t.Fatal(err)
	}
	a.pages[page] = b
}

// decodePage decodes a fixture page, numbers as json.Number.
func decodePage(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// cycle is one poll of a replay, and what it must produce.
type cycle struct {
	name   string
	before func(a *fakeAPI)
	// events are "type object_id", in outbox order.
	events []string
	// occurred maps object ids to the occurred_at their event must have.
	occurred map[string]string
	// since, when set, is the since parameter every request must carry.
	since    string
	heldBack int64
}

type replayCase struct {
	file     string
	resource string
	// pageSize, when set, replaces pagination.limit, so that two short
	// fixture pages make a walk of two pages.
	pageSize int
	handle   func(a *fakeAPI, w http.ResponseWriter, r *http.Request)
	cycles   []cycle
}

// now is the replay's clock: detected_at of every event, and occurred_at of
// the events of records without a date.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

const nowText = "2026-03-10T12:00:00Z"

var replayCases = []replayCase{{
	file:     "keap-contacts.yaml",
	resource: "contacts",
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "Authorization", "Bearer "+keapToken) ||
			!a.wantPath(w, r, "/crm/rest/v1/contacts", "/crm/rest/v1/contacts/") ||
			!a.want(w, r, map[string]string{"order": "id", "order_direction": "ASCENDING", "limit": "1000"}) {
			return
		}
		pages := map[string]string{"": "page1", "1000": "page2", "2000": "page3"}
		if p, ok := pages[r.URL.Query().Get("offset")]; ok {
			a.serve(w, r, p)
			return
		}
		a.reject(w, r, "unexpected offset")
	},
	cycles: []cycle{{
		name:   "backfill",
		since:  "1970-01-01T00:00:00.000Z",
		events: []string{"contact.created 101", "contact.created 102", "contact.created 105", "contact.created 107", "contact.created 110"},
		// Created events occur at date_created, written with +0000.
		occurred: map[string]string{"101": "2025-11-03T16:20:11Z", "110": "2026-01-15T07:59:01Z"},
	}, {
		name: "one contact edited",
		before: func(a *fakeAPI) {
			a.replace("page2", "2026-01-19T11:11:11.000+0000", "2026-01-21T09:30:00.000+0000")
		},
		// The greatest last_updated of the backfill, 2026-01-20T17:05:42,
		// less the minute of lookback.
		since:    "2026-01-20T17:04:42.000Z",
		events:   []string{"contact.updated 107"},
		occurred: map[string]string{"107": "2026-01-21T09:30:00Z"},
	}},
}, {
	file:     "keap-appointments.yaml",
	resource: "appointments",
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "Authorization", "Bearer "+keapToken) ||
			!a.wantPath(w, r, "/crm/rest/v1/appointments", "/crm/rest/v1/appointments/") ||
			!a.want(w, r, map[string]string{"limit": "1000"}) {
			return
		}
		pages := map[string]string{"": "page1", "1000": "page2", "2000": "page3"}
		if p, ok := pages[r.URL.Query().Get("offset")]; ok {
			a.serve(w, r, p)
			return
		}
		a.reject(w, r, "unexpected offset")
	},
	cycles: []cycle{{
		name:     "backfill",
		since:    "1970-01-01T00:00:00.000Z",
		events:   []string{"appointment.created 3001", "appointment.created 3002", "appointment.created 3005"},
		occurred: map[string]string{"3001": nowText, "3005": nowText},
	}, {
		name: "one appointment renamed",
		before: func(a *fakeAPI) {
			a.replace("page1", `"Quarterly review"`, `"Quarterly review (moved)"`)
		},
		// No date to advance the watermark: since stays at the epoch.
		since:    "1970-01-01T00:00:00.000Z",
		events:   []string{"appointment.updated 3002"},
		occurred: map[string]string{"3002": nowText},
	}},
}, {
	file:     "pipedrive-deals.yaml",
	resource: "deals",
	pageSize: 3,
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "Authorization", "") ||
			!a.wantPath(w, r, "/v1/deals") ||
			!a.want(w, r, map[string]string{"api_token": pipedriveToken, "status": "all_not_deleted", "sort": "id ASC", "limit": "3"}) {
			return
		}
		// The fixture pages are the listing at start 0 and 3; pollhook
		// starts each page after the first at the last deal of the one
		// before, so the listing is served from their deals at any start.
		start, err := strconv.Atoi(r.URL.Query().Get("start"))
		if err != nil || start < 0 {
			a.reject(w, r, "unexpected start")
			return
		}
		var deals []any
		for _, p := range []string{"page1", "page2"} {
			d, _ := a.doc(p)["data"].([]any)
			deals = append(deals, d...)
		}
		end := min(start+3, len(deals))
		pagination := map[string]any{"start": start, "limit": 3, "more_items_in_collection": end < len(deals)}
		if end < len(deals) {
			pagination["next_start"] = end
		}
		body, _ := json.Marshal(map[string]any{"success": true, "data": deals[min(start, end):end],
			"additional_data": map[string]any{"pagination": pagination}})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(body)
	},
	cycles: []cycle{{
		name:   "backfill",
		events: []string{"deal.created 1", "deal.created 2", "deal.created 4", "deal.created 6", "deal.created 9"},
		// add_time, read in UTC.
		occurred: map[string]string{"1": "2025-10-01T09:00:00Z", "9": "2026-02-02T23:59:59Z"},
	}, {
		name: "one deal edited",
		before: func(a *fakeAPI) {
			a.replace("page1", "2026-01-30 12:00:01", "2026-02-04 10:20:30")
		},
		events:   []string{"deal.updated 4"},
		occurred: map[string]string{"4": "2026-02-04T10:20:30Z"},
	}},
}, {
	file:     "github-issues.yaml",
	resource: "issues",
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "Authorization", "Bearer "+githubToken) ||
			!a.wantHeader(w, r, "Accept", "application/vnd.github+json") ||
			!a.wantHeader(w, r, "X-GitHub-Api-Version", "2022-11-28") ||
			!a.wantPath(w, r, "/repos/octo-org/hello-world/issues") ||
			!a.want(w, r, map[string]string{"state": "all", "sort": "created", "direction": "asc", "per_page": "100"}) {
			return
		}
		link := func(page, rel string) string {
			u := *r.URL
			q := u.Query()
			q.Set("page", page)
			u.RawQuery = q.Encode()
			return fmt.Sprintf(`<%s%s>; rel=%q`, a.base, u.RequestURI(), rel)
		}
		switch r.URL.Query().Get("page") {
		case "":
			w.Header().Set("Link", link("2", "next")+", "+link("2", "last"))
			a.serve(w, r, "page1")
		case "2":
			w.Header().Set("Link", link("1", "prev")+", "+link("1", "first"))
			a.serve(w, r, "page2")
		default:
			a.reject(w, r, "unexpected page")
		}
	},
	cycles: []cycle{{
		name:  "backfill",
		since: "1970-01-01T00:00:00Z",
		// Pull request #2 is left out.
		events:   []string{"issue.created 1", "issue.created 3", "issue.created 5", "issue.created 8"},
		occurred: map[string]string{"1": "2026-01-04T10:00:00Z", "8": "2026-02-20T18:18:18Z"},
	}, {
		name: "one issue edited",
		before: func(a *fakeAPI) {
			a.replace("page1", "2026-02-11T14:22:05Z", "2026-03-06T07:00:00Z")
		},
		// The greatest updated_at of an issue (#5), less a minute: the pull
		// request's later updated_at does not count.
		since:    "2026-03-05T16:39:00Z",
		events:   []string{"issue.updated 3"},
		occurred: map[string]string{"3": "2026-03-06T07:00:00Z"},
	}},
}, {
	file:     "hubspot-contacts.yaml",
	resource: "contacts",
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "Authorization", "Bearer "+hubspotToken) ||
			!a.wantPath(w, r, "/crm/v3/objects/contacts") ||
			!a.want(w, r, map[string]string{"limit": "100", "archived": "false", "properties": "email,firstname,lastname,phone,company,lifecyclestage"}) {
			return
		}
		switch r.URL.Query().Get("after") {
		case "":
			a.serve(w, r, "page1")
		case "1006":
			a.serve(w, r, "page2")
		default:
			a.reject(w, r, "unexpected after")
		}
	},
	cycles: []cycle{{
		name:     "backfill",
		events:   []string{"contact.created 1001", "contact.created 1002", "contact.created 1005", "contact.created 1006", "contact.created 1010"},
		occurred: map[string]string{"1001": "2025-09-14T12:00:00.123Z", "1010": "2026-03-01T00:00:00Z"},
	}, {
		name: "one contact edited",
		before: func(a *fakeAPI) {
			// updatedAt and the lastmodifieddate property move together.
			a.replace("page1", "2026-01-22T09:00:00.500Z", "2026-03-09T18:45:12.345Z")
		},
		events:   []string{"contact.updated 1005"},
		occurred: map[string]string{"1005": "2026-03-09T18:45:12.345Z"},
	}},
}, {
	file:     "generic-snapshot.yaml",
	resource: "widgets",
	pageSize: 3,
	handle: func(a *fakeAPI, w http.ResponseWriter, r *http.Request) {
		if !a.wantHeader(w, r, "X-API-Key", inventoryKey) {
			return
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/v1/widgets/"); ok {
			// One widget, as item_url asks for it: from the fixtures.
			var all []any
			for _, page := range []string{"page1", "page2"} {
				all = append(all, a.doc(page)["data"].([]any)...)
			}
			a.mu.Lock()
			for _, v := range a.unlisted {
				all = append(all, v)
			}
			a.mu.Unlock()
			for _, v := range all {
				if widget := v.(map[string]any); fmt.Sprint(widget["id"]) == id {
					json.NewEncoder(w).Encode(map[string]any{"data": widget})
					return
				}
			}
			http.Error(w, `{"message":"no such widget"}`, http.StatusNotFound)
			return
		}
		if !a.wantPath(w, r, "/v1/widgets") ||
			!a.want(w, r, map[string]string{"sort": "id", "per_page": "3"}) {
			return
		}
		switch r.URL.Query().Get("page") {
		case "1":
			a.serve(w, r, "page1")
		case "2":
			a.serve(w, r, "page2")
		default:
			a.reject(w, r, "unexpected page")
		}
	},
	cycles: []cycle{{
		name:   "backfill",
		events: []string{"widget.created 17", "widget.created 18", "widget.created 21", "widget.created 25", "widget.created 30"},
		// created_at; #21's is written with +01:00.
		occurred: map[string]string{"21": "2026-01-19T14:45:00Z", "30": "2026-02-28T23:30:00.25Z"},
	}, {
		name: "one widget changed",
		before: func(a *fakeAPI) {
			a.replace("page1", `"Red widget"`, `"Red widget, matte"`)
		},
		events:   []string{"widget.updated 18"},
		occurred: map[string]string{"18": nowText},
	}, {
		name: "one widget gone",
		before: func(a *fakeAPI) {
			a.edit("page2", func(doc map[string]any) {
				doc["data"] = slices.DeleteFunc(doc["data"].([]any), func(v any) bool {
					return v.(map[string]any)["id"] == json.Number("25")
				})
			})
		},
		// Looked up at item_url: 404, deleted at once.
		events:   []string{"widget.deleted 25"},
		occurred: map[string]string{"25": nowText},
	}, {
		// Left out of a listing but still there (a walk the deletes of
		// others shifted): looked up, found, kept; its change reported.
		name: "one widget missed by the walk",
		before: func(a *fakeAPI) {
			a.replace("page1", `"Red widget, matte"`, `"Red widget, gloss"`)
			// Pages of 3: 17 18 21 | 30 shifted by one, as if 18 had moved
			// to the end while page 1 was being read: 17 21 30 | (empty).
			var last any
			a.edit("page2", func(doc map[string]any) {
				last = doc["data"].([]any)[0]
				doc["data"] = []any{}
			})
			a.edit("page1", func(doc map[string]any) {
				doc["data"] = append(slices.DeleteFunc(doc["data"].([]any), func(v any) bool {
					if v.(map[string]any)["id"] == json.Number("18") {
						a.unlisted = map[string]any{"18": v}
						return true
					}
					return false
				}), last)
			})
		},
		events:   []string{"widget.updated 18"},
		occurred: map[string]string{"18": nowText},
	}, {
		// The API answers an empty list: deleting all four would pass the
		// delete_guard of a quarter, so nothing is deleted.
		name: "empty listing held back",
		before: func(a *fakeAPI) {
			a.edit("page1", func(doc map[string]any) { doc["data"] = []any{} })
		},
		heldBack: 4,
	}},
}}

// TestExamplesReplay runs each example's resource against a fake of its
// API: the backfill of `start: beginning` first, then cycles after changes
// to the fixtures.
func TestExamplesReplay(t *testing.T) {
	for _, tc := range replayCases {
		t.Run(tc.file, func(t *testing.T) {
			api := newFakeAPI(t, strings.TrimSuffix(tc.file, ".yaml"), tc.handle)
			for name, value := range requiredEnv[tc.file] {
				t.Setenv(name, value)
			}
			for _, name := range optionalEnv[tc.file] {
				unsetenv(t, name)
			}
			cfg, err := config.Load(tc.file)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			res := cfg.Resource(tc.resource)
			if res == nil {
				t.Fatalf("no resource %q", tc.resource)
			}
			res.Start = config.StartBeginning
			if tc.pageSize > 0 {
				res.Pagination.Limit = tc.pageSize
			}
			src := cfg.Source(res.Source)
			// Keep the base URL's path, so that the fake sees the real paths.
			base, err := url.Parse(src.BaseURL)
			if err != nil {
				t.Fatal(err)
			}
			src.BaseURL = api.base + base.Path
			// The replay's clock does not move, so a rate limit's tokens
			// would never come back: the example's limit is checked by
			// TestExamplesCheck, not here.
			src.RateLimit = nil

			ctx := context.Background()
			store, err := cursor.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			p, err := poller.New(res, src, store, poller.Options{
				Now: func() time.Time { return now },
				Sleep: func(context.Context, time.Duration) error {
					return errors.New("the replay does not retry")
				},
			})
			if err != nil {
				t.Fatal(err)
			}

			held, err := store.AcquireLeases(ctx, "test", []string{cursor.ResourceLease(res.Name)}, 365*24*time.Hour, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.cycles {
				if c.before != nil {
					c.before(api)
				}
				before, err := store.LastSeq(ctx)
				if err != nil {
					t.Fatal(err)
				}
				result, err := p.Cycle(ctx, held[0])
				if err != nil {
					t.Fatalf("%s: cycle: %v", c.name, err)
				}
				if result.HeldBack != c.heldBack {
					t.Errorf("%s: %d deletes held back, want %d", c.name, result.HeldBack, c.heldBack)
				}
				for _, u := range api.requests() {
					if got := u.Query().Get("since"); c.since != "" && got != c.since {
						t.Errorf("%s: request %s: since is %q, want %q", c.name, u, got, c.since)
					}
				}

				var got []string
				occurred := map[string]string{}
				err = store.EachEvent(ctx, cursor.EventFilter{Resource: res.Name, AfterSeq: before}, func(ev cursor.Event) error {
					got = append(got, ev.Type+" "+ev.ObjectID)
					occurred[ev.ObjectID] = ev.OccurredAt.UTC().Format(time.RFC3339Nano)
					if ev.Source != src.Name || ev.Object != res.Object {
						t.Errorf("%s: event %s %s has source %q and object %q, want %q and %q",
							c.name, ev.Type, ev.ObjectID, ev.Source, ev.Object, src.Name, res.Object)
					}
					if !ev.DetectedAt.Equal(now) {
						t.Errorf("%s: event %s %s detected at %s, want %s", c.name, ev.Type, ev.ObjectID, ev.DetectedAt, now)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, c.events) {
					t.Errorf("%s: events\n  %q\nwant\n  %q", c.name, got, c.events)
				}
				for id, want := range c.occurred {
					if occurred[id] != want {
						t.Errorf("%s: occurred_at of %s is %q, want %q", c.name, id, occurred[id], want)
					}
				}
			}
		})
	}
}
