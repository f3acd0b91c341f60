package poller

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"unicode/utf8"
)

// The fast path reads a page without decoding it into Go values: where a
// resource's items, id_field, dates and next cursor or URL are dotted
// paths and it has no filter, transform, ignore_fields or watch_fields,
// a record is its canonical JSON (and the hash of it), written straight
// from the body's bytes, and the few values its paths name. What it
// writes is what appendCanonical writes of the decoded record, byte for
// byte (FuzzRawRecords checks it): a hash kept in the store stays the
// hash of the same record. Whatever the fast path does not handle
// (invalid or unusual JSON, a duplicate key, a path through something
// other than an object, an id or a date that is not a string or a number)
// it leaves to the decoded path, which reads it and says what is wrong.

// maxRawDepth is how deep the fast path follows nested arrays and objects;
// deeper values are left to encoding/json.
const maxRawDepth = 256

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte from i on that is not
// JSON white space.
func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// skipValue checks the JSON value that starts at d[i] and returns the
// index just past it; -1 if it is not valid JSON (or nested deeper than
// maxRawDepth).
func skipValue(d []byte, i, depth int) int {
	if i >= len(d) {
		return -1
	}
	switch c := d[i]; {
	case c == '{':
		if depth >= maxRawDepth {
			return -1
		}
		i = skipSpace(d, i+1)
		if i < len(d) && d[i] == '}' {
			return i + 1
		}
		for {
			if i >= len(d) || d[i] != '"' {
				return -1
			}
			if i, _ = scanString(d, i); i < 0 {
				return -1
			}
			if i = skipSpace(d, i); i >= len(d) || d[i] != ':' {
				return -1
			}
			if i = skipValue(d, skipSpace(d, i+1), depth+1); i < 0 {
				return -1
			}
			var closed bool
			if i, closed = nextMember(d, i, '}'); closed || i < 0 {
				return i
			}
		}
	case c == '[':
		if depth >= maxRawDepth {
			return -1
		}
		i = skipSpace(d, i+1)
		if i < len(d) && d[i] == ']' {
			return i + 1
		}
		for {
			if i = skipValue(d, i, depth+1); i < 0 {
				return -1
			}
			var closed bool
			if i, closed = nextMember(d, i, ']'); closed || i < 0 {
				return i
			}
		}
	case c == '"':
		end, _ := scanString(d, i)
		return end
	case c == 't':
		return skipLiteral(d, i, "true")
	case c == 'f':
		return skipLiteral(d, i, "false")
	case c == 'n':
		return skipLiteral(d, i, "null")
	default:
		return scanNumber(d, i)
	}
}

// nextMember steps over the white space and the comma or the closing
// bracket after a member of an object or an array, which ends at d[i]: it
// returns where the next member starts or, closed, the index past the
// bracket; -1 for anything else.
func nextMember(d []byte, i int, bracket byte) (next int, closed bool) {
	if i = skipSpace(d, i); i >= len(d) {
		return -1, false
	}
	switch d[i] {
	case ',':
		return skipSpace(d, i+1), false
	case bracket:
		return i + 1, true
	}
	return -1, false
}

