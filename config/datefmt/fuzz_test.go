package datefmt

import (
	"strings"
	"testing"
	"time"
)

// roundTripPatterns are the patterns FuzzRoundTrip writes and reads back.
var roundTripPatterns = []struct {
	pattern string
	prec    time.Duration // the finest unit the pattern writes
	zone    bool          // the value carries its offset (to the minute)
	hourOff bool          // the value carries its offset, hours only (X)
	yy      bool          // the value carries two digits of the year
}{
	{"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", time.Millisecond, false, false, false},
	{"yyyy-MM-dd'T'HH:mm:ss.SSSZ", time.Millisecond, true, false, false},
	{"yyyy-MM-dd'T'HH:mm:ssXXX", time.Second, true, false, false},
	{"dd/MM/yyyy HH:mm", time.Minute, false, false, false},
	{"EEE, dd MMM yyyy HH:mm:ss zzz", time.Second, true, false, false},
	{"MM/dd/yyyy hh:mm:ss.SSSSSS a", time.Microsecond, false, false, false},
	{"yyyyMMddHHmmssSSSSSSSSS", time.Nanosecond, false, false, false},
	{"yyyy-MM-dd HH:mm:ss", time.Second, false, false, false},
	{"rfc3339", time.Nanosecond, true, false, false},
	{"unix", time.Second, true, false, false},
	{"unix_ms", time.Millisecond, true, false, false},
	{"EEEE, MMMM d, yyyy G k:m:s.SSSSSSSSS zzzz", time.Nanosecond, true, false, false},
	{"yyyy-DDD'T'K:mm a XX", time.Minute, true, false, false},
	{"dd.MM.yy HH:mm", time.Minute, false, false, true},
	{"yyyy-MM-dd'T'HH:mm:ss.SSSX", time.Millisecond, false, true, false},
	{"u yyyy-MM-dd HH:mm:ss z", time.Second, true, false, false},
}

// roundTripZones are the zones FuzzRoundTrip writes in; all have offsets of
// whole minutes from 1920 on.
var roundTripZones = []string{
	"UTC", "+05:30", "-08:00", "America/New_York", "Europe/Berlin",
	"Australia/Lord_Howe", "Asia/Kathmandu", "America/Sao_Paulo", "Asia/Kolkata",
}

