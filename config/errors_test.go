package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func parseString(t *testing.T, yml string, env map[string]string) (*Config, Errors) {
	t.Helper()
	c, err := Parse("test.yaml", []byte(yml), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err == nil {
		return c, nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	return c, errs
}

func TestAllMistakesReported(t *testing.T) {
	_, err := load(t, "three_mistakes.bad.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d %s", e.Line, e.Path))
	}
	want := []string{"4 sources[keap].timeout", "10 resources[contacts].lookbak", "14 destinations[app].format"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("errors at %q, want %q\n%v", got, want, err)
	}
	if n := strings.Count(err.Error(), "\n"); n != 2 {
		t.Errorf("Error() has %d line breaks, want one error a line:\n%v", n, err)
	}
}

func TestErrorsSortedByLine(t *testing.T) {
	// Destinations are checked last but come first in this file.
	_, errs := parseString(t, `destinations:
  - name: d
    url: stdout
    format: nope
sources:
  - name: s
    base_url: https://api.example.com
    timeout: nope
resources:
  - name: r
    object: o
    url: /r
    lookback: nope
`, nil)
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if fmt.Sprint(lines) != "[4 8 13]" {
		t.Errorf("error lines %v, want [4 8 13]:\n%v", lines, errs)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "pollhook.yaml", Line: 12, Path: "resources[contacts].dates.updated_format", Msg: `unknown pattern letter 'Q' (got "yyyy-QQ")`},
			`pollhook.yaml:12: resources[contacts].dates.updated_format: unknown pattern letter 'Q' (got "yyyy-QQ")`},
		{&Error{File: "p.yaml", Line: 3, Msg: "invalid YAML: x"}, "p.yaml:3: invalid YAML: x"},
		{&Error{File: "p.yaml", Msg: "and 3 more errors"}, "p.yaml: and 3 more errors"},
		{&Error{Line: 3, Path: "a.b", Msg: "m"}, "line 3: a.b: m"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	es := Errors{tests[0].err, tests[1].err}
	if got, want := es.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(es), &e) || e != tests[0].err {
		t.Error("errors.As does not find the first *Error in Errors")
	}
}

