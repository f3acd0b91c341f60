package poller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/itchyny/gojq"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/internal/clip"
)

// Record is one record of a page, ready for the diff.
type Record struct {
	// ID is the record's id as text: a string as is, a number in decimal
	// without exponent (12345678901234567890, never 1.2345678901234567e19).
	ID string
	// Updated and Created are the record's dates; zero when the resource
	// does not configure them.
	Updated time.Time
	Created time.Time
	// Data is the record as canonical JSON, after the resource's
	// transform: object keys sorted, numbers as the API wrote them, no
	// insignificant space.
	Data json.RawMessage
	// Hash is the hex of the first 16 bytes of the SHA-256 of Data, or
	// with ignore_fields or watch_fields, of the fields compared only. It
	// is the same for two bodies that differ only in key order or spacing.
	Hash string
}

// Skip is a record that was reported and left out: it has no usable id,
// or a configured date is missing or does not parse.
type Skip struct {
	// Index is the record's position in the page's items.
	Index int
	// ID is the record's id when it has one, so that the record can still
	// count as seen.
	ID     string
	Reason string
}

// Extractor turns response bodies into records, as a resource's items,
// id_field, dates and pagination keys say. Each of those is a dotted path
// (.contacts, contacts, data.items, properties.hs_object_id, .), read
// straight off the decoded body, or else a jq expression, compiled once.
// An Extractor is immutable and safe for concurrent use.
type Extractor struct {
	items      *getter
	filter     *gojq.Code // nil = keep every record
	id         *getter
	updated    *dateGetter
	created    *dateGetter
	nextCursor *getter    // cursor pagination only
	nextURL    *getter    // next_url pagination only
	item       *getter    // the record in an item_url body
	transform  *gojq.Code // nil = records as the API sends them
	project    *projector // nil = a change is judged on the whole record
	// fast says that pages are read by the fast path (see rawjson.go):
	// every path is dotted, and a record is hashed whole as the API
	// sends it.
	fast bool
}

// getter reads one value out of a decoded JSON value.
type getter struct {
	key  string // the config key, for messages: "items", "id_field" …
	expr string
	path []string   // the dotted path, when code is nil; empty for "."
	code *gojq.Code // the jq expression otherwise
}

type dateGetter struct {
	name  string // "updated" or "created"
	get   *getter
	parse func(value string) (time.Time, error)
}

// NewExtractor compiles the items, id_field, dates, transform,
// ignore_fields or watch_fields and, for cursor and next_url pagination,
// the next_cursor or next_url expression of r. Empty
// items and id_field mean config.DefaultItems and config.DefaultIDField.
func NewExtractor(r *config.Resource) (*Extractor, error) {
	prefix := "resources[" + r.Name + "]."
	x := &Extractor{}
	var err error
	items := orDefault(r.Items, config.DefaultItems)
	if x.items, err = compileGetter(prefix+"items", items); err != nil {
		return nil, err
	}
	if f := strings.TrimSpace(r.Filter); f != "" {
		q, err := gojq.Parse(f)
		if err != nil {
			return nil, fmt.Errorf("%sfilter %q: %w", prefix, f, err)
		}
		if x.filter, err = gojq.Compile(q); err != nil {
			return nil, fmt.Errorf("%sfilter %q: %w", prefix, f, err)
		}
	}
	if x.id, err = compileGetter(prefix+"id_field", orDefault(r.IDField, config.DefaultIDField)); err != nil {
		return nil, err
	}
	if x.item, err = compileGetter(prefix+"item_record", orDefault(r.ItemRecord, ".")); err != nil {
		return nil, err
	}
	if x.updated, err = compileDate(prefix, "updated", r.Dates.Updated); err != nil {
		return nil, err
	}
	if x.created, err = compileDate(prefix, "created", r.Dates.Created); err != nil {
		return nil, err
	}
	if x.transform, err = compileTransform(r); err != nil {
		return nil, err
	}
	if x.project, err = newProjector(r); err != nil {
		return nil, err
	}
	p := r.Pagination
	switch p.Type {
	case "", config.PageNone, config.PageOffset, config.PagePage, config.PageLinkHeader:
	case config.PageCursor:
		if p.NextCursor == "" {
			return nil, fmt.Errorf("%spagination.next_cursor: cursor pagination needs the path or jq expression of the next cursor in a body, such as .meta.next_cursor", prefix)
		}
		if x.nextCursor, err = compileGetter(prefix+"pagination.next_cursor", p.NextCursor); err != nil {
			return nil, err
		}
	case config.PageNextURL:
		if p.NextURL == "" {
			return nil, fmt.Errorf("%spagination.next_url: next_url pagination needs the path or jq expression of the next page's URL in a body, such as .links.next", prefix)
		}
		if x.nextURL, err = compileGetter(prefix+"pagination.next_url", p.NextURL); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%spagination.type: want none, offset, page, cursor, next_url or link_header (got %q)", prefix, p.Type)
	}
	x.fast = x.filter == nil && x.transform == nil && x.project == nil
	for _, g := range []*getter{x.items, x.id, x.updated.getter(), x.created.getter(), x.nextGetter()} {
		if g != nil && g.code != nil {
			x.fast = false
		}
	}
	return x, nil
}

