// Package datefmt reads and writes dates in Java SimpleDateFormat patterns
// (yyyy-MM-dd'T'HH:mm:ss.SSSZ, dd/MM/yyyy HH:mm, EEE, dd MMM yyyy HH:mm:ss zzz
// …) and in the named formats rfc3339, unix and unix_ms.
//
// A pattern is compiled once by [Parse] into a [Format]; the Format then
// reads values with [Format.Parse] and writes them with [Format.Format].
//
// # Pattern letters
//
//	G        era: AD or BC
//	y        year; yy writes two digits; y and yy read two digits as the
//	         year within 80 years before and 20 years after the current
//	         year (Java's rule, at the granularity of a year) and any other
//	         number of digits as it stands; y, yyy, yyyy write the full year
//	M, L     month: M and MM numeric, MMM Jan, MMMM January (reading
//	         accepts the short and the long name for MMM and MMMM)
//	d        day of month
//	D        day of year; when M or d is given too, they must agree
//	E        weekday: E, EE, EEE Mon, EEEE Monday; read and ignored
//	u        day number of week, 1 = Monday … 7 = Sunday; read and ignored
//	a        AM or PM (any case when reading)
//	H        hour 0-23        k  hour 1-24
//	h        hour 1-12        K  hour 0-11
//	m        minute           s  second
//	S        fraction of a second, 1 to 9 digits: the digits are a decimal
//	         fraction, so SSS is milliseconds and SSSSSS microseconds (Java
//	         reads S as a count of milliseconds; for SSS the two agree)
//	Z        offset -0800; reading also accepts Z, -08 and -08:00
//	X        ISO 8601 offset: X -08, XX -0800, XXX -08:00, each Z for
//	         zero; X drops the minutes of an offset such as +05:30, as Java
//	         does; reading accepts any of the forms
//	z        zone: z, zz, zzz write the abbreviation of the zone (EST, CET)
//	         or GMT+05:30 where the zone has none; zzzz a long name where one
//	         is known (Eastern Standard Time). Reading accepts GMT, UTC, UT,
//	         Z, GMT+02:00, UTC-5, +0200, -08:00, the abbreviation the
//	         configured zone itself uses on that date (IST for Asia/Kolkata,
//	         CST for Asia/Shanghai), then these, each with its long name:
//	         EST EDT CST CDT MST MDT PST PDT (the North American zones of
//	         RFC 822) AKST AKDT HST WET WEST CET CEST EET EEST MSK SAST HKT
//	         SGT AWST JST KST ACST ACDT AEST AEDT NZST NZDT. Abbreviations
//	         that name different offsets in different countries (IST, BST,
//	         AST) are read only where the configured zone uses them.
//	'text'   literal text; '' is a single quote, inside quotes too
//
// Any other ASCII letter is an error; every other character is literal.
// A quoted 'Z', as in yyyy-MM-dd'T'HH:mm:ss'Z', is literal text too: such
// values are read in the configured zone, which should then be GMT or UTC.
// Offsets are written to the minute (the seconds of historical local mean
// times are dropped) and read within ±18:00.
//
// # Reading
//
// Values are trimmed of surrounding white space and must be consumed
// entirely. A numeric field next to another numeric field (yyyyMMddHHmmss)
// must have exactly as many digits as its letters; any other numeric field
// takes from one digit up to the greater of its letter count and its
// natural width (dd reads 1 and 01; yyyy reads up to four digits; S up to
// nine). Fields are range checked, and the day against its month. Missing
// fields default as in Java: 1970-01-01 00:00:00.
//
// An offset or zone in the value sets the instant, and the result is in UTC
// (zero offset) or in a fixed zone of that offset; otherwise the value is a
// wall-clock time in the configured zone (nil means UTC), and the result is
// in that zone. A wall-clock time that a change of offset repeats is the
// earlier of the two instants; one that it skips is moved forward by the
// length of the gap (02:30 on a spring-forward night is 03:30), as Java
// does.
//
// # Named formats
//
// The names are case-insensitive.
//
//	rfc3339  reads 2006-01-02T15:04:05Z, with or without 1-9 fraction
//	         digits, with Z or an offset (±hh:mm or ±hhmm), T, t or a space
//	         between date and time; a value without an offset is a
//	         wall-clock time in the configured zone. Writes
//	         time.RFC3339Nano: fraction digits only as needed, Z for UTC.
//	unix     seconds since 1970-01-01 UTC; reads a fraction or an exponent
//	         (1700000000.5, 1.7e9); writes whole seconds.
//	unix_ms  milliseconds since 1970-01-01 UTC, read and written likewise.
package datefmt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // IANA names resolve on images without zoneinfo

	"github.com/pollhook/pollhook/internal/clip"
)

