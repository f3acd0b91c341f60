package config

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/pollhook/pollhook/internal/redact"
)

// NATS holds the credentials a NATS destination connects with: a user
// and password, a token, or a credentials file (.creds, as nsc writes
// it) — at most one of them; none for a server that asks for none. TLS
// (a CA, a client certificate) is the destination's tls block.
type NATS struct {
	User     string `yaml:"user"`
	Password Secret `yaml:"password"`
	Token    Secret `yaml:"token"`
	// Creds is the path of a credentials file (a user JWT and its nkey
	// seed), read at each connection.
	Creds string `yaml:"creds"`
}

// NATS URL schemes: nats:// connects in plain text unless the server
// asks for TLS; tls:// requires TLS.
var natsSchemes = []string{"nats", "tls"}

// IsNATSURL reports whether a destination url names NATS servers: it
// starts with nats:// or tls://.
func IsNATSURL(s string) bool {
	for _, sc := range natsSchemes {
		if strings.HasPrefix(strings.TrimSpace(s), sc+"://") {
			return true
		}
	}
	return false
}

// NATSServers returns the server URLs of a NATS destination url: one URL,
// or several separated by commas (nats://a:4222,nats://b:4222), as NATS
// clients take them. Each must be nats:// or tls://, with a host, an
// optional port and no path. The error never shows user information.
func NATSServers(s string) ([]string, error) {
	var out []string
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		which := ""
		if strings.Contains(s, ",") {
			which = fmt.Sprintf("server %d: ", i+1)
		}
		if part == "" {
			return nil, fmt.Errorf("%sempty; separate server URLs with single commas, as in nats://a:4222,nats://b:4222", which)
		}
		u, err := url.Parse(part)
		switch {
		case err != nil || !slices.Contains(natsSchemes, u.Scheme) || u.Opaque != "":
			return nil, fmt.Errorf("%swant nats://host:port or tls://host:port (got %q)", which, redact.URL(part))
		case u.Hostname() == "":
			return nil, fmt.Errorf("%sno host, as in nats://127.0.0.1:4222 (got %q)", which, redact.URL(part))
		case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
			return nil, fmt.Errorf("%sa NATS server URL has no path or query, as in nats://127.0.0.1:4222 (got %q)", which, redact.URL(part))
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("%swant a port from 1 to 65535 (got %q)", which, redact.URL(part))
			}
		}
		out = append(out, part)
	}
	return out, nil
}