// getter is the getter of the date, nil without one.
func (d *dateGetter) getter() *getter {
	if d == nil {
		return nil
	}
	return d.get
}

func orDefault(s, def string) string {
	if s = strings.TrimSpace(s); s == "" {
		return def
	}
	return s
}

func compileDate(prefix, name string, df *config.DateField) (*dateGetter, error) {
	if df == nil {
		return nil, nil
	}
	key := prefix + "dates." + name
	if df.Field == "" {
		return nil, fmt.Errorf("%s_field: want the path of the %s date in a record", key, name)
	}
	if df.Format == nil {
		return nil, fmt.Errorf("%s_format: want the format of the %s date", key, name)
	}
	g, err := compileGetter(key+"_field", df.Field)
	if err != nil {
		return nil, err
	}
	f, loc := df.Format, df.Location
	return &dateGetter{name: name, get: g, parse: func(v string) (time.Time, error) { return f.Parse(v, loc) }}, nil
}

// compileGetter compiles expr: a dotted path, or else jq.
func compileGetter(key, expr string) (*getter, error) {
	g := &getter{key: key, expr: expr}
	if path, ok := parsePath(expr); ok {
		g.path = path
		return g, nil
	}
	q, err := gojq.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%s: want a dotted path or a jq expression (got %q): %w", key, expr, err)
	}
	if g.code, err = gojq.Compile(q); err != nil {
		return nil, fmt.Errorf("%s: compile jq %q: %w", key, expr, err)
	}
	return g, nil
}

// parsePath reads a dotted path: "." is the value itself; ".a.b" (jq's own
// syntax, segments being identifiers) and "a.b" (segments of letters,
// digits, _, - and @) are the key a, then its key b.
func parsePath(expr string) ([]string, bool) {
	if expr == "." {
		return []string{}, true
	}
	jq := strings.HasPrefix(expr, ".")
	segs := strings.Split(strings.TrimPrefix(expr, "."), ".")
	for _, s := range segs {
		if s == "" {
			return nil, false
		}
		for i, r := range s {
			switch {
			case r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z':
			case '0' <= r && r <= '9' && (i > 0 || !jq):
			case (r == '-' || r == '@') && i > 0 && !jq:
			default:
				return nil, false
			}
		}
	}
	return segs, true
}

// first returns the first value of g on v; found is false when the path
// ends at a missing key or jq gives no value.
func (g *getter) first(v any) (val any, found bool, err error) {
	if g.code == nil {
		return walk(v, g.path)
	}
	iter := g.code.Run(v)
	out, ok := iter.Next()
	if !ok {
		return nil, false, nil
	}
	if err, ok := out.(error); ok {
		return nil, false, jqError(err)
	}
	return out, true, nil
}

