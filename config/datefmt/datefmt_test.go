package datefmt

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// fixNow pins the clock two-digit years are read against.
func fixNow(t *testing.T, now time.Time) {
	t.Helper()
	old := nowFunc
	nowFunc = func() time.Time { return now }
	t.Cleanup(func() { nowFunc = old })
}

func TestParse(t *testing.T) {
	fixNow(t, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	var (
		utc     = time.UTC
		gmt     = mustLoad(t, "GMT")
		ny      = mustLoad(t, "America/New_York")
		berlin  = mustLoad(t, "Europe/Berlin")
		kolkata = mustLoad(t, "Asia/Kolkata")
		shangh  = mustLoad(t, "Asia/Shanghai")
	)
	tests := []struct {
		pattern string
		value   string
		loc     *time.Location
		want    string // RFC 3339 in UTC
	}{
		// Cloud Elements' favourite: the Z is a literal, the zone is configured.
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.123Z", gmt, "2026-11-22T10:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.123Z", ny, "2026-11-22T15:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.1Z", utc, "2026-11-22T10:04:05.1Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123-0800", utc, "2026-11-22T18:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123+0000", ny, "2026-11-22T10:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123Z", ny, "2026-11-22T10:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123+05:30", utc, "2026-11-22T04:34:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2026-11-22T10:04:05-08:00", utc, "2026-11-22T18:04:05Z"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2026-11-22T10:04:05Z", ny, "2026-11-22T10:04:05Z"},
		{"yyyy-MM-dd'T'HH:mm:ssX", "2026-11-22T10:04:05+01", utc, "2026-11-22T09:04:05Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSSSS", "2026-11-22T10:04:05.123456", utc, "2026-11-22T10:04:05.123456Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS", "2026-11-22T10:04:05.123456789", utc, "2026-11-22T10:04:05.123456789Z"},
		{"dd/MM/yyyy HH:mm", "22/11/2026 10:04", berlin, "2026-11-22T09:04:00Z"},
		{"dd/MM/yyyy HH:mm", "2/3/2026 9:05", utc, "2026-03-02T09:05:00Z"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "Sun, 22 Nov 2026 10:04:05 GMT", ny, "2026-11-22T10:04:05Z"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "Sun, 22 Nov 2026 10:04:05 PST", utc, "2026-11-22T18:04:05Z"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "Mon, 06 Jul 2026 10:00:00 CEST", utc, "2026-07-06T08:00:00Z"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "sun, 22 nov 2026 10:04:05 utc", ny, "2026-11-22T10:04:05Z"},
		// Weekday names are read, not checked.
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "Fri, 22 Nov 2026 10:04:05 GMT", utc, "2026-11-22T10:04:05Z"},
		{"EEEE, MMMM d, yyyy", "Sunday, November 22, 2026", utc, "2026-11-22T00:00:00Z"},
		{"dd MMM yyyy", "22 November 2026", utc, "2026-11-22T00:00:00Z"},
		{"dd MMMM yyyy", "22 Sep 2026", utc, "2026-09-22T00:00:00Z"},
		{"MM/dd/yyyy hh:mm a", "11/22/2026 12:30 AM", utc, "2026-11-22T00:30:00Z"},
		{"MM/dd/yyyy hh:mm a", "11/22/2026 12:30 PM", utc, "2026-11-22T12:30:00Z"},
		{"MM/dd/yyyy hh:mm a", "11/22/2026 01:05 pm", utc, "2026-11-22T13:05:00Z"},
		{"MM/dd/yyyy hh:mm", "11/22/2026 12:05", utc, "2026-11-22T00:05:00Z"},
		{"K:mm a", "0:30 PM", utc, "1970-01-01T12:30:00Z"},
		{"k:mm", "24:00", utc, "1970-01-01T00:00:00Z"},
		{"yyyyMMddHHmmss", "20261122100405", utc, "2026-11-22T10:04:05Z"},
		{"yyyyMMddHHmmssSSS", "20261122100405007", utc, "2026-11-22T10:04:05.007Z"},
		{"yyyyMMdd'T'HHmmss", "20261122T100405", utc, "2026-11-22T10:04:05Z"},
		{"yyMMdd", "261122", utc, "2026-11-22T00:00:00Z"},
		// Two-digit years: 80 years before now to 20 after.
		{"dd.MM.yy", "22.11.45", utc, "2045-11-22T00:00:00Z"},
		{"dd.MM.yy", "22.11.46", utc, "1946-11-22T00:00:00Z"},
		{"dd.MM.yy", "22.11.2026", utc, "2026-11-22T00:00:00Z"},
		// A configured zone, both sides of daylight saving time.
		{"yyyy-MM-dd HH:mm:ss", "2026-07-01 12:00:00", ny, "2026-07-01T16:00:00Z"},
		{"yyyy-MM-dd HH:mm:ss", "2026-01-15 12:00:00", ny, "2026-01-15T17:00:00Z"},
		// Repeated hour: the earlier instant; skipped hour: moved forward.
		{"yyyy-MM-dd HH:mm:ss", "2026-11-01 01:30:00", ny, "2026-11-01T05:30:00Z"},
		{"yyyy-MM-dd HH:mm:ss", "2026-03-08 02:30:00", ny, "2026-03-08T07:30:00Z"},
		{"yyyy-MM-dd HH:mm:ss", "2018-11-04 00:30:00", mustLoad(t, "America/Sao_Paulo"), "2018-11-04T03:30:00Z"},
		{"yyyy-MM-dd HH:mm:ss", "2026-10-04 02:15:00", mustLoad(t, "Australia/Lord_Howe"), "2026-10-03T15:45:00Z"},
		{"yyyy-MM-dd HH:mm:ss", "2011-12-30 12:00:00", mustLoad(t, "Pacific/Apia"), "2011-12-30T22:00:00Z"},
		// Pipedrive: UTC without a zone in the value.
		{"yyyy-MM-dd HH:mm:ss", "2026-11-22 10:04:05", utc, "2026-11-22T10:04:05Z"},
		{"yyyy-MM-dd HH:mm:ss", "2026-11-22 10:04:05", nil, "2026-11-22T10:04:05Z"},
		{"yyyy-MM-dd HH:mm:ss", "  2026-11-22 10:04:05\n", nil, "2026-11-22T10:04:05Z"},
		// Zone names.
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 GMT+02:00", ny, "2026-11-22T08:00:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 UTC-5", utc, "2026-11-22T15:00:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 +0530", utc, "2026-11-22T04:30:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 Z", ny, "2026-11-22T10:00:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 IST", kolkata, "2026-11-22T04:30:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 CST", shangh, "2026-11-22T02:00:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 CST", utc, "2026-11-22T16:00:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-01 01:30 EST", ny, "2026-11-01T06:30:00Z"},
		{"yyyy-MM-dd HH:mm z", "2026-11-01 01:30 EDT", ny, "2026-11-01T05:30:00Z"},
		{"yyyy-MM-dd HH:mm zzzz", "2026-11-22 10:00 Pacific Standard Time", utc, "2026-11-22T18:00:00Z"},
		{"yyyy-MM-dd HH:mm zzzz", "2026-07-06 10:00 Central European Summer Time", utc, "2026-07-06T08:00:00Z"},
		// Era, day of year, day of week, quotes.
		{"yyyy-MM-dd G", "0044-03-15 BC", utc, "-0043-03-15T00:00:00Z"},
		{"yyyy-MM-dd G", "2026-03-15 AD", utc, "2026-03-15T00:00:00Z"},
		{"yyyy-DDD", "2026-032", utc, "2026-02-01T00:00:00Z"},
		{"yyyy-MM-dd (D)", "2026-02-01 (32)", utc, "2026-02-01T00:00:00Z"},
		{"u yyyy-MM-dd", "7 2026-11-22", utc, "2026-11-22T00:00:00Z"},
		{"''yyyy'''s' MM", "'2026's 11", utc, "2026-11-01T00:00:00Z"},
		{"HH'h'mm", "10h04", utc, "1970-01-01T10:04:00Z"},
		// Leap day.
		{"yyyy-MM-dd", "2024-02-29", utc, "2024-02-29T00:00:00Z"},
		// Named formats.
		{"rfc3339", "2026-11-22T10:04:05Z", ny, "2026-11-22T10:04:05Z"},
		{"RFC3339", "2026-11-22T10:04:05.123456789+02:00", utc, "2026-11-22T08:04:05.123456789Z"},
		{"rfc3339", "2026-11-22t10:04:05.5z", utc, "2026-11-22T10:04:05.5Z"},
		{"rfc3339", "2026-11-22 10:04:05-0800", utc, "2026-11-22T18:04:05Z"},
		{"rfc3339", "2026-11-22T10:04:05", ny, "2026-11-22T15:04:05Z"},
		{"unix", "1700000000", ny, "2023-11-14T22:13:20Z"},
		{"unix", "1700000000.5", utc, "2023-11-14T22:13:20.5Z"},
		{"unix", "1.7e9", utc, "2023-11-14T22:13:20Z"},
		{"unix", "-1.5", utc, "1969-12-31T23:59:58.5Z"},
		{"UNIX_MS", "1700000000123", utc, "2023-11-14T22:13:20.123Z"},
		{"unix_ms", "1700000000123.25", utc, "2023-11-14T22:13:20.12325Z"},
		{"unix_ms", "1.700000000123E12", utc, "2023-11-14T22:13:20.123Z"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.pattern, err)
			continue
		}
		got, err := f.Parse(tt.value, tt.loc)
		if err != nil {
			t.Errorf("%s: Parse(%q): %v", tt.pattern, tt.value, err)
			continue
		}
		if s := got.UTC().Format(time.RFC3339Nano); s != tt.want {
			t.Errorf("%s: Parse(%q) = %s, want %s", tt.pattern, tt.value, s, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	fixNow(t, time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		pattern string
		value   string
		want    string // the whole message, or a part of it after "…"
	}{
		{"yyyy-MM-dd", "2026-13-01", `parse "2026-13-01" as yyyy-MM-dd: month 13 out of range`},
		{"yyyy-MM-dd", "2026-00-01", `parse "2026-00-01" as yyyy-MM-dd: month 0 out of range`},
		{"yyyy-MM-dd", "2026-02-29", `parse "2026-02-29" as yyyy-MM-dd: day 29 out of range (February 2026 has 28 days)`},
		{"yyyy-MM-dd", "2026-04-31", "…day 31 out of range (April 2026 has 30 days)"},
		{"yyyy-MM-dd", "2026-11-22x", `parse "2026-11-22x" as yyyy-MM-dd: unexpected text at "x"`},
		{"yyyy-MM-dd", "2026-11-22 10:00", `…unexpected text at " 10:00"`},
		{"yyyy-MM-dd", "2026-1x-01", `…expected "-" at "x-01"`},
		{"yyyy-MM-dd", "2026/11/22", `…expected "-" at "/11/22"`},
		{"yyyy-MM-dd", "", `parse "" as yyyy-MM-dd: expected year (yyyy) at end of value`},
		{"yyyy-MM-dd", "2026-11-", `…expected day (dd) at end of value`},
		{"yyyy-MM-dd", "20261-11-22", `…year (yyyy) has more than 4 digits at "20261-11-22"`},
		{"yyyy-MM-dd", "0000-01-01", `…year 0 out of range`},
		{"dd/MM/yyyy", "123/11/2026", `…day (dd) has more than 2 digits`},
		{"yyyyMMdd", "2026112", `…expected 2-digit day (dd) at "2"`},
		{"yyyyMMdd", "202611221", `…unexpected text at "1"`},
		{"HH:mm", "24:00", "…hour 24 out of range"},
		{"HH:mm", "12:60", "…minute 60 out of range"},
		{"HH:mm:ss", "12:00:60", "…second 60 out of range"},
		{"hh:mm a", "13:00 PM", "…hour 13 out of range"},
		{"hh:mm a", "0:00 AM", "…hour 0 out of range"},
		{"hh:mm a", "10:00 XM", `…expected AM or PM at "XM"`},
		{"k:mm", "0:00", "…hour 0 out of range"},
		{"dd MMM yyyy", "22 Noz 2026", `…expected month (MMM) such as Jan or January at "Noz 2026"`},
		{"EEE dd", "Sno 22", `…expected weekday (EEE) such as Mon or Monday at "Sno 22"`},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS", "2026-11-22T10:04:05.", "…expected fraction (SSS) at end of value"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS", "2026-11-22T10:04:05.1234567890", "…fraction (SSS) has more than 9 digits"},
		{"yyyy-MM-dd'T'HH:mm:ssZ", "2026-11-22T10:04:05", "…expected offset (Z) such as Z, +02:00 or -0800 at end of value"},
		{"yyyy-MM-dd'T'HH:mm:ssZ", "2026-11-22T10:04:05+1900", `…expected offset (Z) such as Z, +02:00 or -0800 at "+1900"`},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2026-11-22T10:04:05+01:60", "…expected offset (XXX)"},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 XYZ", `…unknown time zone "XYZ": want an offset (+02:00, GMT+2), UTC, GMT, an abbreviation of the configured zone (UTC: UTC) or one such as PST, CET`},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 IST", `…unknown time zone "IST"`},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 ?", `…expected time zone (z) such as UTC, GMT+02:00 or PST at "?"`},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 ", `…expected " " at end of value`},
		{"yyyy-MM-dd HH:mm z", "2026-11-22 10:00 GMT+", `…expected offset such as GMT+02:00 at "+"`},
		{"yyyy-MM-DD", "2026-03-15", "…day of year 15 is not 2026-03-01 (D is the day of the year; d the day of the month)"},
		{"yyyy-DDD", "2026-366", "…day of year 366 out of range (2026 has 365 days)"},
		{"yyyy-MM-dd G", "2026-03-15 XY", `…expected era (AD or BC) at "XY"`},
		{"yyyy-MM-dd'T'HH:mm:ss", "2026-11-22T10:04:05.123", `…unexpected text at ".123"`},
		{"yyyy-MM-dd'T'HH:mm:ss", "2026-11-22 10:04:05", `…expected "T" at " 10:04:05"`},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.123+01:00", `…expected "Z" at "+01:00"`},
		{"yyyy-MM-dd HH:mm:ss", "2026-11-22 10:04:05 and some more text", `…unexpected text at " and some more t…"`},
		{"rfc3339", "2026-11-22T10:04", `parse "2026-11-22T10:04" as rfc3339: expected ":" at end of value`},
		{"rfc3339", "2026-11-22", `…expected "T" between date and time at end of value`},
		{"rfc3339", "2026-11-22T10:04:05+2", `…expected offset (XXX) such as Z, +02:00 or -0800 at "+2"`},
		{"rfc3339", "2026-11-22T10:04:05.Z", `…expected fraction (.SSSSSSSSS) at "Z"`},
		{"unix", "", `parse "" as unix: expected a number of seconds since 1970-01-01 UTC, such as 1700000000`},
		{"unix", "abc", "…expected a number of seconds"},
		{"unix", "1700000000x", "…expected a number of seconds"},
		{"unix", "1e", "…expected a number of seconds"},
		{"unix", "1..5", "…expected a number of seconds"},
		{"unix", "99999999999999999999", "…seconds out of range"},
		{"unix_ms", "1,5", "…expected a number of milliseconds"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.pattern, err)
			continue
		}
		got, err := f.Parse(tt.value, nil)
		if err == nil {
			t.Errorf("%s: Parse(%q) = %v, want error %q", tt.pattern, tt.value, got, tt.want)
			continue
		}
		if part, ok := strings.CutPrefix(tt.want, "…"); ok {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%s: Parse(%q) error = %q, want it to hold %q", tt.pattern, tt.value, err, part)
			}
		} else if err.Error() != tt.want {
			t.Errorf("%s: Parse(%q) error = %q, want %q", tt.pattern, tt.value, err, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{"yyyy-QQ", `unknown pattern letter 'Q' (got "yyyy-QQ")`},
		{"YYYY-MM-dd", `unknown pattern letter 'Y' (got "YYYY-MM-dd"); use 'y' for the year`},
		{"yyyy-MM-ddTHH:mm:ss", `unknown pattern letter 'T' (got "yyyy-MM-ddTHH:mm:ss"); quote literal text, as in 'T'`},
		{"yyyy-MM-dd'T", `unterminated quote (got "yyyy-MM-dd'T"): close quoted text with ', write '' for a quote`},
		{"yyyy-MM-dd'T'HH:mm:ssXXXX", `pattern letter 'X' repeated 4 times: want X, XX or XXX (got "yyyy-MM-dd'T'HH:mm:ssXXXX")`},
		{"ss.SSSSSSSSSS", `pattern letter 'S' repeated 10 times: at most 9 (got "ss.SSSSSSSSSS")`},
		{"", "empty date format: want a pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSZ, or rfc3339, unix or unix_ms"},
		{"  ", "empty date format: want a pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSZ, or rfc3339, unix or unix_ms"},
		{"'today'", `date format has no pattern letters (got "'today'"): want a pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSZ, or rfc3339, unix or unix_ms`},
		{"unixtime", `unknown pattern letter 'n' (got "unixtime"); use S for fractions of a second`},
	}
	for _, tt := range tests {
		f, err := Parse(tt.pattern)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error %q", tt.pattern, f, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%q) error = %q, want %q", tt.pattern, err, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	var (
		ny      = mustLoad(t, "America/New_York")
		kolkata = mustLoad(t, "Asia/Kolkata")
		plus2   = mustLoad(t, "+02:00")
		gmt     = mustLoad(t, "GMT")
	)
	summer := time.Date(2026, 7, 5, 14, 3, 9, 123456789, time.UTC) // a Sunday
	winter := time.Date(2026, 1, 2, 0, 7, 0, 5_000_000, time.UTC)  // a Friday
	tests := []struct {
		pattern string
		t       time.Time
		loc     *time.Location
		want    string
	}{
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", summer, nil, "2026-07-05T14:03:09.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", winter, gmt, "2026-01-02T00:07:00.005Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", summer, ny, "2026-07-05T10:03:09.123-0400"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", winter, ny, "2026-01-01T19:07:00.005-0500"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", summer, nil, "2026-07-05T14:03:09.123+0000"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", summer, nil, "2026-07-05T14:03:09Z"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", summer, kolkata, "2026-07-05T19:33:09+05:30"},
		{"yyyy-MM-dd'T'HH:mm:ssXX", summer, ny, "2026-07-05T10:03:09-0400"},
		{"yyyy-MM-dd'T'HH:mm:ssX", summer, kolkata, "2026-07-05T19:33:09+05"},
		{"dd/MM/yyyy HH:mm", summer, nil, "05/07/2026 14:03"},
		{"d/M/yy H:m:s", winter, nil, "2/1/26 0:7:0"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", summer, gmt, "Sun, 05 Jul 2026 14:03:09 GMT"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", summer, nil, "Sun, 05 Jul 2026 14:03:09 UTC"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", summer, ny, "Sun, 05 Jul 2026 10:03:09 EDT"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", winter, ny, "Thu, 01 Jan 2026 19:07:00 EST"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", summer, plus2, "Sun, 05 Jul 2026 16:03:09 GMT+02:00"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", summer, time.FixedZone("", -3*3600), "Sun, 05 Jul 2026 11:03:09 GMT-03:00"},
		{"EEEE, MMMM d, yyyy zzzz", summer, ny, "Sunday, July 5, 2026 Eastern Daylight Time"},
		{"zzzz", summer, nil, "Coordinated Universal Time"},
		{"zzzz", summer, kolkata, "IST"},
		{"MM/dd/yyyy hh:mm a", summer, nil, "07/05/2026 02:03 PM"},
		{"MM/dd/yyyy hh:mm a", winter, nil, "01/02/2026 12:07 AM"},
		{"K:mm a, k:mm", winter, nil, "0:07 AM, 24:07"},
		{"yyyyMMddHHmmss", summer, nil, "20260705140309"},
		{"yyyyMMddHHmmssSSS", winter, nil, "20260102000700005"},
		{"y yyy yyyyy", summer, nil, "2026 2026 02026"},
		{"yyyy-MM-dd G", time.Date(-43, 3, 15, 0, 0, 0, 0, time.UTC), nil, "0044-03-15 BC"},
		{"yyyy-MM-dd GG", summer, nil, "2026-07-05 AD"},
		{"yyyy-DDD u", winter, nil, "2026-002 5"},
		{"u", summer, nil, "7"},
		{"ss.S ss.SSSSSS ss.SSSSSSSSS", summer, nil, "09.1 09.123456 09.123456789"},
		{"''yyyy'''s' 'o''clock'", summer, nil, "'2026's o'clock"},
		{"yyyy年MM月dd日", summer, nil, "2026年07月05日"},
		{"rfc3339", summer, ny, "2026-07-05T10:03:09.123456789-04:00"},
		{"rfc3339", winter, nil, "2026-01-02T00:07:00.005Z"},
		{"unix", summer, ny, "1783260189"},
		{"unix_ms", summer, nil, "1783260189123"},
		{"unix_ms", time.Unix(-2, 500_000_000), nil, "-1500"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.pattern)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.pattern, err)
			continue
		}
		if got := f.Format(tt.t, tt.loc); got != tt.want {
			t.Errorf("%s: Format(%v, %v) = %q, want %q", tt.pattern, tt.t, tt.loc, got, tt.want)
		}
	}
}