// Format is a compiled date pattern. It is immutable and safe for
// concurrent use.
type Format struct {
	pattern string
	named   named
	fields  []field
}

// named tells a named format from a pattern.
type named uint8

const (
	namedNone named = iota
	namedRFC3339
	namedUnix
	namedUnixMs
)

// kind is what a field of a pattern stands for.
type kind uint8

const (
	kLiteral kind = iota
	kEra
	kYear
	kMonth
	kDay
	kYearDay
	kWeekday
	kWeekdayNum
	kAmPm
	kHour23
	kHour24
	kHour11
	kHour12
	kMinute
	kSecond
	kFraction
	kZoneRFC
	kZoneISO
	kZoneName
	// Used by rfc3339 only.
	kDateTimeSep
	kOptFraction
	kOptOffset
)

// kindInfo describes a pattern letter: the field it stands for and, for a
// numeric field, the number of digits it takes when not fixed.
var kindInfo = [...]struct {
	name    string
	numeric bool
	width   int
}{
	kLiteral:     {"text", false, 0},
	kEra:         {"era", false, 0},
	kYear:        {"year", true, 4},
	kMonth:       {"month", true, 2},
	kDay:         {"day", true, 2},
	kYearDay:     {"day of year", true, 3},
	kWeekday:     {"weekday", false, 0},
	kWeekdayNum:  {"day of week", true, 1},
	kAmPm:        {"AM/PM", false, 0},
	kHour23:      {"hour", true, 2},
	kHour24:      {"hour", true, 2},
	kHour11:      {"hour", true, 2},
	kHour12:      {"hour", true, 2},
	kMinute:      {"minute", true, 2},
	kSecond:      {"second", true, 2},
	kFraction:    {"fraction", true, 9},
	kZoneRFC:     {"offset", false, 0},
	kZoneISO:     {"offset", false, 0},
	kZoneName:    {"zone", false, 0},
	kDateTimeSep: {"T", false, 0},
	kOptFraction: {"fraction", false, 0},
	kOptOffset:   {"offset", false, 0},
}

// letterKinds maps the pattern letters to the fields they stand for.
var letterKinds = map[byte]kind{
	'G': kEra, 'y': kYear, 'M': kMonth, 'L': kMonth, 'd': kDay, 'D': kYearDay,
	'E': kWeekday, 'u': kWeekdayNum, 'a': kAmPm, 'H': kHour23, 'k': kHour24,
	'K': kHour11, 'h': kHour12, 'm': kMinute, 's': kSecond, 'S': kFraction,
	'Z': kZoneRFC, 'X': kZoneISO, 'z': kZoneName,
}

// letterHints follow the error for letters often written by mistake.
var letterHints = map[byte]string{
	'Y': "; use 'y' for the year",
	'T': "; quote literal text, as in 'T'",
	'n': "; use S for fractions of a second",
	'f': "; use S for fractions of a second",
}

// field is a run of one pattern letter, or literal text.
type field struct {
	kind  kind
	count int    // letters in the run
	src   string // the run as written, for errors
	lit   string // literal text, written as is
	plit  string // literal text to match when reading (trimmed at the ends)
	minW  int    // digits a numeric field reads
	maxW  int
}

func (fd *field) numeric() bool {
	return kindInfo[fd.kind].numeric && !(fd.kind == kMonth && fd.count >= 3)
}

