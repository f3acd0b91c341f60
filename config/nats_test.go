package config

import (
	"strings"
	"testing"
)

func TestSubjectExpand(t *testing.T) {
	ev := SubjectValues{Resource: "contacts", Object: "contact", Type: "contact.updated", Source: "keap"}
	tests := []struct {
		tpl, want, wildcard string
	}{
		{"pollhook.{resource}.{type}", "pollhook.contacts.contact.updated", "pollhook.*.*.*"},
		{"{source}.{object}.{verb}", "keap.contact.updated", "*.*.*"},
		{"crm.changes", "crm.changes", "crm.changes"},
		{"{type}", "contact.updated", "*.*"},
		{"a-b.{resource}_x.c", "", ""}, // refused: see TestParseSubjectErrors
	}
	for _, tt := range tests {
		s, err := ParseSubject(tt.tpl)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseSubject(%q) accepted a placeholder inside a token", tt.tpl)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseSubject(%q): %v", tt.tpl, err)
		}
		got, err := s.Expand(ev)
		if err != nil || got != tt.want {
			t.Errorf("%q.Expand = %q, %v; want %q", tt.tpl, got, err, tt.want)
		}
		if w := s.Wildcard(); w != tt.wildcard {
			t.Errorf("%q.Wildcard() = %q, want %q", tt.tpl, w, tt.wildcard)
		}
	}
}

func TestSubjectExpandRefusesSplittingValues(t *testing.T) {
	s, err := ParseSubject("p.{resource}.{source}.{type}")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []SubjectValues{
		{Resource: "contacts.v2", Type: "contact.updated", Source: "keap"},
		{Resource: "contacts", Type: "contact.updated", Source: "my source"},
		{Resource: "contacts", Type: "contact.updated", Source: ""},
		{Resource: "c*", Type: "contact.updated", Source: "keap"},
		{Resource: "contacts", Type: "contact", Source: "keap"},
		{Resource: "contacts", Type: "a.b.c", Source: "keap"},
		{Resource: "contacts", Type: ">.updated", Source: "keap"},
	} {
		if got, err := s.Expand(v); err == nil {
			t.Errorf("Expand(%+v) = %q, want an error", v, got)
		}
	}
}

func TestParseSubjectErrors(t *testing.T) {
	for tpl, want := range map[string]string{
		"":                "empty subject",
		"a..b":            "empty token 2",
		".a":              "empty token 1",
		"a.":              "empty token 2",
		"a.{object":       "a placeholder is a whole token",
		"a.{}":            "a placeholder is a whole token",
		"a.{id}":          "unknown placeholder {id}",
		"a.*":             "no wildcard",
		"a b.c":           "no space",
		"x{verb}.y":       "a placeholder is a whole token",
		"a.{type}.{Verb}": "unknown placeholder {Verb}",
	} {
		_, err := ParseSubject(tpl)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSubject(%q) = %v, want an error with %q", tpl, err, want)
		}
	}
}

func TestNATSServers(t *testing.T) {
	got, err := NATSServers("nats://a:4222, tls://u:pw@b ,nats://[::1]:4222")
	if err != nil || strings.Join(got, "|") != "nats://a:4222|tls://u:pw@b|nats://[::1]:4222" {
		t.Errorf("NATSServers = %q, %v", got, err)
	}
	for s, want := range map[string]string{
		"nats://":                     "no host",
		"nats://a:4222,":              "server 2: empty",
		"nats://a:0":                  "want a port from 1 to 65535",
		"nats://a:4222?x=1":           "no path or query",
		"nats://a:4222,http://b:4222": "server 2: want nats://host:port or tls://host:port",
		"nats://u:secret@:4222":       "no host",
	} {
		_, err := NATSServers(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NATSServers(%q) = %v, want an error with %q", s, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("NATSServers(%q) shows the password: %v", s, err)
		}
	}
	if IsNATSURL("https://example.com") || IsNATSURL("stdout") || !IsNATSURL("tls://x") || !IsNATSURL("nats://x") {
		t.Error("IsNATSURL tells the kinds apart wrongly")
	}
}

// FuzzSubject parses arbitrary subject templates and expands them with
// arbitrary values: a template ParseSubject accepts, expanded without
// error, gives a subject to publish on (no empty token, no wildcard, no
// space) that its Wildcard captures, so that a stream made from the
// template holds every message published with it.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{
		"pollhook.{resource}.{type}", "{source}.{object}.{verb}", "crm.changes", "{type}",
		"a..b", "a.{x}", "a.*", "a.>", "{resource}{type}", "é.{verb}", "a.{type}.{type}",
	} {
		f.Add(s, "contacts", "contact", "contact.updated", "keap")
	}
	f.Fuzz(func(t *testing.T, tpl, resource, object, typ, source string) {
		s, err := ParseSubject(tpl)
		if err != nil {
			return
		}
		if s.String() != tpl {
			t.Errorf("String() = %q, want %q", s.String(), tpl)
		}
		got, err := s.Expand(SubjectValues{Resource: resource, Object: object, Type: typ, Source: source})
		if err != nil {
			return
		}
		toks := strings.Split(got, ".")
		for _, tok := range toks {
			if err := subjectToken(tok); err != nil {
				t.Fatalf("%q expanded to %q, whose token %q is bad: %v", tpl, got, tok, err)
			}
		}
		filter := strings.Split(s.Wildcard(), ".")
		if len(filter) != len(toks) {
			t.Fatalf("%q: subject %q has %d tokens, its wildcard %q has %d", tpl, got, len(toks), s.Wildcard(), len(filter))
		}
		for i, w := range filter {
			if w != "*" && w != toks[i] {
				t.Fatalf("%q: wildcard %q does not capture %q", tpl, s.Wildcard(), got)
			}
		}
	})
}
