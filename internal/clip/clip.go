// Package clip shortens strings, for the state store's bounded columns and
// for values quoted in messages, without splitting a UTF-8 character.
package clip

import "unicode/utf8"

// Bytes returns s cut to at most n bytes, at a rune boundary: a UTF-8
// character that does not fit whole is left out.
func Bytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Ellipsis is Bytes with "…" after a string that was cut, for a value
// quoted in a message.
func Ellipsis(s string, n int) string {
	if c := Bytes(s, n); len(c) < len(s) {
		return c + "…"
	}
	return s
}
