package config

import (
	"strings"
	"testing"
	"time"
)

// localConfig needs three secrets, and its resource is broken: Parse
// refuses it, ParseLocal reads what it needs.
const localConfig = `x-base: &base
  path: ${STATE_DIR:-/var/lib/pollhook}/contacts.db
state:
  <<: *base
  retention: { delivered: 24h }
http:
  listen: 127.0.0.1:9090
  token: ${POLLHOOK_TOKEN}
sources:
  - name: keap
    base_url: https://api.infusionsoft.com/crm/rest/v1
    auth: { type: bearer, token: "${KEAP_TOKEN}" }
resources:
  - name: contacts
    url: /contacts
    schedule: every so often
destinations:
  - name: app
    url: ${WEBHOOK_URL}
`

func TestParseLocal(t *testing.T) {
	env := func(vars map[string]string) func(string) (string, bool) {
		return func(name string) (string, bool) { v, ok := vars[name]; return v, ok }
	}
	if _, err := Parse("pollhook.yaml", []byte(localConfig), env(nil)); err == nil {
		t.Fatal("Parse took a config with unset variables and a bad schedule")
	}
	l, err := ParseLocal("pollhook.yaml", []byte(localConfig), env(nil))
	if err != nil {
		t.Fatalf("ParseLocal without the secrets: %v", err)
	}
	eq(t, "file", l.File, "pollhook.yaml")
	eq(t, "state.path", l.State.Path, "/var/lib/pollhook/contacts.db")
	eq(t, "state.retention.delivered", l.State.Retention.Delivered.D(), 24*time.Hour)
	eq(t, "state.retention.dead", l.State.Retention.Dead.D(), DefaultDeadRetention)
	eq(t, "http.listen", l.Listen, "127.0.0.1:9090")

	l, err = ParseLocal("pollhook.yaml", []byte(localConfig), env(map[string]string{"STATE_DIR": "/data"}))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "state.path from STATE_DIR", l.State.Path, "/data/contacts.db")

	l, err = ParseLocal("empty.yaml", []byte("sources: []\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "default state.path", l.State.Path, DefaultStatePath)
	eq(t, "no http.listen", l.Listen, "")
}

func TestParseLocalErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unset variable in state", "state:\n  path: ${STATE_FILE}\n", []string{
			"pollhook.yaml:2: state.path: environment variable STATE_FILE is not set",
		}},
		{"misspelt key", "state:\n  pth: x.db\n", []string{
			"pollhook.yaml:2: state.pth: unknown key; did you mean path?",
		}},
		{"bad retention", "state:\n  retention: { dead: forever }\n", []string{
			`pollhook.yaml:2: state.retention.dead: want a duration`,
		}},
		{"bad listen", "http:\n  listen: localhost\n  token: ${UNSET_TOKEN}\n", []string{
			`pollhook.yaml:2: http.listen: want host:port such as 127.0.0.1:8080 or :8080 (got "localhost")`,
		}},
		{"http not a mapping", "http: 8080\n", []string{
			"pollhook.yaml:1: http: want a mapping of listen, token, allow_targets",
		}},
		{"yaml error", "state:\n\tpath: x.db\n", []string{
			"pollhook.yaml:2: invalid YAML: a tab in the indentation",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseLocal("pollhook.yaml", []byte(tt.yaml), nil)
			errs, ok := err.(Errors)
			if !ok {
				t.Fatalf("got %v (%T), want Errors", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n got  %s\n want %s…", i, e, tt.want[i])
				}
			}
		})
	}
}