// minRoundTrip is the earliest time FuzzRoundTrip writes with a pattern.
var minRoundTrip = time.Date(1920, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// wall returns the wall-clock fields of t in loc down to prec.
func wall(t time.Time, loc *time.Location, prec time.Duration, yy bool) [7]int {
	t = t.In(loc)
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if yy {
		y %= 100
	}
	w := [7]int{y, int(mo), d, h, mi, s, t.Nanosecond() / int(prec) * int(prec)}
	switch prec {
	case time.Minute:
		w[5], w[6] = 0, 0
	case time.Second:
		w[6] = 0
	}
	return w
}

// FuzzRoundTrip writes a time with a pattern in a zone, reads it back and
// checks that it is the same instant, or the same wall-clock time where the
// pattern writes no offset, at the precision of the pattern.
func FuzzRoundTrip(f *testing.F) {
	for i := range roundTripPatterns {
		for j := range roundTripZones {
			f.Add(int64(1782907200123456789), uint8(i), uint8(j))
		}
	}
	f.Fuzz(func(t *testing.T, nanos int64, pi, li uint8) {
		p := roundTripPatterns[int(pi)%len(roundTripPatterns)]
		loc := mustLoad(t, roundTripZones[int(li)%len(roundTripZones)])
		form, err := Parse(p.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if p.pattern != "unix" && p.pattern != "unix_ms" && nanos < minRoundTrip {
			// Fold into [1920, 1970): older offsets have seconds that no
			// pattern writes.
			nanos = minRoundTrip + int64((uint64(nanos)^1<<63)%uint64(-minRoundTrip))
		}
		tm := time.Unix(0, nanos)
		_, off := tm.In(loc).Zone()
		if p.hourOff && off%3600 != 0 {
			return // X writes the hours of +05:30 only, as Java does
		}

		s := form.Format(tm, loc)
		got, err := form.Parse(s, loc)
		if err != nil {
			t.Fatalf("%s in %v: Format(%v) = %q, which Parse rejects: %v", p.pattern, loc, tm, s, err)
		}
		if again := form.Format(got, loc); again != s {
			t.Errorf("%s in %v: Format(%v) = %q, read back as %v, written again as %q", p.pattern, loc, tm, s, got, again)
		}
		if p.zone || p.hourOff {
			if want := tm.Truncate(p.prec); !got.Equal(want) {
				t.Errorf("%s in %v: Format(%v) = %q, read back as %v, want %v", p.pattern, loc, tm, s, got, want)
			}
		}
		if p.pattern != "unix" && p.pattern != "unix_ms" {
			if w, g := wall(tm, loc, p.prec, p.yy), wall(got, loc, p.prec, p.yy); w != g {
				t.Errorf("%s in %v: Format(%v) = %q, read back as %v: wall clock %v, want %v", p.pattern, loc, tm, s, got, g, w)
			}
		}
	})
}

// parsePatterns are the patterns FuzzParse reads with.
var parsePatterns = []string{
	"yyyy-MM-dd'T'HH:mm:ss.SSSZ",
	"EEE, dd MMM yyyy HH:mm:ss zzz",
	"dd/MM/yy h:mm a",
	"yyyyMMddHHmmss",
	"rfc3339",
	"unix",
	"unix_ms",
	"yyyy-DDD G zzzz",
	"MMMM d, y HH:mm:ss.SSSSSSSSS XXX",
	"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'",
	"k:m:s K a X",
}

// FuzzParse reads arbitrary values: Parse must not panic, and what it
// accepts must write and read back to a stable value.
func FuzzParse(f *testing.F) {
	for i, v := range []string{
		"2026-11-22T10:04:05.123-0800",
		"Sun, 22 Nov 2026 10:04:05 EST",
		"22/11/26 1:05 pm",
		"20261122100405",
		"2026-11-22T10:04:05.123456789+05:30",
		"1700000000.5",
		"-1.7e12",
		"2026-326 AD Pacific Standard Time",
		"November 22, 2026 10:04:05.123456789 -08:00",
		"2026-11-22T10:04:05.123Z",
		"24:0:0 11 PM Z",
	} {
		f.Add(v, uint8(i))
	}
	ny := mustLoad(f, "America/New_York")
	f.Fuzz(func(t *testing.T, value string, pi uint8) {
		pattern := parsePatterns[int(pi)%len(parsePatterns)]
		form, err := Parse(pattern)
		if err != nil {
			t.Fatal(err)
		}
		got, err := form.Parse(value, ny)
		if err != nil {
			return
		}
		if y := got.In(ny).Year(); (y < 1 || y > 9999) && pattern != "unix" && pattern != "unix_ms" {
			return // an offset took the year past what yyyy reads
		}
		if _, off := got.In(ny).Zone(); off%60 != 0 {
			return // offsets are written to the minute: LMT -4:56:02 before 1883
		}
		s := form.Format(got, ny)
		got2, err := form.Parse(s, ny)
		if err != nil {
			t.Fatalf("%s: %q read as %v, written as %q, which Parse rejects: %v", pattern, value, got, s, err)
		}
		if got2.Year() != got.In(ny).Year() && strings.Contains(pattern, "yy") && !strings.Contains(pattern, "yyy") {
			// A two-digit year cannot carry the century of a year read in
			// full (7020 as yy): written back it names another date, where
			// a DST gap may move the time.
			return
		}
		if s2 := form.Format(got2, ny); s2 != s {
			t.Errorf("%s: %q read as %v, written as %q, read as %v, written as %q", pattern, value, got, s, got2, s2)
		}
	})
}
