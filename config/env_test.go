package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "YAMLISH": "x: [y] # z"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		inURL    bool
		keep     []string // placeholders besides TemplateFuncs
		err      string
	}{
		{in: "${A}", want: "alpha"},
		{in: "pre-${A}-post/${A}", want: "pre-alpha-post/alpha"},
		{in: "${YAMLISH}", want: "x: [y] # z"},
		{in: "${NOPE:-fallback}", want: "fallback"},
		{in: "${EMPTY:-fallback}", want: "fallback"},
		{in: "${A:-fallback}", want: "alpha"},
		{in: "${EMPTY}", want: ""},
		{in: "${NOPE:-}", want: ""},
		{in: "$${A}", want: "${A}"},
		{in: "$$${A}", want: "$${A}"}, // only $${ is special: a $ before it stays
		{in: "$A and $", want: "$A and $"},
		{in: "${epoch}&${epoch_ms}&${gmtDate:yyyy}&${date:HH:mm}", want: "${epoch}&${epoch_ms}&${gmtDate:yyyy}&${date:HH:mm}"},
		{in: "${NOPE}", err: "environment variable NOPE is not set"},
		{in: "${A B}", err: "bad variable reference ${A B}"},
		{in: "${1A}", err: "bad variable reference ${1A}"},
		{in: "${A", err: "unclosed ${"},
		{in: "/x?since=${gmtdate:yyyy}", inURL: true, want: "/x?since=${gmtdate:yyyy}"},
		{in: "/x?${A}&${NOPE}", inURL: true, err: "environment variable NOPE is not set"},
		{in: "/x/${id}?k=${A}", inURL: true, keep: ItemPlaceholders, want: "/x/${id}?k=alpha"},
		{in: "/x/${id}", err: "environment variable id is not set"},
	}
	for _, tt := range tests {
		got, _, errs := expandString(tt.in, lookup, tt.inURL, append(slices.Clip(TemplateFuncs), tt.keep...))
		if tt.err != "" {
			if len(errs) != 1 || !strings.Contains(errs[0], tt.err) {
				t.Errorf("expand %q: errors %q, want one holding %q", tt.in, errs, tt.err)
			}
			continue
		}
		if len(errs) > 0 || got != tt.want {
			t.Errorf("expand %q = %q, %q; want %q", tt.in, got, errs, tt.want)
		}
	}
}

// TestMisspeltVariable: an unset ${NAME} close to a variable the
// environment has names it.
func TestMisspeltVariable(t *testing.T) {
	t.Setenv("POLLHOOK_TEST_GITHUB_TOKEN", "x")
	_, _, errs := expandString("${POLLHOOK_TEST_GITHUB_TOKN}", os.LookupEnv, false, nil)
	if want := "environment variable POLLHOOK_TEST_GITHUB_TOKN is not set (write ${POLLHOOK_TEST_GITHUB_TOKN:-default} for a default); did you mean POLLHOOK_TEST_GITHUB_TOKEN?"; len(errs) != 1 || errs[0] != want {
		t.Errorf("errors %q, want %q", errs, want)
	}
	// A variable the lookup does not see is no suggestion.
	_, _, errs = expandString("${POLLHOOK_TEST_GITHUB_TOKN}", func(string) (string, bool) { return "", false }, false, nil)
	if len(errs) != 1 || strings.Contains(errs[0], "did you mean") {
		t.Errorf("errors %q, want no suggestion", errs)
	}
}

func TestEnvInConfig(t *testing.T) {
	const yml = `sources:
  - name: ${SOURCE_NAME}
    base_url: ${BASE:-https://api.example.com}
    timeout: ${TIMEOUT:-}
    rate_limit: { per_second: "${RATE}" }
resources:
  - name: r
    object: o
    url: /r?key=${KEY}&since=${epoch}
destinations:
  - name: d
    url: stdout
    events:
      - ${EVENTS}
`
	c, errs := parseString(t, yml, map[string]string{"SOURCE_NAME": "api", "RATE": "2", "KEY": "k&1", "EVENTS": "o.*"})
	if errs != nil {
		t.Fatal(errs)
	}
	eq(t, "name", c.Sources[0].Name, "api")
	eq(t, "default", c.Sources[0].BaseURL, "https://api.example.com")
	eq(t, "empty means left out", c.Sources[0].Timeout.D(), DefaultTimeout)
	eq(t, "quoted number", c.Sources[0].RateLimit.PerSecond, 2.0)
	eq(t, "url", c.Resources[0].URL, "/r?key=k&1&since=${epoch}")
	eq(t, "list item", c.Destinations[0].Events[0], "o.*")

	_, errs = parseString(t, yml, map[string]string{"SOURCE_NAME": "api", "RATE": "2"})
	want := []string{
		"test.yaml:9: resources[r].url: environment variable KEY is not set",
		"test.yaml:14: destinations[d].events[0]: environment variable EVENTS is not set",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want %q…", i, errs[i], w)
		}
	}
}
