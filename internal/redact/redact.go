// Package redact makes URLs fit for error messages, log lines and the
// output of commands: what may be a credential is taken out, and the rest
// is kept as written, so that a user can still tell which URL it was.
package redact

import (
	"net/url"
	"strings"
)

// Hidden replaces each query value that URL hides.
const Hidden = "REDACTED"

// URL returns raw without user information or fragment, with the value of
// every query parameter replaced by Hidden; parameter names, their order
// and empty values are kept, so that a user can see what was sent:
//
//	https://user:pw@api.example.com/v1/items?api_key=k1&page=2&q=#top
//	→ https://api.example.com/v1/items?api_key=REDACTED&page=REDACTED&q=
//
// A part of the query without "=" is replaced whole. Everything else is
// kept as written, relative references too. A URL written without its
// scheme (user:pw@host/path) loses its user information as well; in one
// that does not parse, where user information ends cannot be told, so
// everything before the last "@" ahead of the query goes with it.
//
// A comma-separated list of URLs, as NATS clients take their servers
// (nats://u:pw@a:4222,nats://b:4222), is redacted URL by URL: a comma is
// taken as a separator where what follows it starts with a scheme and
// "://".
func URL(raw string) string {
	if parts := splitList(raw); len(parts) > 1 {
		for i, p := range parts {
			parts[i] = one(p)
		}
		return strings.Join(parts, ",")
	}
	return one(raw)
}

// splitList splits raw at each comma followed by a scheme and "://"
// (spaces around it allowed); a comma anywhere else is part of a URL.
func splitList(raw string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(raw); i++ {
		if raw[i] != ',' {
			continue
		}
		next := strings.TrimLeft(raw[i+1:], " ")
		if scheme, _, ok := strings.Cut(next, "://"); ok && isScheme(scheme) {
			parts = append(parts, raw[start:i])
			start = i + 1
		}
	}
	return append(parts, raw[start:])
}

// one is URL for a single URL.
func one(raw string) string {
	s, _, _ := strings.Cut(raw, "#")
	s, query, hasQuery := strings.Cut(s, "?")
	s = dropUserinfo(s, raw)
	if !hasQuery {
		return s
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		switch name, value, ok := strings.Cut(p, "="); {
		case !ok && p != "":
			parts[i] = Hidden
		case ok && value != "":
			parts[i] = name + "=" + Hidden
		}
	}
	return s + "?" + strings.Join(parts, "&")
}

// dropUserinfo returns s, the part of raw before its query, without user
// information.
func dropUserinfo(s, raw string) string {
	if u, err := url.Parse(raw); err != nil || u.Opaque != "" {
		// No authority to go by (user:pw@host/path reads as the scheme
		// "user"): everything up to the last "@" goes.
		at := strings.LastIndexByte(s, '@')
		if at < 0 {
			return s
		}
		scheme := ""
		if i := strings.Index(s[:at], "//"); i >= 0 {
			scheme = s[:i+2]
		}
		return scheme + s[at+1:]
	}
	// The authority follows "//" (after a scheme, or at the start) and
	// runs to the next "/"; its user information runs to its last "@".
	// Without "//", the start up to the first "/" is read the same way.
	start := 0
	if i := strings.Index(s, "//"); i == 0 || (i > 0 && s[i-1] == ':' && isScheme(s[:i-1])) {
		start = i + 2
	}
	end := len(s)
	if j := strings.IndexByte(s[start:], '/'); j >= 0 {
		end = start + j
	}
	if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
		return s[:start] + s[start+at+1:]
	}
	return s
}

// isScheme reports whether s is a URL scheme: a letter, then letters,
// digits, "+", "-" or ".".
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || !(('0' <= c && c <= '9') || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