func TestNoSecretInErrors(t *testing.T) {
	const yml = `http:
  listen: nowhere
  token: S3CR3T-http
sources:
  - name: a
    base_url: ftp://user:S3CR3T-userinfo@api.example.com
    auth:
      type: header
      name: "X Key"
      value: "S3CR3T-value\r\n"
      token: S3CR3T-token
      password: S3CR3T-password
      client_secret: S3CR3T-client
      scopes: [S3CR3T-scope]
    headers: { Authorization: "Bearer S3CR3T-header\n" }
  - name: b
    base_url: https://api.example.com
    auth: { type: oauth2, token_url: "https://x:S3CR3T-tokenurl@", client_id: c, client_secret: "${CLIENT_SECRET}" }
  - name: c
    base_url: https://api.example.com
    auth: { type: bearer, token: { value: S3CR3T-map } }
  - name: d
    base_url: https://api.example.com
    auth: { type: basic, password: "${MISSING_SECRET:-S3CR3T-default}" }
  - name: e
    base_url: "ftp://api.example.com/?api_key=S3CR3T-query"
resources:
  - name: r
    source: a
    object: o
    url: "ftp://u:S3CR3T-resurl@h/x"
  - name: r2
    source: a
    object: o
    url: "https:///x?key=${API_KEY}"
destinations:
  - name: d
    url: "gopher://u:S3CR3T-desturl@h"
    secret: S3CR3T-dest
    basic_auth: { password: S3CR3T-basic }
  - name: e
    url: https://example.com
    secret: whsec_S3CR3T-notbase64
`
	_, errs := parseString(t, yml, map[string]string{"CLIENT_SECRET": "S3CR3T-env: {[ #", "API_KEY": "S3CR3T-apikey"})
	text := errs.Error()
	if strings.Contains(text, "S3CR3T") {
		t.Errorf("an error shows a secret:\n%s", text)
	}
	// The secrets' keys are reported, so the test covers them.
	for _, path := range []string{
		"http.listen", "sources[a].base_url", "sources[a].auth.name", "sources[a].auth.value",
		"sources[a].auth.token", "sources[a].auth.password", "sources[a].auth.client_secret",
		"sources[a].auth.scopes", "sources[a].headers.Authorization", "sources[b].auth.token_url",
		"sources[c].auth.token", "sources[d].auth.username", "sources[e].base_url", "resources[r].url", "resources[r2].url", "destinations[d].url",
		"destinations[d].secret", "destinations[d].basic_auth.username", "destinations[e].secret",
	} {
		if !strings.Contains(text, ": "+path+": ") {
			t.Errorf("no error for %s:\n%s", path, text)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret("S3CR3T")
	for _, got := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s", s, s), fmt.Sprintf("%+v", struct{ S Secret }{s})} {
		if strings.Contains(got, "S3CR3T") {
			t.Errorf("printing a Secret shows it: %q", got)
		}
	}
	if fmt.Sprint(Secret("")) != "" {
		t.Error("an empty Secret prints as non-empty")
	}
	b, err := s.MarshalJSON()
	if err != nil || string(b) != `"<secret>"` {
		t.Errorf("MarshalJSON = %s, %v", b, err)
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	// A merge key bomb: each level merges ten copies of the level below.
	var b strings.Builder
	b.WriteString("x-0: &l0 {timeout: 1s}\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-%d: &l%d {<<: [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("sources:\n  - name: s\n    base_url: https://api.example.com\n    <<: *l9\n")
	b.WriteString("resources: [{name: r, object: o, url: /r}]\n")
	_, errs := parseString(t, b.String(), nil)
	if !strings.Contains(errs.Error(), "the file expands to too much") {
		t.Errorf("got %v, want an error about expansion", errs)
	}

	_, errs = parseString(t, "x-a: &a {<<: *a}\nsources: [{name: s, base_url: \"https://x\", <<: *a}]\n", nil)
	if !strings.Contains(errs.Error(), "merge key (<<) refers to the mapping that holds it") {
		t.Errorf("a self-merging mapping: got %v", errs)
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("sources:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "  - {name: s%d, base_url: nope}\n", i)
	}
	b.WriteString("resources: [{name: r, source: s0, object: o, url: /r}]\n")
	_, errs := parseString(t, b.String(), nil)
	if len(errs) != maxProblems+1 {
		t.Fatalf("got %d errors, want %d and a count of the rest", len(errs), maxProblems+1)
	}
	if last := errs[len(errs)-1].Error(); last != "test.yaml: and 50 more errors" {
		t.Errorf("last error = %q", last)
	}
}

func TestYAMLErrorLine(t *testing.T) {
	long := "x-a:\n" + strings.Repeat("  k: [1,\n    2]\n", 1500) + "  - oops\n"
	tests := []struct {
		name, yml string
		line      int
	}{
		{"indentation", "sources:\n  - name: a\n    base_url: https://x\n   timeout: 1s\n", 4},
		{"list item in a mapping", "http:\n  listen: :80\n  token: t\n  - oops\n", 4},
		{"unclosed flow", "sources:\n  - name: a\n    headers: {A: b\nresources: []\n", 3},
		{"deep in a long file", long, 3002},
		{"scanner error", "sources:\n  - name: a: b\n", 2},
		{"control character", "sources:\n  - name: api\n    base_url: https://x\n\x00\x01garbage\n", 4},
		{"control character in a value", "sources:\n  - name: a\x07pi\n", 2},
		{"not UTF-8", "sources:\n  - name: api\n    base_url: https://x\xff\n", 3},
		{"a tab and a BOM are allowed", "\ufeffsources:\n  - name: a\t\x01\n", 2},
	}
	// An error yaml.v3 gives without a position, and no bad character to
	// find, has no line rather than a wrong one.
	if _, errs := parseString(t, "sources:\n  - name: a\n    base_url: *nope\n", nil); len(errs) != 1 || errs[0].Line != 0 {
		t.Errorf("unknown anchor: got %v, want one error without a line", errs)
	}
	for _, tt := range tests {
		_, errs := parseString(t, tt.yml, nil)
		if len(errs) != 1 || errs[0].Line != tt.line || !strings.Contains(errs[0].Msg, "invalid YAML") {
			t.Errorf("%s: got %v, want one YAML error at line %d", tt.name, errs, tt.line)
		}
	}
}

// TestYAMLBadCharHint: yaml.v3 reports a control character or a byte
// that is not UTF-8 without a position; the error says where it is and
// what to do.
func TestYAMLBadCharHint(t *testing.T) {
	tests := []struct{ yml, want string }{
		{"sources:\n  - name: a\x07pi\n", `test.yaml:2: invalid YAML: control characters are not allowed: U+0007 at column 12; remove it, or write it as the escape "\u0007" inside a double-quoted string`},
		{"a: \xc3\x28\n", "test.yaml:1: invalid YAML: invalid trailing UTF-8 octet: byte 0xC3, which is not UTF-8, at column 4; save the file as UTF-8"},
		// Line breaks as YAML counts them; a byte order mark is no column.
		{"a: 1\r\nb: 2\r\nc: \x01\r\n", `test.yaml:3: invalid YAML: control characters are not allowed: U+0001 at column 4; remove it, or write it as the escape "\u0001" inside a double-quoted string`},
		{"a: 1\rb: 2\rc: \x01\r", `test.yaml:3: invalid YAML: control characters are not allowed: U+0001 at column 4; remove it, or write it as the escape "\u0001" inside a double-quoted string`},
		{"\ufeffa: \x01", `test.yaml:1: invalid YAML: control characters are not allowed: U+0001 at column 4; remove it, or write it as the escape "\u0001" inside a double-quoted string`},
	}
	for _, tt := range tests {
		_, errs := parseString(t, tt.yml, nil)
		if len(errs) != 1 || errs[0].Error() != tt.want {
			t.Errorf("%q: got %v, want %s", tt.yml, errs, tt.want)
		}
	}
}