func skipLiteral(d []byte, i int, lit string) int {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanString checks the JSON string that starts at d[i] (its opening
// quote) and returns the index just past its closing quote, or -1. plain
// says that the string's bytes between the quotes are its decoded value
// and also what appendString writes of it: no escapes, valid UTF-8, no
// U+2028 or U+2029.
func scanString(d []byte, i int) (end int, plain bool) {
	plain = true
	for i++; i < len(d); {
		c := d[i]
		switch {
		case c == '"':
			return i + 1, plain
		case c < 0x20:
			return -1, false
		case c == '\\':
			plain = false
			if i+1 >= len(d) {
				return -1, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(d)-i < 6 {
					return -1, false
				}
				for _, h := range d[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return -1, false
					}
				}
				i += 6
			default:
				return -1, false
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			i += size
		}
	}
	return -1, false
}

// scanNumber checks the JSON number that starts at d[i] and returns the
// index just past it, or -1.
func scanNumber(d []byte, i int) int {
	digits := func(i int) int {
		j := i
		for j < len(d) && '0' <= d[j] && d[j] <= '9' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		return -1
	case d[i] == '0':
		i++
	default:
		if i = digits(i); i < 0 {
			return -1
		}
	}
	if i < len(d) && d[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}

// rawString returns the decoded value of the JSON string s (quotes
// included, as scanString checked it).
func rawString(s []byte, plain bool) (string, bool) {
	if plain {
		return string(s[1 : len(s)-1]), true
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return "", false
	}
	return v, true
}

// rawKey is the decoded text of the object key s (quotes included): the
// bytes between its quotes when plain, or a decoded copy.
func rawKey(s []byte, plain bool) ([]byte, bool) {
	if plain {
		return s[1 : len(s)-1], true
	}
	v, ok := rawString(s, false)
	return []byte(v), ok
}

// rawMember is a member of a JSON object in a body.
type rawMember struct {
	key   []byte // decoded
	plain bool   // key is also what appendString writes of it
	val   []byte // the value's JSON text
}

// appendMembers appends the members of the object d (valid JSON, as
// skipValue checked it) to ms; ok is false for anything else.
func appendMembers(ms []rawMember, d []byte, depth int) ([]rawMember, bool) {
	if len(d) == 0 || d[0] != '{' {
		return ms, false
	}
	i := skipSpace(d, 1)
	if d[i] == '}' {
		return ms, true
	}
	for {
		end, plain := scanString(d, i)
		if end < 0 {
			return ms, false
		}
		key, ok := rawKey(d[i:end], plain)
		if !ok {
			return ms, false
		}
		i = skipSpace(d, skipSpace(d, end)+1)
		end = skipValue(d, i, depth+1)
		if end < 0 {
			return ms, false
		}
		ms = append(ms, rawMember{key: key, plain: plain, val: d[i:end]})
		var closed bool
		if i, closed = nextMember(d, end, '}'); closed || i < 0 {
			return ms, i >= 0
		}
	}
}

// rawWalk follows path through the objects of the JSON value d (checked by
// skipValue), as walk does through decoded ones: found is false at a
// missing key; null on the way gives null. ok is false where walk would
// fail (a scalar or an array on the way).
func rawWalk(d []byte, path []string) (v []byte, found, ok bool) {
	for _, seg := range path {
		if d[0] == 'n' {
			return d, true, true
		}
		ms, ok := appendMembers(nil, d, 0)
		if !ok {
			return nil, false, false
		}
		found = false
		// A key given twice: the last one counts, as in a decoded map.
		for _, m := range slices.Backward(ms) {
			if string(m.key) == seg {
				d, found = m.val, true
				break
			}
		}
		if !found {
			return nil, false, true
		}
	}
	return d, true, true
}

// rawScalar is the decoded value of the JSON scalar d: nil, a bool, a
// string or a json.Number; ok is false for an object or an array.
func rawScalar(d []byte) (any, bool) {
	switch d[0] {
	case 'n':
		return nil, true
	case 't':
		return true, true
	case 'f':
		return false, true
	case '"':
		end, plain := scanString(d, 0)
		if end != len(d) {
			return nil, false
		}
		return rawString(d, plain)
	case '{', '[':
		return nil, false
	}
	return json.Number(d), true
}

// canonicalizer writes canonical JSON from a body's bytes, reusing its
// buffers from one record to the next.
type canonicalizer struct {
	out []byte
	// members holds, for each depth, the members of the object being
	// written there.
	members [][]rawMember
}

// record writes the canonical JSON of item (valid JSON, as skipValue
// checked it) to c.out, replacing what it held; ok is false where the
// fast path leaves it to encoding/json. top returns the item's members
// (valid until the next call), when it is an object.
func (c *canonicalizer) record(item []byte) (top []rawMember, ok bool) {
	c.out = c.out[:0]
	if !c.value(item, 0) {
		return nil, false
	}
	if item[0] == '{' {
		return c.members[0], true
	}
	return nil, true
}

// value appends the canonical JSON of d, a whole JSON value.
func (c *canonicalizer) value(d []byte, depth int) bool {
	switch d[0] {
	case '{':
		return c.object(d, depth)
	case '[':
		c.out = append(c.out, '[')
		i := skipSpace(d, 1)
		if d[i] == ']' {
			c.out = append(c.out, ']')
			return true
		}
		for {
			end := skipValue(d, i, depth+1)
			if end < 0 || !c.value(d[i:end], depth+1) {
				return false
			}
			var closed bool
			if i, closed = nextMember(d, end, ']'); closed || i < 0 {
				c.out = append(c.out, ']')
				return i >= 0
			}
			c.out = append(c.out, ',')
		}
	case '"':
		end, plain := scanString(d, 0)
		if end != len(d) {
			return false
		}
		if plain {
			c.out = append(c.out, d...)
			return true
		}
		s, ok := rawString(d, false)
		c.out = appendString(c.out, s)
		return ok
	}
	// A number as written, true, false or null.
	c.out = append(c.out, d...)
	return true
}

// object appends the canonical JSON of the object d: its members sorted
// by key. A key given twice is left to encoding/json.
func (c *canonicalizer) object(d []byte, depth int) bool {
	for len(c.members) <= depth {
		c.members = append(c.members, nil)
	}
	ms, ok := appendMembers(c.members[depth][:0], d, depth)
	c.members[depth] = ms
	if !ok {
		return false
	}
	byKey := func(a, b rawMember) int { return bytes.Compare(a.key, b.key) }
	if !slices.IsSortedFunc(ms, byKey) {
		slices.SortFunc(ms, byKey)
	}
	c.out = append(c.out, '{')
	for i, m := range ms {
		if i > 0 {
			if bytes.Equal(m.key, ms[i-1].key) {
				return false
			}
			c.out = append(c.out, ',')
		}
		if m.plain {
			c.out = append(c.out, '"')
			c.out = append(c.out, m.key...)
			c.out = append(c.out, '"')
		} else {
			c.out = appendString(c.out, string(m.key))
		}
		c.out = append(c.out, ':')
		if !c.value(m.val, depth+1) {
			return false
		}
	}
	c.out = append(c.out, '}')
	return true
}

// field is the value of g's dotted path in a record whose members are
// top, as g.first gives it on the decoded record; ok is false where the
// fast path leaves the record to encoding/json.
func field(top []rawMember, g *getter) (v any, ok bool) {
	if len(g.path) == 0 {
		return nil, false // the record itself, an object
	}
	var d []byte
	for _, m := range top {
		if string(m.key) == g.path[0] {
			d = m.val
			break
		}
	}
	if d == nil {
		return nil, true
	}
	d, found, ok := rawWalk(d, g.path[1:])
	if !ok || !found {
		return nil, ok
	}
	return rawScalar(d)
}

// errLeftToDecode stops the fast path's reading of a record that the
// decoded path reads instead.
var errLeftToDecode = errors.New("left to the decoded path")