// natsUserinfo reports whether any server URL of s carries user
// information (user:password@ or token@).
func natsUserinfo(s string) bool {
	for part := range strings.SplitSeq(s, ",") {
		if u, err := url.Parse(strings.TrimSpace(part)); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// SubjectFields are the placeholders of a subject template.
var SubjectFields = []string{"resource", "object", "type", "verb", "source"}

// Subject is a NATS subject template: tokens separated by ".", each a
// literal or exactly one placeholder —
//
//	{resource}  the resource name (contacts)
//	{object}    the object noun (contact)
//	{type}      the event type, two tokens (contact.updated)
//	{verb}      the verb (updated)
//	{source}    the source name (keap)
//
// so that pollhook.{resource}.{type} publishes contact updates of
// resource contacts on pollhook.contacts.contact.updated. A literal token
// holds no space, "*", ">", "{" or "}". A Subject is immutable and safe
// for concurrent use.
type Subject struct {
	text   string
	tokens []string // a literal, or a field name in braces
}

// ParseSubject parses a subject template.
func ParseSubject(s string) (*Subject, error) {
	if s == "" {
		return nil, errors.New("empty subject")
	}
	t := &Subject{text: s}
	for i, tok := range strings.Split(s, ".") {
		if tok == "" {
			return nil, fmt.Errorf("empty token %d (a subject has no leading, trailing or double dots) in %q", i+1, s)
		}
		if name, ok := placeholder(tok); ok {
			if !slices.Contains(SubjectFields, name) {
				return nil, fmt.Errorf("unknown placeholder {%s} in %q; want {%s}", name, s, strings.Join(SubjectFields, "}, {"))
			}
			t.tokens = append(t.tokens, tok)
			continue
		}
		if strings.ContainsAny(tok, "{}") {
			return nil, fmt.Errorf("token %q of %q: a placeholder is a whole token between dots, as in pollhook.{resource}.{type}", tok, s)
		}
		if err := subjectToken(tok); err != nil {
			return nil, fmt.Errorf("token %q of %q: %w", tok, s, err)
		}
		t.tokens = append(t.tokens, tok)
	}
	return t, nil
}

// placeholder returns the name of a token written {name}.
func placeholder(tok string) (string, bool) {
	if len(tok) > 2 && tok[0] == '{' && tok[len(tok)-1] == '}' {
		return tok[1 : len(tok)-1], true
	}
	return "", false
}

// subjectToken checks one token of a subject to publish on.
func subjectToken(tok string) error {
	if tok == "" {
		return errors.New("empty")
	}
	for _, r := range tok {
		switch {
		case r == '*' || r == '>':
			return errors.New("a subject to publish on holds no wildcard (* or >)")
		case unicode.IsSpace(r) || !unicode.IsPrint(r):
			return errors.New("a subject holds no space or control character")
		}
	}
	return nil
}

// String returns the template as written.
func (t *Subject) String() string { return t.text }

// Uses reports whether the template holds the placeholder {field}.
func (t *Subject) Uses(field string) bool {
	return slices.Contains(t.tokens, "{"+field+"}")
}

// Wildcard returns the subject filter that captures every subject the
// template expands to: each placeholder a "*", {type} "*.*".
func (t *Subject) Wildcard() string {
	out := make([]string, len(t.tokens))
	for i, tok := range t.tokens {
		switch name, ok := placeholder(tok); {
		case !ok:
			out[i] = tok
		case name == "type":
			out[i] = "*.*"
		default:
			out[i] = "*"
		}
	}
	return strings.Join(out, ".")
}

// SubjectValues are the values of an event a subject template takes.
type SubjectValues struct {
	Resource, Object, Type, Source string
}

// Expand returns the subject of an event. It fails when a value would not
// make the tokens the template promises: a resource or source name with
// a ".", a type that is not noun.verb, an empty value, or a space or
// wildcard in one.
func (t *Subject) Expand(v SubjectValues) (string, error) {
	var b strings.Builder
	for i, tok := range t.tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		name, ok := placeholder(tok)
		if !ok {
			b.WriteString(tok)
			continue
		}
		var val string
		switch name {
		case "resource":
			val = v.Resource
		case "object":
			val = v.Object
		case "source":
			val = v.Source
		case "type", "verb":
			noun, verb, ok := strings.Cut(v.Type, ".")
			if !ok || strings.Contains(verb, ".") {
				return "", fmt.Errorf("subject %s: event type %q is not noun.verb", t.text, v.Type)
			}
			if err := subjectToken(noun); err != nil {
				return "", fmt.Errorf("subject %s: {%s} %q: %w", t.text, name, v.Type, err)
			}
			val = verb
			if name == "type" {
				b.WriteString(noun + ".")
			}
		}
		if err := subjectToken(val); err != nil {
			return "", fmt.Errorf("subject %s: {%s} %q: %w", t.text, name, val, err)
		}
		if strings.Contains(val, ".") {
			return "", fmt.Errorf("subject %s: {%s} %q holds a \".\", which would split its token", t.text, name, val)
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

// validStreamName reports why name cannot name a JetStream stream, or "".
func validStreamName(name string) string {
	if len(name) > 255 {
		return "at most 255 characters"
	}
	for _, r := range name {
		if r == '.' || r == '*' || r == '>' || r == '/' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return `no ".", "*", ">", "/", "\", space or control character`
		}
	}
	return ""
}