// rfc3339Fields read and describe rfc3339; it is written with
// time.RFC3339Nano.
var rfc3339Fields = []field{
	{kind: kYear, count: 4, src: "yyyy", minW: 4, maxW: 4},
	{kind: kLiteral, lit: "-", plit: "-"},
	{kind: kMonth, count: 2, src: "MM", minW: 2, maxW: 2},
	{kind: kLiteral, lit: "-", plit: "-"},
	{kind: kDay, count: 2, src: "dd", minW: 2, maxW: 2},
	{kind: kDateTimeSep, src: "T"},
	{kind: kHour23, count: 2, src: "HH", minW: 2, maxW: 2},
	{kind: kLiteral, lit: ":", plit: ":"},
	{kind: kMinute, count: 2, src: "mm", minW: 2, maxW: 2},
	{kind: kLiteral, lit: ":", plit: ":"},
	{kind: kSecond, count: 2, src: "ss", minW: 2, maxW: 2},
	{kind: kOptFraction, src: ".SSSSSSSSS", minW: 1, maxW: 9},
	{kind: kOptOffset, src: "XXX"},
}

// Parse compiles a pattern: a Java SimpleDateFormat pattern or one of the
// names rfc3339, unix and unix_ms (in any case).
func Parse(pattern string) (*Format, error) {
	switch strings.ToLower(strings.TrimSpace(pattern)) {
	case "rfc3339":
		return &Format{pattern: pattern, named: namedRFC3339, fields: rfc3339Fields}, nil
	case "unix":
		return &Format{pattern: pattern, named: namedUnix}, nil
	case "unix_ms":
		return &Format{pattern: pattern, named: namedUnixMs}, nil
	case "":
		return nil, errors.New("empty date format: want a pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSZ, or rfc3339, unix or unix_ms")
	}
	fields, err := compile(pattern)
	if err != nil {
		return nil, err
	}
	return &Format{pattern: pattern, fields: fields}, nil
}

