package datefmt

import (
	"fmt"
	"strings"
	"time"
)

// zoneAbbr is a zone abbreviation read with a fixed meaning.
type zoneAbbr struct {
	offset int    // seconds east of UTC
	long   string // the name zzzz writes and reads
}

// zoneAbbrs are the abbreviations z reads when the configured zone does not
// use them itself: RFC 822's North American zones, and abbreviations that
// name one offset only. IST, BST, AST and others that mean different
// offsets in different countries are absent; they are read only where the
// configured zone uses them (IST with Asia/Kolkata).
var zoneAbbrs = map[string]zoneAbbr{
	"UTC":  {0, "Coordinated Universal Time"},
	"GMT":  {0, "Greenwich Mean Time"},
	"EST":  {-5 * 3600, "Eastern Standard Time"},
	"EDT":  {-4 * 3600, "Eastern Daylight Time"},
	"CST":  {-6 * 3600, "Central Standard Time"},
	"CDT":  {-5 * 3600, "Central Daylight Time"},
	"MST":  {-7 * 3600, "Mountain Standard Time"},
	"MDT":  {-6 * 3600, "Mountain Daylight Time"},
	"PST":  {-8 * 3600, "Pacific Standard Time"},
	"PDT":  {-7 * 3600, "Pacific Daylight Time"},
	"AKST": {-9 * 3600, "Alaska Standard Time"},
	"AKDT": {-8 * 3600, "Alaska Daylight Time"},
	"HST":  {-10 * 3600, "Hawaii Standard Time"},
	"WET":  {0, "Western European Time"},
	"WEST": {1 * 3600, "Western European Summer Time"},
	"CET":  {1 * 3600, "Central European Time"},
	"CEST": {2 * 3600, "Central European Summer Time"},
	"EET":  {2 * 3600, "Eastern European Time"},
	"EEST": {3 * 3600, "Eastern European Summer Time"},
	"MSK":  {3 * 3600, "Moscow Standard Time"},
	"SAST": {2 * 3600, "South Africa Standard Time"},
	"HKT":  {8 * 3600, "Hong Kong Time"},
	"SGT":  {8 * 3600, "Singapore Time"},
	"AWST": {8 * 3600, "Australian Western Standard Time"},
	"JST":  {9 * 3600, "Japan Standard Time"},
	"KST":  {9 * 3600, "Korea Standard Time"},
	"ACST": {9*3600 + 1800, "Australian Central Standard Time"},
	"ACDT": {10*3600 + 1800, "Australian Central Daylight Time"},
	"AEST": {10 * 3600, "Australian Eastern Standard Time"},
	"AEDT": {11 * 3600, "Australian Eastern Daylight Time"},
	"NZST": {12 * 3600, "New Zealand Standard Time"},
	"NZDT": {13 * 3600, "New Zealand Daylight Time"},
}

// longZones lists the long names of zoneAbbrs, for reading.
var longZones = func() []zoneAbbr {
	zs := make([]zoneAbbr, 0, len(zoneAbbrs))
	for _, z := range zoneAbbrs {
		zs = append(zs, z)
	}
	return zs
}()

// matchLongZone finds the long zone name v[pos:] starts with, ignoring
// case; the longest wins.
func matchLongZone(v string, pos int) (off, end int, ok bool) {
	// Every long name is words separated by spaces.
	i := pos
	for i < len(v) && isLetter(v[i]) {
		i++
	}
	if i == pos || i >= len(v) || v[i] != ' ' {
		return 0, pos, false
	}
	rest := v[pos:]
	end = pos
	for _, z := range longZones {
		if len(rest) >= len(z.long) && pos+len(z.long) > end && strings.EqualFold(rest[:len(z.long)], z.long) {
			off, end, ok = z.offset, pos+len(z.long), true
		}
	}
	return off, end, ok
}

