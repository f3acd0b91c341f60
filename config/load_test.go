package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testSecret is a valid Standard Webhooks key.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// testEnv is the environment the testdata files are loaded with.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"POLLHOOK_TOKEN": "tok-pollhook",
		"KEAP_TOKEN":     "tok-keap",
		"WEBHOOK_SECRET": testSecret,
		"CRM_SECRET":     "crm: secret # not a comment",
		"BILLING_KEY":    "bk",
		"EMPTY":          "",
	}[name]
	return v, ok
}

func load(t *testing.T, file string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(file, data, testEnv)
}

func mustLoad(t *testing.T, file string) *Config {
	t.Helper()
	c, err := load(t, file)
	if err != nil {
		t.Fatalf("load %s:\n%v", file, err)
	}
	return c
}

func eq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestGoodConfigs(t *testing.T) {
	tests := map[string]func(t *testing.T, c *Config){
		"minimal.good.yaml": func(t *testing.T, c *Config) {
			eq(t, "state.path", c.State.Path, DefaultStatePath)
			eq(t, "state.lease", c.State.Lease.D(), DefaultLease)
			eq(t, "http.listen", c.HTTP.Listen, "")
			s := c.Source("api")
			eq(t, "auth.type", s.Auth.Type, AuthNone)
			eq(t, "timeout", s.Timeout.D(), DefaultTimeout)
			eq(t, "retry.attempts", s.Retry.Attempts, DefaultFetchAttempts)
			eq(t, "retry.max_wait", s.Retry.MaxWait.D(), DefaultFetchMaxWait)
			eq(t, "max_body_bytes", s.MaxBodyBytes, ByteSize(DefaultMaxBodyBytes))
			eq(t, "rate_limit", s.RateLimit, nil)
			r := c.Resource("items")
			eq(t, "schedule", r.Schedule.Every, 5*time.Minute)
			eq(t, "schedule.spec", r.Schedule.Spec, DefaultSchedule)
			eq(t, "items", r.Items, DefaultItems)
			eq(t, "id_field", r.IDField, DefaultIDField)
			eq(t, "pagination.type", r.Pagination.Type, PageNone)
			eq(t, "pagination.limit", r.Pagination.Limit, 0)
			eq(t, "pagination.max_pages", r.Pagination.MaxPages, DefaultMaxPages)
			eq(t, "deletes", r.Deletes, DeletesNone)
			eq(t, "delete_guard", *r.DeleteGuard, DefaultDeleteGuard)
			eq(t, "lookback", r.Lookback.D(), DefaultLookback)
			eq(t, "created_tolerance", r.CreatedTolerance.D(), DefaultCreatedTolerance)
			eq(t, "start", r.Start, StartNow)
			eq(t, "event_names", r.EventNames, EventNamesPollhook)
			eq(t, "keep_content", r.KeepContent, true)
			eq(t, "transform", r.Transform, "")
			eq(t, "template", r.Template.String(), "/items")
			eq(t, "dates.updated", r.Dates.Updated, nil)
			eq(t, "event type", r.EventType(VerbCreated), "item.created")
			d := c.Destination("console")
			if !slices.Equal(d.Events, []string{"*.*"}) {
				t.Errorf("events = %v, want [*.*]", d.Events)
			}
			eq(t, "format", d.Format, DefaultFormat)
			eq(t, "batch.max_events", d.Batch.MaxEvents, DefaultMaxEvents)
			eq(t, "timeout", d.Timeout.D(), DefaultTimeout)
			eq(t, "ordering", d.Ordering, DefaultOrdering)
			eq(t, "max_in_flight", d.MaxInFlight, DefaultMaxInFlight)
			eq(t, "retry.schedule", len(d.Retry.Schedule), len(DefaultRetrySchedule))
			for i, w := range DefaultRetrySchedule {
				eq(t, "retry.schedule[i]", d.Retry.Schedule[i].D(), w)
			}
			eq(t, "file", c.File, "minimal.good.yaml")
		},
		"design.good.yaml": func(t *testing.T, c *Config) {
			eq(t, "http.listen", c.HTTP.Listen, "127.0.0.1:8080")
			eq(t, "http.token", string(c.HTTP.Token), "tok-pollhook")
			s := c.Source("keap")
			eq(t, "auth.type", s.Auth.Type, AuthBearer)
			eq(t, "auth.token", string(s.Auth.Token), "tok-keap")
			eq(t, "headers", s.Headers["Accept"], "application/json")
			eq(t, "rate_limit.burst", s.RateLimit.Burst, 10)
			r := c.Resource("contacts")
			eq(t, "source", r.Source, "keap")
			eq(t, "has since", r.Template.HasSince(), true)
			eq(t, "pagination.limit", r.Pagination.Limit, 1000)
			eq(t, "pagination.offset_param", r.Pagination.OffsetParam, "offset")
			eq(t, "pagination.limit_param", r.Pagination.LimitParam, "limit")
			if r.Dates.Updated == nil || r.Dates.Created == nil {
				t.Fatalf("dates not parsed: %+v", r.Dates)
			}
			eq(t, "updated.field", r.Dates.Updated.Field, "last_updated")
			eq(t, "created.field", r.Dates.Created.Field, "date_created")
			got, err := r.Dates.Updated.Format.Parse("2026-11-22T10:04:05.123Z", r.Dates.Updated.Location)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "parsed date", got.Equal(time.Date(2026, 11, 22, 10, 4, 5, 123e6, time.UTC)), true)
			since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			eq(t, "expanded url", r.Template.Expand(since, nil), "/contacts?since=2026-01-02T03%3A04%3A05.000Z&order=date_updated")
			d := c.Destination("my-app")
			eq(t, "secret", string(d.Secret), testSecret)
			eq(t, "retry.schedule[6]", d.Retry.Schedule[6].D(), 10*time.Hour)
		},
		"page_offset.good.yaml": func(t *testing.T, c *Config) {
			pg := c.Resources[0].Pagination
			eq(t, "type", pg.Type, PageOffset)
			eq(t, "limit", pg.Limit, DefaultPageLimit)
			eq(t, "offset_param", pg.OffsetParam, "offset")
			eq(t, "limit_param", pg.LimitParam, "limit")
			eq(t, "source defaults to the only one", c.Resources[0].Source, "api")
		},
		"page_page.good.yaml": func(t *testing.T, c *Config) {
			pg := c.Resources[0].Pagination
			eq(t, "type", pg.Type, PagePage)
			eq(t, "limit", pg.Limit, 50)
			eq(t, "page_param", pg.PageParam, "p")
			eq(t, "limit_param", pg.LimitParam, "per_page")
			eq(t, "first_page", *pg.FirstPage, 0)
		},
		"page_cursor.good.yaml": func(t *testing.T, c *Config) {
			r := c.Resources[0]
			eq(t, "type", r.Pagination.Type, PageCursor)
			eq(t, "cursor_param", r.Pagination.CursorParam, "after")
			eq(t, "next_cursor", r.Pagination.NextCursor, ".paging.next.after // empty")
			eq(t, "max_pages", r.Pagination.MaxPages, 50)
			eq(t, "limit (not sent by cursor paging)", r.Pagination.Limit, 0)
			eq(t, "id_field", r.IDField, "properties.hs_object_id")
		},
		"page_next_url.good.yaml": func(t *testing.T, c *Config) {
			r := c.Resources[0]
			eq(t, "type", r.Pagination.Type, PageNextURL)
			eq(t, "next_url", r.Pagination.NextURL, ".links.next")
			eq(t, "url", r.Template.String(), "https://other.example.com/v2/tickets")
		},
		"page_link_header.good.yaml": func(t *testing.T, c *Config) {
			r := c.Resources[0]
			eq(t, "type", r.Pagination.Type, PageLinkHeader)
			eq(t, "schedule", r.Schedule.Every, 30*time.Second)
			eq(t, "deletes", r.Deletes, DeletesSnapshot)
			eq(t, "delete_guard", *r.DeleteGuard, 0.2)
			eq(t, "auth.name", c.Sources[0].Auth.Name, "X-GitHub-Token")
		},
		"postgres.good.yaml": func(t *testing.T, c *Config) {
			eq(t, "dsn", string(c.State.DSN), "postgres://pollhook@db:5432/pollhook?sslmode=disable")
			eq(t, "no path with a dsn", c.State.Path, "")
			eq(t, "lease", c.State.Lease.D(), 30*time.Second)
		},
		"cloud_elements_secret.good.yaml": func(t *testing.T, c *Config) {
			eq(t, "plain secret", string(c.Destination("elements").Secret), "plain-elements-signing-key")
			eq(t, "whsec_ secret", string(c.Destination("elements-whsec").Secret), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		},
		"nats.good.yaml": func(t *testing.T, c *Config) {
			s := c.Destination("stream")
			eq(t, "subject", s.Subject, "pollhook.{resource}.{type}")
			eq(t, "stream", s.Stream, "POLLHOOK")
			eq(t, "nats defaults: no retry schedule change", len(s.Retry.Schedule), len(DefaultRetrySchedule))
			cl := c.Destination("cluster")
			eq(t, "user", cl.NATS.User, "pollhook")
			eq(t, "password", string(cl.NATS.Password), "p#ss: word")
			eq(t, "ca_file", cl.TLS.CAFile, "/etc/pollhook/ca.pem")
			eq(t, "key_file", cl.TLS.KeyFile, "/etc/pollhook/client.key")
			eq(t, "token", string(c.Destination("token").NATS.Token), "s3cret")
			eq(t, "creds", c.Destination("creds").NATS.Creds, "/etc/pollhook/pollhook.creds")
		},
		"features.good.yaml": func(t *testing.T, c *Config) {
			eq(t, "listen", c.HTTP.Listen, ":9090")
			eq(t, "lease", c.State.Lease.D(), 5*time.Second)
			eq(t, "state.path default", c.State.Path, DefaultStatePath)
			eq(t, "allow_targets", len(c.HTTP.AllowTargets), 2)
			crm := c.Source("crm")
			eq(t, "merged timeout", crm.Timeout.D(), 10*time.Second)
			eq(t, "env default", crm.BaseURL, "https://crm.example.com/api")
			eq(t, "env default in merged header", crm.Headers["X-Tenant"], "acme")
			eq(t, "secret with YAML syntax", string(crm.Auth.ClientSecret), "crm: secret # not a comment")
			eq(t, "burst from per_second", crm.RateLimit.Burst, 3)
			eq(t, "max_body_bytes", crm.MaxBodyBytes, ByteSize(8<<20))
			eq(t, "retry.attempts", crm.Retry.Attempts, 2)
			eq(t, "billing merged timeout", c.Source("billing").Timeout.D(), 10*time.Second)
			eq(t, "quoted env", string(c.Source("billing").Auth.Value), "bk")
			eq(t, "password", string(c.Source("legacy").Auth.Password), "p#ss: word")
			leads := c.Resource("leads")
			eq(t, "url keeps placeholders", leads.URL, "/leads?updated_after=${epoch}")
			eq(t, "$${ is a literal ${", crm.Headers["X-Note"], "${literal}")
			eq(t, "cron", leads.Schedule.Cron != nil, true)
			eq(t, "start time", leads.StartTime.Equal(time.Date(2024, 1, 31, 0, 0, 0, 0, time.UTC)), true)
			eq(t, "lookback 0", leads.Lookback.D(), time.Duration(0))
			eq(t, "keap event", leads.EventType(VerbUpdated), "lead.edit")
			eq(t, "start beginning", c.Resource("invoices").Start, StartBeginning)
			eq(t, "start time unset", c.Resource("invoices").StartTime.IsZero(), true)
			inv := c.Resource("invoices")
			eq(t, "item_url keeps ${id}, expands variables", inv.ItemURL, "/invoices/${id}?expand=bk")
			eq(t, "item_url expanded", inv.ItemTemplate.Expand("a/b c"), "/invoices/a%2Fb%20c?expand=bk")
			eq(t, "item_record", inv.ItemRecord, ".invoice")
			eq(t, "transform", leads.Transform, `del(.ssn) | .email |= ascii_downcase`)
			eq(t, "ignore_fields", strings.Join(leads.IgnoreFields, " "), "last_seen_at stats.views .tags[].touched_at")
			eq(t, "keep_content by default", leads.KeepContent, true)
			eq(t, "watch_fields", strings.Join(inv.WatchFields, " "), "status .lines")
			eq(t, "keep_content false", inv.KeepContent, false)
			eq(t, "filter", c.Destination("keap-style").Filter, `.changed_fields // [] | index("stage_id")`)
			eq(t, "no filter", c.Destination("archive").Filter, "")
			k := c.Destination("keap-style")
			eq(t, "max_events", k.Batch.MaxEvents, 1000)
			eq(t, "max_wait", k.Batch.MaxWait.D(), 2*time.Second)
			eq(t, "basic_auth", k.BasicAuth.Username, "u")
			eq(t, "tls", k.TLS.InsecureSkipVerify, true)
			eq(t, "ordering", k.Ordering, OrderingOrdered)
			eq(t, "archive url", c.Destination("archive").URL, "file:///var/lib/pollhook/events.jsonl")
		},
	}
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("%s has no entry in TestGoodConfigs", f)
		}
	}
	for file, check := range tests {
		t.Run(file, func(t *testing.T) {
			check(t, mustLoad(t, file))
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pollhook.yaml")
	data, err := os.ReadFile("testdata/minimal.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = []byte(strings.Replace(string(data), "/items", "/items?key=${POLLHOOK_TEST_KEY}", 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POLLHOOK_TEST_KEY", "k1")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "url from the environment", c.Resources[0].URL, "/items?key=k1")
	eq(t, "file", c.File, path)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestItemsTakesAPathOrJQ(t *testing.T) {
	for _, items := range []string{"results", "data.items", ".data", "map(select(.ok))", "[.results[]]"} {
		yml := "sources: [{name: a, base_url: \"http://x\"}]\nresources:\n  - {name: r, object: o, url: /x, items: \"" + items + "\"}\n"
		if _, err := Parse("t.yaml", []byte(yml), nil); err != nil {
			t.Errorf("items %q: %v", items, err)
		}
	}
}
