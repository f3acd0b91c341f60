package config

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// querySafe is what an expanded placeholder may hold: the output of
// url.QueryEscape, or a signed number.
var querySafe = regexp.MustCompile(`^[A-Za-z0-9%._~+-]*$`)

// fuzzZones are the zones FuzzTemplate expands ${date:…} in.
var fuzzZones = []string{"UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe"}

// FuzzTemplate parses arbitrary URL templates: ParseTemplate must not
// panic; a template it accepts keeps its text, has a since placeholder
// exactly when it holds "${", and expands, for any since time and zone,
// to its literal parts in order with each placeholder replaced by
// query-safe text (so an expanded date can never add a parameter or
// break the URL).
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"/contacts?since=${gmtDate:yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}&order=date_updated",
		"/items?updated_after=${epoch}&limit=100",
		"/items?ms=${epoch_ms}",
		"/deals?since=${date:EEE, dd MMM yyyy HH:mm:ss zzz}",
		"https://api.example.com/v1/x?a=${gmtDate:yyyyMMddHHmmss}&b=${date:dd/MM/yy h:mm a}",
		"/plain/path?x=1#frag",
		"${gmtDate:rfc3339}${epoch}${epoch_ms}",
		"${}", "${gmtDate:}", "${epoch:ms}", "${gmtdate:yyyy}", "${gmtDate:'}", "${gmtDate:yyyy", "$${epoch}", "}${epoch}{",
	} {
		f.Add(s, int64(1782907200123456789), uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, nanos int64, zone uint8) {
		tpl, err := ParseTemplate(s)
		if err != nil {
			return
		}
		if tpl.String() != s {
			t.Errorf("String() = %q, want %q", tpl.String(), s)
		}
		if tpl.HasSince() != strings.Contains(s, "${") {
			t.Errorf("%q: HasSince() = %v", s, tpl.HasSince())
		}
		loc, err := time.LoadLocation(fuzzZones[int(zone)%len(fuzzZones)])
		if err != nil {
			t.Fatal(err)
		}
		since := time.Unix(0, nanos)
		out := tpl.Expand(since, loc)
		if again := tpl.Expand(since, loc); again != out {
			t.Errorf("%q: Expand gave %q, then %q", s, out, again)
		}
		if strings.Contains(out, "${") {
			t.Errorf("%q expanded to %q, which still holds ${", s, out)
		}
		var want strings.Builder
		for _, p := range tpl.parts {
			if p.fn == "" {
				want.WriteString(p.literal)
				continue
			}
			one := (&Template{parts: []templatePart{p}}).Expand(since, loc)
			if !querySafe.MatchString(one) {
				t.Errorf("%q: ${%s} expanded to %q, which is not query-safe", s, p.fn, one)
			}
			want.WriteString(one)
		}
		if out != want.String() {
			t.Errorf("%q expanded to %q, want its literal parts and placeholders in order: %q", s, out, want.String())
		}
	})
}