// resolveAbbr finds the offset of a zone abbreviation read with the
// wall-clock time wall (expressed in UTC): the offset loc itself gives the
// abbreviation on that date first, then the fixed table.
func resolveAbbr(abbr string, wall time.Time, loc *time.Location) (int, bool) {
	for _, probe := range [...]time.Duration{0, -24 * time.Hour, 24 * time.Hour} {
		name, off := wall.Add(probe).In(loc).Zone()
		if !strings.EqualFold(name, abbr) {
			continue
		}
		if n, o := wall.Add(-time.Duration(off) * time.Second).In(loc).Zone(); o == off && strings.EqualFold(n, abbr) {
			return off, true
		}
	}
	var buf [8]byte
	if len(abbr) > len(buf) {
		return 0, false
	}
	for i := 0; i < len(abbr); i++ {
		c := abbr[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	z, ok := zoneAbbrs[string(buf[:len(abbr)])]
	return z.offset, ok
}

// zoneAbbrAt names the abbreviations loc uses now, for error messages.
func zoneAbbrAt(loc *time.Location) string {
	now := nowFunc()
	a, _ := now.In(loc).Zone()
	b, _ := now.AddDate(0, 6, 0).In(loc).Zone()
	if a == b {
		return loc.String() + ": " + a
	}
	return loc.String() + ": " + a + ", " + b
}

// fixedZones holds a zone for each offset that is a multiple of 15 minutes
// within ±18 hours, so that reading an offset does not allocate.
var fixedZones = func() (zs [2*18*4 + 1]*time.Location) {
	for i := range zs {
		off := (i - 18*4) * 900
		if off == 0 {
			zs[i] = time.UTC
			continue
		}
		zs[i] = time.FixedZone("", off)
	}
	return zs
}()

// fixedZone returns a zone of the offset off (seconds east of UTC): UTC
// for zero, else an unnamed fixed zone.
func fixedZone(off int) *time.Location {
	if off%900 == 0 && off >= -18*3600 && off <= 18*3600 {
		return fixedZones[off/900+18*4]
	}
	return time.FixedZone("", off)
}

// gmt is UTC under the name GMT, so that z writes GMT where GMT was
// configured.
var gmt = time.FixedZone("GMT", 0)

// LoadLocation resolves a time zone: an IANA name (Europe/Berlin), GMT,
// UTC, Z or the empty string (UTC), or a fixed offset: +02:00, -0530, +2,
// GMT+02:00, UTC-5. A fixed offset is named as Java names it, GMT+02:00.
// The IANA database is built in, so names resolve without zoneinfo files.
func LoadLocation(name string) (*time.Location, error) {
	s := strings.TrimSpace(name)
	switch strings.ToUpper(s) {
	case "", "UTC", "Z", "UT":
		return time.UTC, nil
	case "GMT":
		return gmt, nil
	}
	rest := s
	for _, p := range [...]string{"GMT", "UTC", "UT"} {
		if len(rest) > len(p) && strings.EqualFold(rest[:len(p)], p) && (rest[len(p)] == '+' || rest[len(p)] == '-') {
			rest = rest[len(p):]
			break
		}
	}
	if rest[0] == '+' || rest[0] == '-' {
		off, end, ok := readOffset(rest, 0, true)
		if !ok || end != len(rest) {
			return nil, fmt.Errorf("load time zone %q: want an offset within ±18:00 such as +02:00, -0530, +2, GMT+02:00 or UTC-5", name)
		}
		if off == 0 {
			return time.UTC, nil
		}
		b := appendOffset([]byte("GMT"), off, true, true)
		return time.FixedZone(string(b), off), nil
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, fmt.Errorf("load time zone %q: want an IANA name such as Europe/Berlin or America/New_York, UTC, GMT, or an offset such as +02:00, -0530, GMT+2: %w", name, err)
	}
	return loc, nil
}

// foldSpan bounds how far from a time Readings looks for a change of
// offset: longer than any fold there is (one hour, or thirty minutes on
// Lord Howe Island).
const foldSpan = 3 * time.Hour

// Readings returns the instants that t's wall-clock time names in t's
// location: t twice, or, where that time falls in a fold (the hour a zone
// repeats when its offset goes back, as daylight saving time ends), the
// earlier and the later of the two. A date read without an offset in a
// fold is ambiguous: Parse reads it as the earlier, and a caller that
// must not misjudge such a date considers both.
func Readings(t time.Time) (earlier, later time.Time) {
	if t.Location() == time.UTC {
		return t, t
	}
	_, off := t.Zone()
	if _, after := t.Add(foldSpan).Zone(); after < off {
		u := t.Add(time.Duration(off-after) * time.Second)
		if _, o := u.Zone(); o == after {
			return t, u
		}
	}
	if _, before := t.Add(-foldSpan).Zone(); before > off {
		u := t.Add(-time.Duration(before-off) * time.Second)
		if _, o := u.Zone(); o == before {
			return u, t
		}
	}
	return t, t
}

// FoldStart returns the first instant of the DST fold t's wall-clock time
// falls in (where the repeated hour's first pass begins), or t when it
// falls in none.
func FoldStart(t time.Time) time.Time {
	early, late := Readings(t)
	if early.Equal(late) {
		return t
	}
	second, _ := late.ZoneBounds() // the change of offset: the second pass begins
	return second.Add(-late.Sub(early))
}
