package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config/datefmt"
)

// Template is a resource URL with per-poll placeholders:
//
//	${gmtDate:FORMAT}  the poll's since time in GMT, in a Java-style FORMAT
//	${date:FORMAT}     the same in the resource's time zone
//	${epoch}           the same as Unix seconds
//	${epoch_ms}        the same as Unix milliseconds
//
// The since time is the watermark minus the lookback. Expanded values are
// query-escaped. A Template is immutable and safe for concurrent use.
type Template struct {
	text  string
	parts []templatePart
}

type templatePart struct {
	literal string
	fn      string // "", "gmtDate", "date", "epoch", "epoch_ms"
	format  *datefmt.Format
}

// TemplateFuncs are the placeholders a URL may hold.
var TemplateFuncs = []string{"gmtDate", "date", "epoch", "epoch_ms"}

// ParseTemplate parses a URL template.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{text: s}
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			t.parts = append(t.parts, templatePart{literal: rest})
			return t, nil
		}
		t.parts = append(t.parts, templatePart{literal: rest[:i]})
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed ${ at offset %d", len(s)-len(rest)+i)
		}
		body := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		name, arg, hasArg := strings.Cut(body, ":")
		p := templatePart{fn: name}
		switch name {
		case "gmtDate", "date":
			if !hasArg || arg == "" {
				return nil, fmt.Errorf("${%s} needs a format, as in ${%s:yyyy-MM-dd'T'HH:mm:ss'Z'}", name, name)
			}
			f, err := datefmt.Parse(arg)
			if err != nil {
				return nil, fmt.Errorf("${%s}: %w", body, err)
			}
			p.format = f
		case "epoch", "epoch_ms":
			if hasArg {
				return nil, fmt.Errorf("${%s} takes no format (got %q)", name, "${"+body+"}")
			}
		default:
			return nil, fmt.Errorf("unknown placeholder ${%s}: want one of ${gmtDate:FORMAT}, ${date:FORMAT}, ${epoch}, ${epoch_ms}", body)
		}
		t.parts = append(t.parts, p)
	}
}

// String returns the template as written.
func (t *Template) String() string { return t.text }

// HasSince reports whether the template holds a placeholder for the since
// time, so that each poll asks only for what changed.
func (t *Template) HasSince() bool {
	for _, p := range t.parts {
		if p.fn != "" {
			return true
		}
	}
	return false
}

// Expand renders the template for a poll that asks for changes since the
// given time; loc is the resource's zone, for ${date:…}.
func (t *Template) Expand(since time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	for _, p := range t.parts {
		switch p.fn {
		case "":
			b.WriteString(p.literal)
		case "gmtDate":
			b.WriteString(url.QueryEscape(p.format.Format(since, time.UTC)))
		case "date":
			b.WriteString(url.QueryEscape(p.format.Format(since, loc)))
		case "epoch":
			b.WriteString(strconv.FormatInt(since.Unix(), 10))
		case "epoch_ms":
			b.WriteString(strconv.FormatInt(since.UnixMilli(), 10))
		}
	}
	return b.String()
}

// probe renders the template with a stand-in for each placeholder, for
// checking the shape of the URL.
func (t *Template) probe() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.fn == "" {
			b.WriteString(p.literal)
		} else {
			b.WriteString("0")
		}
	}
	return b.String()
}

// ItemPlaceholders are the placeholders an item_url may hold.
var ItemPlaceholders = []string{"id"}

// ItemTemplate is a resource's item_url: the URL of one record, with
// ${id} where its id goes. The id is escaped for where it stands: as a
// path segment before the query (/contacts/a%2Fb), as a query value after
// it (?id=a%2Fb). An ItemTemplate is immutable and safe for concurrent
// use.
type ItemTemplate struct {
	text  string
	parts []itemPart
}

type itemPart struct {
	literal string
	id      bool // ${id}
	inQuery bool // after the "?"
}

// ParseItemTemplate parses an item URL template: it must hold ${id}, and
// no other placeholder.
func ParseItemTemplate(s string) (*ItemTemplate, error) {
	t := &ItemTemplate{text: s}
	rest, inQuery, ids := s, false, 0
	for rest != "" {
		i := strings.Index(rest, "${")
		lit := rest
		if i >= 0 {
			lit = rest[:i]
		}
		t.parts = append(t.parts, itemPart{literal: lit})
		inQuery = inQuery || strings.Contains(lit, "?")
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed ${ at offset %d", len(s)-len(rest)+i)
		}
		if body := rest[i+2 : i+j]; body != "id" {
			return nil, fmt.Errorf("unknown placeholder ${%s}: item_url takes ${id} only", body)
		}
		t.parts = append(t.parts, itemPart{id: true, inQuery: inQuery})
		ids++
		rest = rest[i+j+1:]
	}
	if ids == 0 {
		return nil, fmt.Errorf("want a URL holding ${id} where a record's id goes, such as /contacts/${id} (got %q)", s)
	}
	return t, nil
}

// String returns the template as written.
func (t *ItemTemplate) String() string { return t.text }

// Expand returns the URL of the record with id.
func (t *ItemTemplate) Expand(id string) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch {
		case !p.id:
			b.WriteString(p.literal)
		case p.inQuery:
			b.WriteString(url.QueryEscape(id))
		default:
			b.WriteString(url.PathEscape(id))
		}
	}
	return b.String()
}
