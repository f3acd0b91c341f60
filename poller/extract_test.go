package poller

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/config/datefmt"
)

// newExtractor builds an Extractor for r.
func newExtractor(t testing.TB, r *config.Resource) *Extractor {
	t.Helper()
	if r.Name == "" {
		r.Name = "things"
	}
	x, err := NewExtractor(r)
	if err != nil {
		t.Fatalf("NewExtractor: %v", err)
	}
	return x
}

// dateField configures an RFC 3339 date at field.
func dateField(field string) *config.DateField {
	f, err := datefmt.Parse("rfc3339")
	if err != nil {
		panic(err)
	}
	return &config.DateField{Field: field, Format: f, Location: time.UTC}
}

func extract(t *testing.T, x *Extractor, body string) ([]Record, []Skip, error) {
	t.Helper()
	doc, err := x.Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return x.Records(doc)
}

func ids(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func TestRecords(t *testing.T) {
	tests := []struct {
		name    string
		r       config.Resource
		body    string
		want    []string
		skips   []Skip // Reason is a substring
		updated []time.Time
	}{
		{
			name: "string and numeric ids",
			r:    config.Resource{Items: ".results", IDField: "id"},
			body: `{"results":[{"id":1},{"id":"x-2"},{"id":12345678901234567890},{"id":-7},{"id":1e3},{"id":12.0},
				{"name":"no id"},{"id":null},{"id":""},{"id":{"a":1}},{"id":true},{"id":[1]}]}`,
			want: []string{"1", "x-2", "12345678901234567890", "-7", "1000", "12"},
			skips: []Skip{
				{Index: 6, Reason: `no id at "id"`},
				{Index: 7, Reason: `no id at "id"`},
				{Index: 8, Reason: `empty id at "id"`},
				{Index: 9, Reason: `id at "id" is an object with keys a, want a string or a number`},
				{Index: 10, Reason: `id at "id" is true`},
				{Index: 11, Reason: `id at "id" is an array of 1`},
			},
		},
		{
			name: "nested paths",
			r:    config.Resource{Items: "data.items", IDField: "properties.hs_object_id"},
			body: `{"data":{"items":[{"properties":{"hs_object_id":"501"}},{"properties":{"hs_object_id":98765432109876543210}},{"properties":null},{"properties":5}]}}`,
			want: []string{"501", "98765432109876543210"},
			skips: []Skip{
				{Index: 2, Reason: `no id at "properties.hs_object_id"`},
				{Index: 3, Reason: `.properties is the number 5, not an object`},
			},
		},
		{
			name: "jq items keep large ids",
			r:    config.Resource{Items: ".results | map(select(.archived|not))", IDField: ".id"},
			body: `{"results":[{"id":12345678901234567890,"archived":false},{"id":2,"archived":true},{"id":3}]}`,
			want: []string{"12345678901234567890", "3"},
		},
		{
			name: "jq id",
			r:    config.Resource{Items: ".", IDField: `"\(.kind)-\(.id)"`},
			body: `[{"kind":"deal","id":12345678901234567890},{"kind":"note","id":"n1"}]`,
			want: []string{"deal-12345678901234567890", "note-n1"},
		},
		{
			name: "default items and id",
			r:    config.Resource{},
			body: `[{"id":"a"},{"id":"b"}]`,
			want: []string{"a", "b"},
		},
		{
			name: "the record is the id",
			r:    config.Resource{IDField: "."},
			body: `["a", 7]`,
			want: []string{"a", "7"},
		},
		{
			name: "null items is an empty page",
			r:    config.Resource{Items: ".contacts"},
			body: `{"contacts":null}`,
			want: []string{},
		},
		{
			name: "dates",
			r: config.Resource{Items: ".", Dates: config.Dates{
				Updated: dateField("meta.updated_at"),
				Created: dateField("created"),
			}},
			body: `[{"id":1,"meta":{"updated_at":"2024-05-06T07:08:09Z"},"created":"2024-01-01T00:00:00Z"},
				{"id":2,"meta":{"updated_at":"2023-11-14T22:13:20+01:00"},"created":"2020-01-01T00:00:00Z"},
				{"id":3,"created":"2024-01-01T00:00:00Z"},
				{"id":4,"meta":{"updated_at":"yesterday"},"created":"2024-01-01T00:00:00Z"},
				{"id":5,"meta":{"updated_at":"2024-05-06T07:08:09Z"}},
				{"id":6,"meta":{"updated_at":""},"created":"2024-01-01T00:00:00Z"},
				{"id":7,"meta":{"updated_at":{"t":1}},"created":"2024-01-01T00:00:00Z"}]`,
			want:    []string{"1", "2"},
			updated: []time.Time{time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), time.Date(2023, 11, 14, 21, 13, 20, 0, time.UTC)},
			skips: []Skip{
				{Index: 2, ID: "3", Reason: `no updated date at "meta.updated_at"`},
				{Index: 3, ID: "4", Reason: `updated date "yesterday" at "meta.updated_at": `},
				{Index: 4, ID: "5", Reason: `no created date at "created"`},
				{Index: 5, ID: "6", Reason: `empty updated date at "meta.updated_at"`},
				{Index: 6, ID: "7", Reason: `updated date at "meta.updated_at" is an object with keys t, want a string or a number`},
			},
		},
		{
			name: "jq date",
			r:    config.Resource{Dates: config.Dates{Updated: dateField(".history | last | .at")}},
			body: `[{"id":1,"history":[{"at":"2020-01-01T00:00:00Z"},{"at":"2021-01-01T00:00:00Z"}]}]`,
			want: []string{"1"}, updated: []time.Time{time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newExtractor(t, &tt.r)
			recs, skips, err := extract(t, x, tt.body)
			if err != nil {
				t.Fatalf("Records: %v", err)
			}
			if got := ids(recs); !slices.Equal(got, tt.want) {
				t.Errorf("ids = %q, want %q", got, tt.want)
			}
			if len(skips) != len(tt.skips) {
				t.Fatalf("skips = %+v, want %d", skips, len(tt.skips))
			}
			for i, s := range skips {
				w := tt.skips[i]
				if s.Index != w.Index || s.ID != w.ID || !strings.Contains(s.Reason, w.Reason) {
					t.Errorf("skip %d = %+v, want index %d, id %q, reason containing %q", i, s, w.Index, w.ID, w.Reason)
				}
			}
			for i, want := range tt.updated {
				if !recs[i].Updated.Equal(want) {
					t.Errorf("record %s updated = %v, want %v", recs[i].ID, recs[i].Updated, want)
				}
			}
			if tt.r.Dates.Updated == nil && len(recs) > 0 && !recs[0].Updated.IsZero() {
				t.Errorf("updated = %v without a configured date, want zero", recs[0].Updated)
			}
		})
	}
}