// walk follows path through objects; found is false at a missing key. A
// null on the way gives null, as in jq; a scalar or an array on the way is
// an error.
func walk(v any, path []string) (any, bool, error) {
	for i, seg := range path {
		switch m := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = m[seg]; !ok {
				return nil, false, nil
			}
		case nil:
			return nil, true, nil
		default:
			return nil, false, fmt.Errorf("%s is %s, not an object", "."+strings.Join(path[:i], "."), describe(v))
		}
	}
	return v, true, nil
}

func jqError(err error) error {
	var halt *gojq.HaltError
	if errors.As(err, &halt) && halt.Value() == nil {
		return errors.New("jq halted")
	}
	return err
}

// Decode parses a response body as JSON, keeping numbers as written
// (json.Number). An empty, truncated or HTML body, or one with data after
// the JSON value, is an error that quotes the start of the body.
func (x *Extractor) Decode(body []byte) (any, error) {
	b := bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return nil, errors.New("decode body: the body is empty, want JSON")
	}
	if b[0] == '<' {
		return nil, fmt.Errorf("decode body: got HTML or XML, not JSON: %s", snippet(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, fmt.Errorf("decode body: JSON ends early after %d bytes, the body is truncated: %w; it starts: %s", len(body), err, snippet(b))
		case errors.As(err, &se):
			return nil, fmt.Errorf("decode body: invalid JSON at byte %d: %w; it starts: %s", se.Offset, err, snippet(b))
		default:
			return nil, fmt.Errorf("decode body: %w; it starts: %s", err, snippet(b))
		}
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(b[off:])) > 0 {
		return nil, fmt.Errorf("decode body: data after the JSON value at byte %d: %s", off, snippet(b[off:]))
	}
	return v, nil
}

// Records runs items on a decoded body and turns each item into a Record,
// or a Skip when its id or a configured date is unusable. items must give
// one array, or null for no records; a dotted path naming a key the body
// lacks is an error, lest an error body pass for an empty page.
func (x *Extractor) Records(doc any) ([]Record, []Skip, error) {
	items, err := x.Items(doc)
	if err != nil {
		return nil, nil, err
	}
	recs, skips, err := x.RecordsOf(items)
	return recs, skips, err
}

// Item runs item_record on a decoded item_url body: the one record it
// holds. A missing key, no value, or null is an error: such a body says
// nothing of whether the record exists.
func (x *Extractor) Item(doc any) (any, error) {
	g := x.item
	v, found, err := g.first(doc)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s %q: %w", g.key, g.expr, err)
	case !found || v == nil:
		return nil, fmt.Errorf("%s %q gave no record (the body is %s)", g.key, g.expr, describe(doc))
	}
	return v, nil
}

// Items runs items on a decoded body: the page's records before the
// filter, which is what pagination counts.
func (x *Extractor) Items(doc any) ([]any, error) { return x.itemsOf(doc) }

// RecordsOf turns the items of a page into Records, dropping those the
// resource's filter rejects (they count as absent) and reporting as a Skip
// each one whose id or a configured date is unusable.
func (x *Extractor) RecordsOf(items []any) ([]Record, []Skip, error) {
	recs := make([]Record, 0, len(items))
	var skips []Skip
	var buf []byte
	for i, item := range items {
		if x.filter != nil {
			keep, err := x.keep(item)
			if err != nil {
				return nil, nil, fmt.Errorf("record %d: %w", i, err)
			}
			if !keep {
				continue
			}
		}
		var rec Record
		var reason string
		rec, buf, reason = x.record(item, buf[:0])
		if reason != "" {
			skips = append(skips, Skip{Index: i, ID: rec.ID, Reason: reason})
			continue
		}
		recs = append(recs, rec)
	}
	return recs, skips, nil
}