func compile(p string) ([]field, error) {
	var fs []field
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			fs = append(fs, field{kind: kLiteral, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			if i+1 < len(p) && p[i+1] == '\'' {
				lit.WriteByte('\'')
				i += 2
				continue
			}
			j := i + 1
			for {
				k := strings.IndexByte(p[j:], '\'')
				if k < 0 {
					return nil, fmt.Errorf("unterminated quote (got %q): close quoted text with ', write '' for a quote", p)
				}
				lit.WriteString(p[j : j+k])
				j += k + 1
				if j < len(p) && p[j] == '\'' {
					lit.WriteByte('\'')
					j++
					continue
				}
				break
			}
			i = j
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			j := i + 1
			for j < len(p) && p[j] == c {
				j++
			}
			k, ok := letterKinds[c]
			if !ok {
				return nil, fmt.Errorf("unknown pattern letter '%c' (got %q)%s", c, p, letterHints[c])
			}
			n := j - i
			switch {
			case k == kZoneISO && n > 3:
				return nil, fmt.Errorf("pattern letter 'X' repeated %d times: want X, XX or XXX (got %q)", n, p)
			case kindInfo[k].numeric && n > 9 && !(k == kMonth):
				return nil, fmt.Errorf("pattern letter '%c' repeated %d times: at most 9 (got %q)", c, n, p)
			}
			flush()
			fs = append(fs, field{kind: k, count: n, src: p[i:j]})
			i = j
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()

	hasField := false
	for i := range fs {
		fd := &fs[i]
		if fd.kind == kLiteral {
			fd.plit = fd.lit
			if i == 0 {
				fd.plit = strings.TrimLeftFunc(fd.plit, isSpace)
			}
			if i == len(fs)-1 {
				fd.plit = strings.TrimRightFunc(fd.plit, isSpace)
			}
			continue
		}
		hasField = true
		if !fd.numeric() {
			continue
		}
		fixed := i > 0 && fs[i-1].numeric()
		if i+1 < len(fs) {
			next := &fs[i+1]
			fixed = fixed || next.numeric() || next.kind == kLiteral && isDigit(next.lit[0])
		}
		switch {
		case fixed:
			fd.minW, fd.maxW = fd.count, fd.count
		case fd.kind == kFraction:
			fd.minW, fd.maxW = 1, 9
		default:
			fd.minW, fd.maxW = 1, max(fd.count, kindInfo[fd.kind].width)
		}
	}
	if !hasField {
		return nil, fmt.Errorf("date format has no pattern letters (got %q): want a pattern such as yyyy-MM-dd'T'HH:mm:ss.SSSZ, or rfc3339, unix or unix_ms", p)
	}
	return fs, nil
}

// String returns the pattern Format was compiled from.
func (f *Format) String() string { return f.pattern }

// parseError is a value that does not match its format.
type parseError struct {
	value   string
	pattern string
	msg     string
}

func (e *parseError) Error() string {
	return "parse " + strconv.Quote(e.value) + " as " + e.pattern + ": " + e.msg
}

func (f *Format) fail(value, msg string) error {
	return &parseError{value: value, pattern: f.pattern, msg: msg}
}

// at describes the position pos of v for an error message.
func at(v string, pos int) string {
	if pos >= len(v) {
		return "at end of value"
	}
	return "at " + strconv.Quote(clip.Ellipsis(v[pos:], 16))
}

// state collects the fields read from a value.
type state struct {
	year, month, day, yday       int
	hour, hour12, minute, second int
	nsec, offset                 int
	abbr                         string
	hasMonth, hasDay, hasYday    bool
	hasHour, hasHour12, pm, bc   bool
	hasOffset                    bool
}

// Parse reads value; loc is the zone used when value holds no zone or
// offset (nil means UTC).
func (f *Format) Parse(value string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	v := strings.TrimSpace(value)
	switch f.named {
	case namedUnix:
		return f.parseUnix(value, v, 0)
	case namedUnixMs:
		return f.parseUnix(value, v, 3)
	}
	st := state{year: 1970, month: 1, day: 1}
	pos := 0
	for i := range f.fields {
		fd := &f.fields[i]
		switch fd.kind {
		case kLiteral:
			if !strings.HasPrefix(v[pos:], fd.plit) {
				return time.Time{}, f.fail(value, fmt.Sprintf("expected %q %s", fd.plit, at(v, pos)))
			}
			pos += len(fd.plit)
		case kDateTimeSep:
			if pos >= len(v) || (v[pos] != 'T' && v[pos] != 't' && v[pos] != ' ') {
				return time.Time{}, f.fail(value, `expected "T" between date and time `+at(v, pos))
			}
			pos++
		case kEra:
			idx, end := matchName(v, pos, eraNames[:])
			if idx < 0 {
				return time.Time{}, f.fail(value, "expected era (AD or BC) "+at(v, pos))
			}
			st.bc = idx == 1
			pos = end
		case kAmPm:
			idx, end := matchName(v, pos, ampmNames[:])
			if idx < 0 {
				return time.Time{}, f.fail(value, "expected AM or PM "+at(v, pos))
			}
			st.pm = idx == 1
			pos = end
		case kWeekday:
			idx, end := matchName(v, pos, longDays[:])
			if idx < 0 {
				idx, end = matchName(v, pos, shortDays[:])
			}
			if idx < 0 {
				return time.Time{}, f.fail(value, fmt.Sprintf("expected weekday (%s) such as Mon or Monday %s", fd.src, at(v, pos)))
			}
			pos = end
		case kZoneRFC, kZoneISO, kOptOffset:
			if fd.kind == kOptOffset && pos == len(v) {
				continue
			}
			if pos < len(v) && (v[pos] == 'Z' || v[pos] == 'z') {
				st.offset, st.hasOffset = 0, true
				pos++
				continue
			}
			off, end, ok := readOffset(v, pos, false)
			if !ok {
				return time.Time{}, f.fail(value, fmt.Sprintf("expected offset (%s) such as Z, +02:00 or -0800 %s", fd.src, at(v, pos)))
			}
			st.offset, st.hasOffset, pos = off, true, end
		case kZoneName:
			end, err := f.readZone(&st, value, v, pos, fd)
			if err != nil {
				return time.Time{}, err
			}
			pos = end
		case kOptFraction:
			if pos < len(v) && v[pos] == '.' {
				n, nd, end, err := f.readNum(value, v, pos+1, fd)
				if err != nil {
					return time.Time{}, err
				}
				st.nsec = n * pow10[9-nd]
				pos = end
			}
		case kMonth:
			if fd.count >= 3 {
				idx, end := matchName(v, pos, longMonths[:])
				if idx < 0 {
					idx, end = matchName(v, pos, shortMonths[:])
				}
				if idx < 0 {
					return time.Time{}, f.fail(value, fmt.Sprintf("expected month (%s) such as Jan or January %s", fd.src, at(v, pos)))
				}
				st.month, st.hasMonth, pos = idx+1, true, end
				continue
			}
			fallthrough
		default:
			n, nd, end, err := f.readNum(value, v, pos, fd)
			if err != nil {
				return time.Time{}, err
			}
			if msg := st.set(fd, n, nd); msg != "" {
				return time.Time{}, f.fail(value, msg)
			}
			pos = end
		}
	}
	if pos < len(v) {
		return time.Time{}, f.fail(value, "unexpected text "+at(v, pos))
	}
	return f.build(value, &st, loc)
}

// set stores the number n of nd digits read for fd, or says why it is out
// of range.
func (st *state) set(fd *field, n, nd int) string {
	out := func() string { return fmt.Sprintf("%s %d out of range", kindInfo[fd.kind].name, n) }
	switch fd.kind {
	case kYear:
		if fd.count <= 2 && nd == 2 {
			n = pivotYear(n, nowFunc())
		}
		if n < 1 {
			return out()
		}
		st.year = n
	case kMonth:
		if n < 1 || n > 12 {
			return out()
		}
		st.month, st.hasMonth = n, true
	case kDay:
		if n < 1 || n > 31 {
			return out()
		}
		st.day, st.hasDay = n, true
	case kYearDay:
		if n < 1 || n > 366 {
			return out()
		}
		st.yday, st.hasYday = n, true
	case kWeekdayNum:
		if n < 1 || n > 7 {
			return out()
		}
	case kHour23:
		if n > 23 {
			return out()
		}
		st.hour, st.hasHour = n, true
	case kHour24:
		if n < 1 || n > 24 {
			return out()
		}
		st.hour, st.hasHour = n%24, true
	case kHour11:
		if n > 11 {
			return out()
		}
		st.hour12, st.hasHour12 = n, true
	case kHour12:
		if n < 1 || n > 12 {
			return out()
		}
		st.hour12, st.hasHour12 = n%12, true
	case kMinute:
		if n > 59 {
			return out()
		}
		st.minute = n
	case kSecond:
		if n > 59 {
			return out()
		}
		st.second = n
	case kFraction:
		st.nsec = n * pow10[9-nd]
	}
	return ""
}

var pow10 = [...]int{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// nowFunc is the clock two-digit years are read against.
var nowFunc = time.Now

// pivotYear places a two-digit year within 80 years before and 20 years
// after now's year.
func pivotYear(yy int, now time.Time) int {
	start := now.Year() - 80
	y := start/100*100 + yy
	if y < start {
		y += 100
	}
	return y
}

// readNum reads the digits of a numeric field at v[pos]: n is their value,
// nd their count.
func (f *Format) readNum(value, v string, pos int, fd *field) (n, nd, end int, err error) {
	i := pos
	for i < len(v) && i-pos < fd.maxW && isDigit(v[i]) {
		n = n*10 + int(v[i]-'0')
		i++
	}
	nd = i - pos
	name := kindInfo[fd.kind].name
	switch {
	case nd < fd.minW && fd.minW == fd.maxW && fd.minW > 1:
		return 0, 0, 0, f.fail(value, fmt.Sprintf("expected %d-digit %s (%s) %s", fd.minW, name, fd.src, at(v, pos)))
	case nd < fd.minW:
		return 0, 0, 0, f.fail(value, fmt.Sprintf("expected %s (%s) %s", name, fd.src, at(v, pos)))
	case fd.minW != fd.maxW && i < len(v) && isDigit(v[i]):
		return 0, 0, 0, f.fail(value, fmt.Sprintf("%s (%s) has more than %d digits %s", name, fd.src, fd.maxW, at(v, pos)))
	}
	return n, nd, i, nil
}

// readZone reads a zone name (z) at v[pos].
func (f *Format) readZone(st *state, value, v string, pos int, fd *field) (int, error) {
	if pos < len(v) && (v[pos] == '+' || v[pos] == '-') {
		off, end, ok := readOffset(v, pos, true)
		if !ok {
			return 0, f.fail(value, "expected offset such as +02:00 or -0800 "+at(v, pos))
		}
		st.offset, st.hasOffset = off, true
		return end, nil
	}
	if off, end, ok := matchLongZone(v, pos); ok {
		st.offset, st.hasOffset = off, true
		return end, nil
	}
	end := pos
	for end < len(v) && isLetter(v[end]) {
		end++
	}
	word := v[pos:end]
	switch {
	case word == "":
		return 0, f.fail(value, fmt.Sprintf("expected time zone (%s) such as UTC, GMT+02:00 or PST %s", fd.src, at(v, pos)))
	case strings.EqualFold(word, "GMT") || strings.EqualFold(word, "UTC") || strings.EqualFold(word, "UT"):
		st.offset, st.hasOffset = 0, true
		if end < len(v) && (v[end] == '+' || v[end] == '-') {
			off, e, ok := readOffset(v, end, true)
			if !ok {
				return 0, f.fail(value, "expected offset such as GMT+02:00 "+at(v, end))
			}
			st.offset, end = off, e
		}
	case word == "Z" || word == "z":
		st.offset, st.hasOffset = 0, true
	default:
		st.abbr = word
	}
	return end, nil
}

// readOffset reads ±hh, ±hhmm or ±hh:mm (and ±h, ±h:mm if short) at v[pos]
// as seconds east of UTC, at most 18 hours.
func readOffset(v string, pos int, short bool) (off, end int, ok bool) {
	if pos >= len(v) || v[pos] != '+' && v[pos] != '-' {
		return 0, pos, false
	}
	i := pos + 1
	j := i
	for j < len(v) && j-i < 4 && isDigit(v[j]) {
		j++
	}
	var h, m int
	switch j - i {
	case 1, 2:
		if j-i == 1 && !short {
			return 0, pos, false
		}
		h = atoi(v[i:j])
		if j+2 < len(v) && v[j] == ':' && isDigit(v[j+1]) && isDigit(v[j+2]) {
			m = atoi(v[j+1 : j+3])
			j += 3
		}
	case 4:
		h, m = atoi(v[i:i+2]), atoi(v[i+2:j])
	default:
		return 0, pos, false
	}
	if h > 18 || m > 59 || h == 18 && m > 0 {
		return 0, pos, false
	}
	off = h*3600 + m*60
	if v[pos] == '-' {
		off = -off
	}
	return off, j, true
}

// build turns the fields read into a time.
func (f *Format) build(value string, st *state, loc *time.Location) (time.Time, error) {
	year := st.year
	if st.bc {
		year = 1 - year
	}
	month, day := st.month, st.day
	if st.hasYday {
		ylen := 365
		if isLeap(year) {
			ylen = 366
		}
		if st.yday > ylen {
			return time.Time{}, f.fail(value, fmt.Sprintf("day of year %d out of range (%d has %d days)", st.yday, year, ylen))
		}
		d := time.Date(year, 1, st.yday, 0, 0, 0, 0, time.UTC)
		if !st.hasMonth && !st.hasDay {
			month, day = int(d.Month()), d.Day()
		} else if int(d.Month()) != month || st.hasDay && d.Day() != day {
			return time.Time{}, f.fail(value, fmt.Sprintf("day of year %d is not %04d-%02d-%02d (D is the day of the year; d the day of the month)", st.yday, year, month, day))
		}
	}
	if n := daysIn(month, year); day > n {
		return time.Time{}, f.fail(value, fmt.Sprintf("day %d out of range (%s %d has %d days)", day, time.Month(month), year, n))
	}
	hour := st.hour
	if !st.hasHour && st.hasHour12 {
		hour = st.hour12
		if st.pm {
			hour += 12
		}
	}
	if st.abbr != "" {
		off, ok := resolveAbbr(st.abbr, time.Date(year, time.Month(month), day, hour, st.minute, st.second, 0, time.UTC), loc)
		if !ok {
			return time.Time{}, f.fail(value, fmt.Sprintf("unknown time zone %q: want an offset (+02:00, GMT+2), UTC, GMT, an abbreviation of the configured zone (%s) or one such as PST, CET", st.abbr, zoneAbbrAt(loc)))
		}
		st.offset, st.hasOffset = off, true
	}
	if st.hasOffset {
		t := time.Date(year, time.Month(month), day, hour, st.minute, st.second, st.nsec, time.UTC)
		t = t.Add(-time.Duration(st.offset) * time.Second)
		return t.In(fixedZone(st.offset)), nil
	}
	t := time.Date(year, time.Month(month), day, hour, st.minute, st.second, st.nsec, loc)
	if h, m, _ := t.Clock(); h != hour || m != st.minute || t.Day() != day {
		// The wall-clock time falls in a gap that a change of offset skips.
		// time.Date moves it by the gap, forward or back; move it forward,
		// as Java does: read it with the offset from before the gap.
		want := time.Date(year, time.Month(month), day, hour, st.minute, st.second, st.nsec, time.UTC)
		y, mo, d := t.Date()
		h, m, sec := t.Clock()
		if time.Date(y, mo, d, h, m, sec, st.nsec, time.UTC).Before(want) {
			_, before := t.Zone()
			t = want.Add(-time.Duration(before) * time.Second).In(loc)
		}
	}
	// In a fold time.Date may give either instant (it gives the later
	// on Lord Howe Island): take the earlier, always.
	t, _ = Readings(t)
	return t, nil
}

// parseUnix reads a decimal number of seconds (shift 0) or milliseconds
// (shift 3): an optional sign, digits, an optional fraction and exponent.
func (f *Format) parseUnix(value, v string, shift int) (time.Time, error) {
	unit := "seconds"
	if shift == 3 {
		unit = "milliseconds"
	}
	bad := func() (time.Time, error) {
		return time.Time{}, f.fail(value, "expected a number of "+unit+" since 1970-01-01 UTC, such as 1700000000")
	}
	i := 0
	neg := false
	if i < len(v) && (v[i] == '-' || v[i] == '+') {
		neg = v[i] == '-'
		i++
	}
	start := i
	digits, intDigits := 0, -1
	for ; i < len(v); i++ {
		switch c := v[i]; {
		case isDigit(c):
			digits++
			continue
		case c == '.' && intDigits < 0:
			intDigits = digits
			continue
		}
		break
	}
	mant := v[start:i]
	if digits == 0 {
		return bad()
	}
	if intDigits < 0 {
		intDigits = digits
	}
	exp := 0
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		eneg := false
		if i < len(v) && (v[i] == '-' || v[i] == '+') {
			eneg = v[i] == '-'
			i++
		}
		es := i
		for i < len(v) && isDigit(v[i]) && i-es < 3 {
			exp = exp*10 + int(v[i]-'0')
			i++
		}
		if i == es {
			return bad()
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(v) {
		return bad()
	}
	// point is the number of digits of mant before the decimal point of the
	// value in seconds.
	point := intDigits + exp - shift
	var sec, nsec int64
	k := 0 // index of the digit among mant's digits
	for j := 0; j < len(mant); j++ {
		c := mant[j]
		if c == '.' {
			continue
		}
		d := int64(c - '0')
		switch {
		case k < point:
			if sec > (maxUnixSec-d)/10 {
				return time.Time{}, f.fail(value, unit+" out of range")
			}
			sec = sec*10 + d
		case k-point < 9:
			nsec += d * int64(pow10[8-(k-point)])
		}
		k++
	}
	for ; k < point; k++ {
		if sec > maxUnixSec/10 {
			return time.Time{}, f.fail(value, unit+" out of range")
		}
		sec *= 10
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// maxUnixSec bounds unix times read: about year 33658.
const maxUnixSec = 1 << 40

// Format writes t in loc (nil means UTC).
func (f *Format) Format(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	var a [64]byte
	b := a[:0]
	switch f.named {
	case namedRFC3339:
		return string(t.AppendFormat(b, time.RFC3339Nano))
	case namedUnix:
		return string(strconv.AppendInt(b, t.Unix(), 10))
	case namedUnixMs:
		return string(strconv.AppendInt(b, t.UnixMilli(), 10))
	}
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	zone, off := t.Zone()
	for i := range f.fields {
		fd := &f.fields[i]
		switch fd.kind {
		case kLiteral:
			b = append(b, fd.lit...)
		case kEra:
			if year < 1 {
				b = append(b, "BC"...)
			} else {
				b = append(b, "AD"...)
			}
		case kYear:
			y := year
			if y < 1 {
				y = 1 - y
			}
			if fd.count == 2 {
				y %= 100
			}
			b = appendInt(b, y, fd.count)
		case kMonth:
			switch {
			case fd.count >= 4:
				b = append(b, longMonths[month-1]...)
			case fd.count == 3:
				b = append(b, shortMonths[month-1]...)
			default:
				b = appendInt(b, int(month), fd.count)
			}
		case kDay:
			b = appendInt(b, day, fd.count)
		case kYearDay:
			b = appendInt(b, t.YearDay(), fd.count)
		case kWeekday:
			if fd.count >= 4 {
				b = append(b, longDays[t.Weekday()]...)
			} else {
				b = append(b, shortDays[t.Weekday()]...)
			}
		case kWeekdayNum:
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b = appendInt(b, wd, fd.count)
		case kAmPm:
			b = append(b, ampmNames[hour/12]...)
		case kHour23:
			b = appendInt(b, hour, fd.count)
		case kHour24:
			h := hour
			if h == 0 {
				h = 24
			}
			b = appendInt(b, h, fd.count)
		case kHour11:
			b = appendInt(b, hour%12, fd.count)
		case kHour12:
			h := hour % 12
			if h == 0 {
				h = 12
			}
			b = appendInt(b, h, fd.count)
		case kMinute:
			b = appendInt(b, minute, fd.count)
		case kSecond:
			b = appendInt(b, sec, fd.count)
		case kFraction:
			b = appendInt(b, t.Nanosecond()/pow10[9-fd.count], fd.count)
		case kZoneRFC:
			b = appendOffset(b, off, true, false)
		case kZoneISO:
			if off == 0 {
				b = append(b, 'Z')
				break
			}
			b = appendOffset(b, off, fd.count > 1, fd.count == 3)
		case kZoneName:
			b = appendZoneName(b, zone, off, fd.count >= 4)
		}
	}
	return string(b)
}

// appendInt appends n, zero-padded to width digits.
func appendInt(b []byte, n, width int) []byte {
	var d [20]byte
	i := len(d)
	for n >= 10 || len(d)-i < width-1 {
		i--
		d[i] = byte('0' + n%10)
		n /= 10
	}
	i--
	d[i] = byte('0' + n)
	return append(b, d[i:]...)
}

// appendOffset appends ±hh, ±hhmm or ±hh:mm; seconds of the offset are
// dropped.
func appendOffset(b []byte, off int, minutes, colon bool) []byte {
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	b = append(b, sign)
	b = appendInt(b, off/3600, 2)
	if minutes {
		if colon {
			b = append(b, ':')
		}
		b = appendInt(b, off/60%60, 2)
	}
	return b
}

// appendZoneName appends the abbreviation (or with long the long name) of
// a zone, or GMT±hh:mm for a zone without a name.
func appendZoneName(b []byte, zone string, off int, long bool) []byte {
	if zone == "" {
		if off == 0 {
			return append(b, "UTC"...)
		}
		b = append(b, "GMT"...)
		return appendOffset(b, off, true, true)
	}
	if long {
		if z, ok := zoneAbbrs[zone]; ok && z.offset == off {
			return append(b, z.long...)
		}
	}
	return append(b, zone...)
}

var (
	shortMonths = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
	longMonths  = [...]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"}
	shortDays   = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
	longDays    = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	ampmNames   = [...]string{"AM", "PM"}
	eraNames    = [...]string{"AD", "BC"}
)

// matchName finds which of names v[pos:] starts with, ignoring ASCII case;
// idx is -1 when none does.
func matchName(v string, pos int, names []string) (idx, end int) {
	rest := v[pos:]
	for i, n := range names {
		if len(rest) >= len(n) && strings.EqualFold(rest[:len(n)], n) {
			return i, pos + len(n)
		}
	}
	return -1, pos
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isSpace(r rune) bool  { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// atoi converts a short run of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// isLeap reports whether y is a leap year of the proleptic Gregorian
// calendar.
func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// daysIn returns the number of days of a month.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