func TestRecordDataAndHash(t *testing.T) {
	x := newExtractor(t, &config.Resource{})
	a, _, err := extract(t, x, `[{"id":1,"b":{"d":[1,2.50],"c":"<x> & y"},"a":12345678901234567890}]`)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := extract(t, x, "[{ \"a\": 12345678901234567890,\n \"id\": 1, \"b\": {\"c\": \"<x> & y\", \"d\": [1, 2.50]} }]")
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"a":12345678901234567890,"b":{"c":"<x> & y","d":[1,2.50]},"id":1}`
	if string(a[0].Data) != want {
		t.Errorf("Data = %s, want %s", a[0].Data, want)
	}
	if a[0].Hash != b[0].Hash || string(a[0].Data) != string(b[0].Data) {
		t.Errorf("key order and spacing changed the record: %s %s vs %s %s", a[0].Hash, a[0].Data, b[0].Hash, b[0].Data)
	}
	if len(a[0].Hash) != 32 {
		t.Errorf("Hash %q: want 32 hex digits", a[0].Hash)
	}
	c, _, _ := extract(t, x, `[{"id":1,"b":{"d":[1,2.51],"c":"<x> & y"},"a":12345678901234567890}]`)
	if c[0].Hash == a[0].Hash {
		t.Errorf("a changed value kept the hash %s", a[0].Hash)
	}
}

func TestItemsErrors(t *testing.T) {
	tests := []struct {
		items, body, want string
	}{
		{".contacts", `{"error":"unauthorized","message":"x"}`, `resources[things].items ".contacts": the body has no such key (the body is an object with keys error, message)`},
		{".contacts", `{"contacts":{"id":1}}`, `resources[things].items ".contacts" gave an object with keys id, want an array`},
		{"data.items", `{"data":[1]}`, `.data is an array of 1, not an object`},
		{".results[]", `{"results":[{"id":1},{"id":2}]}`, `gave 2 values, want one array (write [.results[]] to collect them)`},
		{".results | .[0]", `{"results":[{"id":1}]}`, `gave an object with keys id, want an array`},
		{".results.x", `{"results":[1]}`, `resources[things].items ".results.x": .results is an array of 1, not an object`},
		{".results | .x", `{"results":[1]}`, `run resources[things].items ".results | .x": expected an object but got: array`},
		{".results | empty", `{"results":[]}`, `gave no value, want an array`},
	}
	for _, tt := range tests {
		t.Run(tt.items, func(t *testing.T) {
			x := newExtractor(t, &config.Resource{Items: tt.items})
			_, _, err := extract(t, x, tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"truncated", `{"contacts":[{"id":1},{"id":`, `decode body: JSON ends early after 28 bytes, the body is truncated: unexpected EOF; it starts: {"contacts":[{"id":1},{"id":`},
		{"html", "\n<!DOCTYPE html>\n<html><body>Sign in</body></html>", `decode body: got HTML or XML, not JSON: <!DOCTYPE html> <html><body>Sign in</body></html>`},
		{"empty", " \n", "the body is empty"},
		{"invalid", `{"a":}`, `decode body: invalid JSON at byte 6`},
		{"trailing", `{"a":1} {"b":2}`, `decode body: data after the JSON value at byte 7: {"b":2}`},
	}
	x := newExtractor(t, &config.Resource{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := x.Decode([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := x.Decode([]byte("\xef\xbb\xbf [1]\n")); err != nil {
		t.Errorf("JSON with a byte-order mark: %v", err)
	}
}

func TestNewExtractorErrors(t *testing.T) {
	tests := []struct {
		name string
		r    config.Resource
		want string
	}{
		{"bad jq", config.Resource{Items: ".results | map("}, `resources[things].items: want a dotted path or a jq expression (got ".results | map(")`},
		{"unknown jq function", config.Resource{IDField: "nope(.id)"}, `resources[things].id_field: compile jq "nope(.id)"`},
		{"cursor without next_cursor", config.Resource{Pagination: config.Pagination{Type: config.PageCursor}}, "resources[things].pagination.next_cursor"},
		{"next_url without next_url", config.Resource{Pagination: config.Pagination{Type: config.PageNextURL}}, "resources[things].pagination.next_url"},
		{"unknown pagination", config.Resource{Pagination: config.Pagination{Type: "scroll"}}, `resources[things].pagination.type: want none, offset, page, cursor, next_url or link_header (got "scroll")`},
		{"date without format", config.Resource{Dates: config.Dates{Updated: &config.DateField{Field: "u"}}}, "resources[things].dates.updated_format"},
		{"date with bad jq", config.Resource{Dates: config.Dates{Created: &config.DateField{Field: ".a |", Format: &datefmt.Format{}}}}, "resources[things].dates.created_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Name = "things"
			_, err := NewExtractor(&tt.r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	tests := []struct {
		expr string
		want []string // nil: not a path, so jq
	}{
		{".", []string{}},
		{".contacts", []string{"contacts"}},
		{"contacts", []string{"contacts"}},
		{"data.items", []string{"data", "items"}},
		{".data.items", []string{"data", "items"}},
		{"properties.hs_object_id", []string{"properties", "hs_object_id"}},
		{"meta.last-modified", []string{"meta", "last-modified"}},
		{".last-modified", nil}, // jq: .last minus modified
		{".0", nil},
		{".a[0]", nil},
		{".a | .b", nil},
		{"..", nil},
		{".a.", nil},
		{`.["a b"]`, nil},
	}
	for _, tt := range tests {
		got, ok := parsePath(tt.expr)
		if ok != (tt.want != nil) || !slices.Equal(got, tt.want) {
			t.Errorf("parsePath(%q) = %q, %v; want %q", tt.expr, got, ok, tt.want)
		}
	}
}

// BenchmarkExtract decodes and extracts pages of 1000 CRM-like records.
func BenchmarkExtract(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"contacts":[`)
	const perPage = 1000
	for i := range perPage {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"given_name":"Ann %d","family_name":"Example","email_addresses":[{"email":"ann%d@example.com","field":"EMAIL1"}],`+
			`"phone_numbers":[{"number":"+1 555 0100","field":"PHONE1"}],"tag_ids":[1,2,3],"owner_id":42,"email_opted_in":true,`+
			`"custom_fields":[{"id":7,"content":"gold"}],"last_updated":"2024-05-06T07:08:%02dZ","date_created":"2023-01-01T00:00:00Z"}`, 1000000+i, i, i, i%60)
	}
	sb.WriteString(`],"count":1000}`)
	body := []byte(sb.String())

	for _, bc := range []struct {
		name string
		r    config.Resource
	}{
		{"paths", config.Resource{Items: ".contacts", IDField: "id", Dates: config.Dates{Updated: dateField("last_updated"), Created: dateField("date_created")}}},
		{"jq", config.Resource{Items: ".contacts | map(select(.email_opted_in))", IDField: ".id | tostring", Dates: config.Dates{Updated: dateField(".last_updated // .date_created")}}},
		{"no dates", config.Resource{Items: ".contacts", IDField: "id"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			x := newExtractor(b, &bc.r)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				doc, err := x.Decode(body)
				if err != nil {
					b.Fatal(err)
				}
				recs, _, err := x.Records(doc)
				if err != nil {
					b.Fatal(err)
				}
				n += len(recs)
			}
			if n != perPage*b.N {
				b.Fatalf("extracted %d records, want %d", n, perPage*b.N)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	values := []any{
		"plain", `quote " and \ backslash`, "ctl \x00\x01\b\f\n\r\t\x1f end", "<html> & more",
		"bad utf8 \xff\xfe here", "sep \u2028 \u2029 done", "émoji 🎉 ok", "",
		map[string]any{"b": []any{true, false, nil}, "a": map[string]any{"z": 1, "é": 2, "A": 3}},
		3.5, 1e21, int(-42),
	}
	for _, v := range values {
		var want strings.Builder
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		got, err := appendCanonical(nil, v)
		if err != nil {
			t.Fatalf("appendCanonical(%#v): %v", v, err)
		}
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendCanonical(%#v) = %s, want %s", v, got, want.String())
		}
	}
}

func TestRecordsWithDateFormats(t *testing.T) {
	mustFormat := func(p string) *datefmt.Format {
		f, err := datefmt.Parse(p)
		if err != nil {
			t.Fatalf("datefmt.Parse(%q): %v", p, err)
		}
		return f
	}
	mustZone := func(name string) *time.Location {
		loc, err := datefmt.LoadLocation(name)
		if err != nil {
			t.Fatalf("LoadLocation(%q): %v", name, err)
		}
		return loc
	}
	paris := mustZone("Europe/Paris")
	tests := []struct {
		name, format, zone, value string
		want                      time.Time
	}{
		{"keap", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "GMT", `"2024-05-06T07:08:09.123Z"`, time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)},
		{"zone from config", "dd/MM/yyyy HH:mm", "Europe/Paris", `"06/05/2024 09:08"`, time.Date(2024, 5, 6, 9, 8, 0, 0, paris)},
		{"unix number", "unix", "UTC", `1700000000`, time.Unix(1700000000, 0)},
		{"unix_ms number", "unix_ms", "UTC", `1700000000123`, time.UnixMilli(1700000000123)},
		{"unix_ms string", "unix_ms", "UTC", `"1700000000123"`, time.UnixMilli(1700000000123)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &config.Resource{Name: "things", Dates: config.Dates{
				Updated: &config.DateField{Field: "updated", Format: mustFormat(tt.format), Location: mustZone(tt.zone)},
			}}
			x, err := NewExtractor(r)
			if err != nil {
				t.Fatal(err)
			}
			recs, skips, err := extract(t, x, `[{"id":1,"updated":`+tt.value+`},{"id":2,"updated":"not a date"}]`)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || !recs[0].Updated.Equal(tt.want) {
				t.Fatalf("records = %+v, want one updated at %v", recs, tt.want)
			}
			if len(skips) != 1 || skips[0].ID != "2" || !strings.Contains(skips[0].Reason, `updated date "not a date" at "updated"`) {
				t.Errorf("skips = %+v, want record 2 skipped for its date", skips)
			}
		})
	}
}