// TestZonePrecedence checks that a zone in the value wins over the
// configured one, and that the configured one applies otherwise.
func TestZonePrecedence(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		pattern string
		value   string
		loc     *time.Location
		want    string // RFC 3339 with the result's own offset
	}{
		{"yyyy-MM-dd HH:mm:ssZ", "2026-07-01 12:00:00+0200", ny, "2026-07-01T12:00:00+02:00"},
		{"yyyy-MM-dd HH:mm:ssZ", "2026-07-01 12:00:00Z", ny, "2026-07-01T12:00:00Z"},
		{"yyyy-MM-dd HH:mm:ss z", "2026-07-01 12:00:00 PDT", ny, "2026-07-01T12:00:00-07:00"},
		{"yyyy-MM-dd HH:mm:ss", "2026-07-01 12:00:00", ny, "2026-07-01T12:00:00-04:00"},
		{"yyyy-MM-dd HH:mm:ss", "2026-07-01 12:00:00", nil, "2026-07-01T12:00:00Z"},
		{"rfc3339", "2026-07-01T12:00:00+05:45", ny, "2026-07-01T12:00:00+05:45"},
		{"rfc3339", "2026-07-01T12:00:00", ny, "2026-07-01T12:00:00-04:00"},
		{"unix", "1782907200", ny, "2026-07-01T12:00:00Z"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Parse(tt.value, tt.loc)
		if err != nil {
			t.Errorf("%s: Parse(%q): %v", tt.pattern, tt.value, err)
			continue
		}
		if s := got.Format(time.RFC3339); s != tt.want {
			t.Errorf("%s: Parse(%q, %v) = %s, want %s", tt.pattern, tt.value, tt.loc, s, tt.want)
		}
	}
}