// keep runs the filter on one record: it is kept when the first value
// is true.
func (x *Extractor) keep(item any) (bool, error) {
	v, ok := x.filter.Run(item).Next()
	if !ok {
		return false, nil
	}
	if err, isErr := v.(error); isErr {
		return false, fmt.Errorf("run filter: %w", jqError(err))
	}
	return v == true, nil
}

func (x *Extractor) itemsOf(doc any) ([]any, error) {
	g := x.items
	var out any
	if g.code == nil {
		v, found, err := walk(doc, g.path)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", g.key, g.expr, err)
		}
		if !found {
			return nil, fmt.Errorf("%s %q: the body has no such key (the body is %s)", g.key, g.expr, describe(doc))
		}
		out = v
	} else {
		var outs []any
		iter := g.code.Run(doc)
		for {
			v, ok := iter.Next()
			if !ok {
				break
			}
			if err, ok := v.(error); ok {
				return nil, fmt.Errorf("run %s %q: %w", g.key, g.expr, jqError(err))
			}
			outs = append(outs, v)
		}
		switch len(outs) {
		case 0:
			return nil, fmt.Errorf("%s %q gave no value, want an array (the body is %s)", g.key, g.expr, describe(doc))
		case 1:
			out = outs[0]
		default:
			return nil, fmt.Errorf("%s %q gave %d values, want one array (write [%s] to collect them)", g.key, g.expr, len(outs), g.expr)
		}
	}
	switch v := out.(type) {
	case []any:
		return v, nil
	case nil:
		return nil, nil
	default:
		return nil, fmt.Errorf("%s %q gave %s, want an array", g.key, g.expr, describe(v))
	}
}

// record builds the Record of one item, encoding it in buf; a non-empty
// reason skips it. The id and dates are read from the item as the API
// sent it; the transform's output is what is encoded and hashed.
func (x *Extractor) record(item any, buf []byte) (rec Record, _ []byte, reason string) {
	rec, reason = x.head(func(g *getter) (any, error) {
		v, _, err := g.first(item)
		return v, err
	})
	if reason != "" {
		return rec, buf, reason
	}
	if x.transform != nil {
		var reason string
		if item, reason = x.transformed(item); reason != "" {
			return rec, buf, reason
		}
	}
	buf, err := appendCanonical(buf, item)
	if err != nil {
		return rec, buf, fmt.Sprintf("encode record: %s", err)
	}
	rec.Data = bytes.Clone(buf)
	if rec.Hash, buf, err = x.hashOf(item, rec.Data, buf); err != nil {
		return rec, buf, fmt.Sprintf("compare fields: %s", err)
	}
	return rec, buf, ""
}

// head reads the id and the dates of a record, get giving the value of
// each getter in it; a non-empty reason skips the record (rec.ID is set
// when it has one).
func (x *Extractor) head(get func(*getter) (any, error)) (rec Record, reason string) {
	v, err := get(x.id)
	if err != nil {
		return rec, fmt.Sprintf("id at %q: %s", x.id.expr, err)
	}
	id, ok := idText(v)
	switch {
	case v == nil:
		return rec, fmt.Sprintf("no id at %q", x.id.expr)
	case id == "" && ok:
		return rec, fmt.Sprintf("empty id at %q", x.id.expr)
	case !ok:
		return rec, fmt.Sprintf("id at %q is %s, want a string or a number", x.id.expr, describe(v))
	}
	rec.ID = id
	for _, d := range []struct {
		g  *dateGetter
		to *time.Time
	}{{x.updated, &rec.Updated}, {x.created, &rec.Created}} {
		if d.g == nil {
			continue
		}
		v, err := get(d.g.get)
		t, reason := d.g.read(v, err)
		if reason != "" {
			return rec, reason
		}
		*d.to = t
	}
	return rec, ""
}

