package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pollhook/pollhook/internal/clip"
)

// page is what the layout shows around a page's own content.
type page struct {
	Title string
	// Crumbs lead from the overview to the page.
	Crumbs []crumb
	// Signed is set on the pages behind sign-in: the layout shows the
	// process, its readiness and the sign-out button only then.
	Signed   bool
	CSRF     string
	Holder   string
	NotReady string
	Flash    string
	FlashErr bool
	// Refresh suggests to the script how often to reload the page while
	// something is under way (seconds; 0 for none).
	Refresh int
	Now     time.Time
	Data    any
}

type crumb struct{ Name, Href string }

// pages are the parsed templates, one set per page, each the layout and
// the page's own.
type pages struct {
	sets map[string]*template.Template
}

var pageNames = []string{"off", "login", "error", "overview", "resource", "reset", "destination", "event"}

func mustParsePages() *pages {
	p := &pages{sets: map[string]*template.Template{}}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html"))
	for _, name := range pageNames {
		t := template.Must(template.Must(layout.Clone()).ParseFS(files, "templates/"+name+".html"))
		p.sets[name] = t
	}
	return p
}

// render writes page name; a template error (a bug) becomes a plain 500.
func (p *pages) render(w io.Writer, name string, pg page) {
	var b bytes.Buffer
	if err := p.sets[name].ExecuteTemplate(&b, "layout.html", pg); err != nil {
		if rw, ok := w.(http.ResponseWriter); ok {
			http.Error(rw, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		}
		return
	}
	if rw, ok := w.(http.ResponseWriter); ok && rw.Header().Get("Content-Type") == "" {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Write(b.Bytes())
}

// show renders page name for session s: the layout's parts that need a
// session, and the message an action left.
func (c *Console) show(w http.ResponseWriter, s *session, name string, pg page) {
	pg.Signed, pg.CSRF, pg.Holder, pg.Now = true, s.csrf, c.rt.Holder(), c.now()
	if err := c.rt.Ready(); err != nil {
		pg.NotReady = err.Error()
	}
	pg.Flash, pg.FlashErr = c.auth.takeFlash(s)
	c.pages.render(w, name, pg)
}

// fail answers with an error page of status saying msg.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pg := page{Title: http.StatusText(status), Data: msg}
	if s, ok := c.auth.session(r, c.tokenSum()); ok {
		pg.Signed, pg.CSRF, pg.Holder, pg.Now = true, s.csrf, c.rt.Holder(), c.now()
	}
	c.pages.render(w, "error", pg)
}

// assetServer serves the embedded assets, cached for a day.
func assetServer(assets fs.FS) http.Handler {
	fsrv := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	})
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when":       when,
	"iso":        iso,
	"ago":        ago,
	"dur":        dur,
	"num":        num,
	"seg":        url.PathEscape,
	"dict":       dict,
	"countLimit": func() int64 { return CountLimit },
	"query":      url.QueryEscape,
	// clip cuts a string to n bytes, with an ellipsis when cut.
	"clip": func(n int, s string) string { return clip.Ellipsis(s, n) },
}

// when is t in UTC to the second, or a dash for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// iso is t for a datetime attribute.
func iso(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ago says how long before now t was ("3 min ago"), or after ("in 2
// min"); a dash for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + span(-d)
	}
	if d < time.Second {
		return "just now"
	}
	return span(d) + " ago"
}

// span is d in its largest whole unit, or two for short spans: "45 s",
// "3 min", "2 h 5 min", "4 d".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		if m := int(d.Minutes()) % 60; m != 0 && h < 10 {
			return fmt.Sprintf("%d h %d min", h, m)
		}
		return fmt.Sprintf("%d h", h)
	}
	return fmt.Sprintf("%d d", int(d.Hours()/24))
}

// dur is a duration for a table: "340 ms", "1.2 s", "2 min 5 s".
func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0 ms"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	}
	return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
}

// num is n with thousands separated: 1,234,567.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// niceCeil is the smallest of 1, 2, 5 times a power of ten at or above v
// (1 for v at or below 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// dict makes a map of key, value pairs, to pass several values to a
// template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