func TestLoadLocation(t *testing.T) {
	summer := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		offset int    // at summer, seconds east of UTC
		abbr   string // at summer
	}{
		{"", 0, "UTC"},
		{"UTC", 0, "UTC"},
		{"utc", 0, "UTC"},
		{"Z", 0, "UTC"},
		{"GMT", 0, "GMT"},
		{" gmt ", 0, "GMT"},
		{"Europe/Berlin", 2 * 3600, "CEST"},
		{"America/New_York", -4 * 3600, "EDT"},
		{"Asia/Kolkata", 5*3600 + 1800, "IST"},
		{"Etc/GMT+5", -5 * 3600, "-05"},
		{"+02:00", 2 * 3600, "GMT+02:00"},
		{"-0530", -(5*3600 + 1800), "GMT-05:30"},
		{"+2", 2 * 3600, "GMT+02:00"},
		{"GMT+02:00", 2 * 3600, "GMT+02:00"},
		{"UTC-5", -5 * 3600, "GMT-05:00"},
		{"utc+05:45", 5*3600 + 45*60, "GMT+05:45"},
		{"+00:00", 0, "UTC"},
		{"-18:00", -18 * 3600, "GMT-18:00"},
	}
	for _, tt := range tests {
		loc, err := LoadLocation(tt.name)
		if err != nil {
			t.Errorf("LoadLocation(%q): %v", tt.name, err)
			continue
		}
		abbr, off := summer.In(loc).Zone()
		if off != tt.offset || abbr != tt.abbr {
			t.Errorf("LoadLocation(%q): zone %s %d, want %s %d", tt.name, abbr, off, tt.abbr, tt.offset)
		}
	}

	bad := []struct{ name, want string }{
		{"Mars/Olympus", `load time zone "Mars/Olympus": want an IANA name such as Europe/Berlin or America/New_York, UTC, GMT, or an offset such as +02:00, -0530, GMT+2: unknown time zone Mars/Olympus`},
		{"PST", `load time zone "PST": want an IANA name`},
		{"+25:00", `load time zone "+25:00": want an offset within ±18:00 such as +02:00, -0530, +2, GMT+02:00 or UTC-5`},
		{"GMT+2x", `load time zone "GMT+2x": want an offset within ±18:00`},
		{"+", `load time zone "+": want an offset`},
	}
	for _, tt := range bad {
		loc, err := LoadLocation(tt.name)
		if err == nil {
			t.Errorf("LoadLocation(%q) = %v, want error", tt.name, loc)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("LoadLocation(%q) error = %q, want it to start %q", tt.name, err, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	for _, p := range []string{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "RFC3339", "Unix_MS"} {
		f, err := Parse(p)
		if err != nil {
			t.Fatal(err)
		}
		if f.String() != p {
			t.Errorf("String() = %q, want %q", f.String(), p)
		}
	}
}

// TestConcurrent uses one Format from many goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	f, err := Parse("EEE, dd MMM yyyy HH:mm:ss zzz")
	if err != nil {
		t.Fatal(err)
	}
	ny := mustLoad(t, "America/New_York")
	want := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				got, err := f.Parse(f.Format(want, ny), ny)
				if err != nil || !got.Equal(want) {
					t.Errorf("round trip = %v, %v; want %v", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestParseAllocs keeps reading a value free of allocations beyond the
// result, as it runs for every record.
func TestParseAllocs(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	for _, c := range []struct{ pattern, value string }{
		{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.123Z"},
		{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123-0800"},
		{"EEE, dd MMM yyyy HH:mm:ss zzz", "Sun, 22 Nov 2026 10:04:05 EST"},
		{"yyyy-MM-dd HH:mm:ss", "2026-11-22 10:04:05"},
		{"rfc3339", "2026-11-22T10:04:05.123+05:30"},
		{"unix_ms", "1700000000123"},
	} {
		f, err := Parse(c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		n := testing.AllocsPerRun(100, func() {
			if _, err := f.Parse(c.value, ny); err != nil {
				t.Fatal(err)
			}
		})
		if n > 0 {
			t.Errorf("%s: Parse allocates %v times", c.pattern, n)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, pattern, value string }{
		{"literalZ", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "2026-11-22T10:04:05.123Z"},
		{"offset", "yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2026-11-22T10:04:05.123-0800"},
		{"rfc1123", "EEE, dd MMM yyyy HH:mm:ss zzz", "Sun, 22 Nov 2026 10:04:05 GMT"},
		{"zone", "yyyy-MM-dd HH:mm:ss", "2026-11-22 10:04:05"},
		{"rfc3339", "rfc3339", "2026-11-22T10:04:05.123Z"},
		{"unix_ms", "unix_ms", "1700000000123"},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, err := Parse(c.pattern)
			if err != nil {
				b.Fatal(err)
			}
			loc := mustLoad(b, "America/New_York")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Parse(c.value, loc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
	}
}

func TestReadings(t *testing.T) {
	ny, lh := mustLoad(t, "America/New_York"), mustLoad(t, "Australia/Lord_Howe")
	utc := func(h, m int) time.Time { return time.Date(2026, 11, 1, h, m, 0, 0, time.UTC) }
	lhUTC := func(h, m int) time.Time { return time.Date(2026, 4, 4, h, m, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name              string
		t, earlier, later time.Time
	}{
		// New York, 2026-11-01: 01:00–01:59 EDT (05:00Z–05:59Z), again as EST (06:00Z–06:59Z).
		{"fold, first pass", utc(5, 10).In(ny), utc(5, 10), utc(6, 10)},
		{"fold, second pass", utc(6, 10).In(ny), utc(5, 10), utc(6, 10)},
		{"fold's first minute", utc(5, 0).In(ny), utc(5, 0), utc(6, 0)},
		{"fold's last minute", utc(6, 59).In(ny), utc(5, 59), utc(6, 59)},
		{"before the fold", utc(4, 59).In(ny), utc(4, 59), utc(4, 59)},
		{"after the fold", utc(7, 0).In(ny), utc(7, 0), utc(7, 0)},
		// Lord Howe, 2026-04-05: 01:30–01:59 +11 (14:30Z–14:59Z), again as +10:30 (15:00Z–15:29Z).
		{"half-hour fold, first pass", lhUTC(14, 40).In(lh), lhUTC(14, 40), lhUTC(15, 10)},
		{"half-hour fold, second pass", lhUTC(15, 10).In(lh), lhUTC(14, 40), lhUTC(15, 10)},
		{"after the half-hour fold", lhUTC(15, 30).In(lh), lhUTC(15, 30), lhUTC(15, 30)},
		{"a gap is no fold", time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC).In(ny), time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC), time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)},
		{"UTC", utc(5, 10), utc(5, 10), utc(5, 10)},
		{"a fixed offset", utc(5, 10).In(time.FixedZone("", -4*3600)), utc(5, 10), utc(5, 10)},
	} {
		e, l := Readings(tc.t)
		if !e.Equal(tc.earlier) || !l.Equal(tc.later) {
			t.Errorf("%s: Readings(%s) = %s, %s; want %s, %s", tc.name, tc.t, e.UTC(), l.UTC(), tc.earlier, tc.later)
		}
		// The fold's first instant: 05:00Z in New York, 14:30Z on Lord
		// Howe; t itself outside a fold.
		want := tc.t
		if !tc.earlier.Equal(tc.later) {
			want = tc.later.Truncate(time.Hour).Add(-tc.later.Sub(tc.earlier))
		}
		if got := FoldStart(tc.t); !got.Equal(want) {
			t.Errorf("%s: FoldStart(%s) = %s, want %s", tc.name, tc.t, got.UTC(), want.UTC())
		}
	}
	// Parse reads a fold's wall-clock time as its earlier instant, and
	// Readings gives both.
	f, err := Parse("yyyy-MM-dd HH:mm:ss")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct {
		loc            *time.Location
		text           string
		earlier, later time.Time
	}{{ny, "2026-11-01 01:10:00", utc(5, 10), utc(6, 10)}, {lh, "2026-04-05 01:40:00", lhUTC(14, 40), lhUTC(15, 10)}} {
		p, err := f.Parse(v.text, v.loc)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Equal(v.earlier) {
			t.Errorf("%s in %s read as %s, want the fold's earlier instant %s", v.text, v.loc, p.UTC(), v.earlier)
		}
		if e, l := Readings(p); !e.Equal(v.earlier) || !l.Equal(v.later) {
			t.Errorf("%s in %s: readings %s, %s; want %s, %s", v.text, v.loc, e.UTC(), l.UTC(), v.earlier, v.later)
		}
	}
}