// read returns the date whose value is v (err: why the date's getter
// gave none), or why the record has none.
func (d *dateGetter) read(v any, err error) (time.Time, string) {
	g := d.get
	if err != nil {
		return time.Time{}, fmt.Sprintf("%s date at %q: %s", d.name, g.expr, err)
	}
	var text string
	switch v := v.(type) {
	case nil:
		return time.Time{}, fmt.Sprintf("no %s date at %q", d.name, g.expr)
	case string:
		if strings.TrimSpace(v) == "" {
			return time.Time{}, fmt.Sprintf("empty %s date at %q", d.name, g.expr)
		}
		text = v
	default:
		var ok bool
		if text, ok = numberText(v); !ok {
			return time.Time{}, fmt.Sprintf("%s date at %q is %s, want a string or a number", d.name, g.expr, describe(v))
		}
	}
	t, err := d.parse(text)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%s date %q at %q: %s", d.name, text, g.expr, err)
	}
	return t, ""
}

// idText writes a string or number id as text; ok is false for any other
// value. Integral numbers are written in full, without exponent or
// fraction.
func idText(v any) (id string, ok bool) {
	if s, ok := v.(string); ok {
		return s, true
	}
	if s, ok := numberText(v); ok {
		return integralText(s), true
	}
	return "", false
}

// numberText writes a number as gojq or encoding/json may hold it.
func numberText(v any) (string, bool) {
	switch v := v.(type) {
	case json.Number:
		return v.String(), true
	case int:
		return strconv.Itoa(v), true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case *big.Int:
		return v.String(), true
	}
	return "", false
}

// integralText rewrites a number such as 1e3 or 12.0 as 1000 or 12; any
// other text is returned as is.
func integralText(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	f, _, err := big.ParseFloat(s, 10, 256, big.ToNearestEven)
	if err != nil || !f.IsInt() {
		return s
	}
	i, _ := f.Int(nil)
	return i.String()
}

// describe says what v is, for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case string:
		return fmt.Sprintf("the string %q", clip.Ellipsis(v, 40))
	case []any:
		return fmt.Sprintf("an array of %d", len(v))
	case map[string]any:
		if len(v) == 0 {
			return "an empty object"
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		more := ""
		if len(keys) > 8 {
			keys, more = keys[:8], ", …"
		}
		return "an object with keys " + strings.Join(keys, ", ") + more
	}
	if s, ok := numberText(v); ok {
		return "the number " + s
	}
	return fmt.Sprintf("a %T", v)
}

// nextGetter is the getter of the next cursor or next URL; nil when the
// pagination type has none.
func (x *Extractor) nextGetter() *getter {
	if x.nextCursor != nil {
		return x.nextCursor
	}
	return x.nextURL
}

// next reads the next cursor or next URL of a body: "" when the
// pagination type has none, or the value is absent, null, false or empty.
func (x *Extractor) next(doc any) (string, error) {
	g := x.nextGetter()
	if g == nil {
		return "", nil
	}
	v, _, err := g.first(doc)
	if err != nil {
		return "", fmt.Errorf("%s %q: %w", g.key, g.expr, err)
	}
	return nextText(g, v)
}

// nextText is the next cursor or URL that g found as v.
func nextText(g *getter, v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case bool:
		if !v {
			return "", nil
		}
	case string:
		return v, nil
	default:
		if s, ok := numberText(v); ok {
			return integralText(s), nil
		}
	}
	return "", fmt.Errorf("%s %q gave %s, want a string", g.key, g.expr, describe(v))
}

// appendCanonical appends v as canonical JSON: object keys sorted
// bytewise, no insignificant space, numbers as the API wrote them, strings
// escaped as encoding/json escapes them with HTML escaping off (", \ and
// control characters; invalid UTF-8 as \ufffd; U+2028 and U+2029).
func appendCanonical(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendString(b, v), nil
	case json.Number:
		if v == "" {
			return b, errors.New("empty number")
		}
		return append(b, v...), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case *big.Int:
		return v.Append(b, 10), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendCanonical(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	default:
		// float64, and whatever else a jq expression may build.
		enc, err := json.Marshal(v)
		if err != nil {
			return b, err
		}
		return append(b, enc...), nil
	}
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; see appendCanonical.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
