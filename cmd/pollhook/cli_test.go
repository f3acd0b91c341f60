package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestFlagsBeforeOrAfterArguments: every command takes its flags before,
// between or after its positional arguments, and "--" ends them.
func TestFlagsBeforeOrAfterArguments(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := writeConfig(t, t.TempDir(), srv.URL, "    start: beginning\ndestinations:\n  - name: app\n    url: stdout\n")
	if _, errOut, code := runCLI(t, "once", "--no-deliver", "-c", cfg); code != 0 {
		t.Fatalf("once: %d %s", code, errOut)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"cursors", "reset", "things", "-c", cfg, "--to", "2026-10-01T00:00:00Z"}, 0, "things: watermark set to 2026-10-01T00:00:00Z"},
		{[]string{"cursors", "-c", cfg, "reset", "things", "--to", "2026-10-02T00:00:00Z"}, 0, "things: watermark set to 2026-10-02T00:00:00Z"},
		{[]string{"cursors", "-c", cfg, "--to", "2026-10-03T00:00:00Z", "reset", "things"}, 0, "things: watermark set to 2026-10-03T00:00:00Z"},
		{[]string{"cursors", "reset", "-c", cfg, "--", "things"}, 0, "things: watermark set to -"},
		{[]string{"destinations", "-c", cfg, "enable", "app"}, 0, "app enabled"},
		{[]string{"destinations", "enable", "-c", cfg, "app"}, 0, "app enabled"},
		{[]string{"destinations", "enable", "app", "-c", cfg}, 0, "app enabled"},
		{[]string{"events", "--json", "-c", cfg, "--limit", "1"}, 0, `"type":"thing.created"`},
		{[]string{"cursors", "--to", "2026-10-01T00:00:00Z", "-c", cfg}, 2, "cursors: --to goes with reset: pollhook cursors reset RESOURCE --to …"},
		{[]string{"cursors", "-c", cfg, "rest", "things"}, 2, `cursors: unknown subcommand "rest": want reset, or nothing to list`},
		{[]string{"cursors", "-c", cfg, "reset"}, 2, "cursors reset: say which resource: pollhook cursors reset RESOURCE"},
		{[]string{"cursors", "reset", "things", "--json", "-c", cfg}, 2, "cursors reset: --json goes with the listing"},
		{[]string{"destinations", "-c", cfg, "enable"}, 2, "destinations enable: say which destination"},
		{[]string{"destinations", "enable", "app", "extra", "-c", cfg}, 2, `unexpected argument "extra"`},
		{[]string{"events", "-c", cfg, "contacts"}, 2, `unexpected argument "contacts"`},
		{[]string{"check", cfg}, 2, "unexpected argument"},
	} {
		out, errOut, code := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%q: exit %d\nstdout %q\nstderr %q\nwant exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
}

// TestHelp: -h, --help and "pollhook help CMD" print the command's usage
// and every flag to stdout, and exit 0.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help", "events"}, {"events", "--help"}, {"events", "-h"}, {"events", "--limit", "3", "-h"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: pollhook events") {
			t.Errorf("%q: exit %d, stderr %q, stdout %q", args, code, errOut, out)
			continue
		}
		for _, flag := range []string{"-c, --config FILE", "--state FILE", "--limit N", "--json", "(default 1000)"} {
			if !strings.Contains(out, flag) {
				t.Errorf("%q: the help lacks %q:\n%s", args, flag, out)
			}
		}
	}
}

// commandFlags returns the flags of the command name as its help lists
// them: each a list of aliases.
func commandFlags(t *testing.T, name string) [][]string {
	t.Helper()
	err := commands[name].run(t.Context(), &env{stdout: &strings.Builder{}, stderr: &strings.Builder{}}, []string{"--help"})
	h, ok := err.(*helpRequest)
	if !ok {
		t.Fatalf("%s --help: %v, want its help", name, err)
	}
	return h.flags
}

// TestREADMECommandTable: the README's table of commands lists every
// command, and for each the flags it takes, and no other. -c (the config)
// and --state are said once for all, above the table.
func TestREADMECommandTable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	start := strings.Index(section, "\n## Commands\n")
	if start < 0 {
		t.Fatal("README has no ## Commands section")
	}
	section = section[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z]+)[^|]*\\|")
	flagRE := regexp.MustCompile(`(?:^|[\s\[(|])--?([a-z][a-z-]*)`)
	listed := map[string][]string{}
	for _, row := range strings.Split(section, "\n") {
		if m := rowRE.FindStringSubmatch(row); m != nil {
			// The first cell; \| is a | within it.
			cell := strings.Split(strings.ReplaceAll(row, `\|`, "/"), "|")[1]
			for _, f := range flagRE.FindAllStringSubmatch(strings.ReplaceAll(cell, "`", " "), -1) {
				if !slices.Contains(listed[m[1]], f[1]) {
					listed[m[1]] = append(listed[m[1]], f[1])
				}
			}
			if _, ok := listed[m[1]]; !ok {
				listed[m[1]] = nil
			}
		}
	}
	var names []string
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		got, ok := listed[name]
		if !ok {
			t.Errorf("the README's command table has no row for %s", name)
			continue
		}
		var want []string
		for _, aliases := range commandFlags(t, name) {
			switch long := aliases[len(aliases)-1]; long {
			case "config", "state":
				if !strings.Contains(section, "--"+long) && !strings.Contains(section, "-c FILE") {
					t.Errorf("the README's Commands section does not say what --%s is", long)
				}
			default:
				want = append(want, long)
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("README row of %s lists the flags %v; the command takes %v", name, got, want)
		}
	}
	for name := range listed {
		if commands[name] == nil {
			t.Errorf("the README's command table lists %s, which is no command", name)
		}
	}
	if !strings.Contains(section, "--state FILE") {
		t.Error("the README's Commands section does not say which commands take --state FILE")
	}
}

// TestReadOnlyCommandsNeedOnlyTheState: the commands that read the state
// file work with a config whose API token and receiver secret are unset,
// or with --state and no config at all.
func TestReadOnlyCommandsNeedOnlyTheState(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	dir := t.TempDir()
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer rcv.Close()
	full := writeConfig(t, dir, srv.URL, fmt.Sprintf("    start: beginning\ndestinations:\n  - name: app\n    url: %s\n", rcv.URL))
	if _, errOut, code := runCLI(t, "once", "-c", full); code != 0 {
		t.Fatalf("once: %d %s", code, errOut)
	}
	state := filepath.Join(dir, "state.db")
	secretive := filepath.Join(dir, "secretive.yaml")
	os.WriteFile(secretive, []byte(fmt.Sprintf(`state:
  path: %s
sources:
  - name: api
    base_url: %s
    auth: { type: bearer, token: "${PH_TEST_UNSET_TOKEN}" }
resources:
  - name: things
    object: thing
    url: /items
destinations:
  - name: app
    url: ${PH_TEST_UNSET_URL}
    secret: ${PH_TEST_UNSET_SECRET}
`, state, srv.URL)), 0o600)
	if _, errOut, code := runCLI(t, "check", "-c", secretive); code != 2 || !strings.Contains(errOut, "PH_TEST_UNSET_TOKEN") {
		t.Fatalf("check of the config without its secrets: exit %d, %q; want it refused", code, errOut)
	}
	for _, cmd := range [][]string{
		{"events"}, {"deliveries"}, {"attempts"}, {"cursors"}, {"destinations"},
		{"deliveries", "--json"}, {"destinations", "enable", "app"},
	} {
		for _, how := range [][]string{{"-c", secretive}, {"--state", state}} {
			args := append(slices.Clone(cmd), how...)
			out, errOut, code := runCLI(t, args...)
			if code != 0 || out == "" {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
		}
	}
	out, _, _ := runCLI(t, "destinations", "--state", state)
	if !regexp.MustCompile(`(?m)^app\s+0\s+0\s+-\s+enabled$`).MatchString(out) {
		t.Errorf("destinations --state:\n%s", out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "--state", filepath.Join(dir, "nope.db")}, "nope.db does not exist"},
		{[]string{"events", "-c", secretive, "--state", state}, "not both"},
		{[]string{"events", "-c", filepath.Join(dir, "nope.yaml")}, "does not exist: pass -c FILE"},
	} {
		if _, errOut, code := runCLI(t, tt.args...); code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); !os.IsNotExist(err) {
		t.Errorf("events --state of a missing file made it: %v", err)
	}
}

// TestEventsLimitShowsTheNewest: --limit N lists the newest N events that
// match, oldest first.
func TestEventsLimitShowsTheNewest(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := writeConfig(t, t.TempDir(), srv.URL, "    start: beginning\n")
	for i := 2; i <= 5; i++ {
		if _, errOut, code := runCLI(t, "once", "-c", cfg); code != 0 {
			t.Fatalf("once: %d %s", code, errOut)
		}
		api.set(fmt.Sprint(i), fmt.Sprintf("2026-11-0%dT10:00:00Z", i))
	}
	objects := func(args ...string) []string {
		out, errOut, code := runCLI(t, append([]string{"events", "-c", cfg, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("events %q: %d %s", args, code, errOut)
		}
		var ids []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var ev struct {
				ObjectID string `json:"object_id"`
			}
			json.Unmarshal([]byte(line), &ev)
			ids = append(ids, ev.ObjectID)
		}
		return ids
	}
	if got := objects("--limit", "2"); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("events --limit 2 = %v, want the newest two, [3 4]", got)
	}
	if got := objects("--limit", "0"); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("events --limit 0 = %v, want all four", got)
	}
	if got := objects("--limit", "10", "--type", "thing.created"); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Errorf("events --limit 10 = %v, want all four", got)
	}
	if _, errOut, code := runCLI(t, "events", "-c", cfg, "--limit", "-1"); code != 2 || !strings.Contains(errOut, "want 0 (all) or more") {
		t.Errorf("events --limit -1: %d %q", code, errOut)
	}
}

func TestTail(t *testing.T) {
	for _, tt := range []struct {
		n, add int
		want   []int
	}{
		{3, 0, nil}, {3, 2, []int{0, 1}}, {3, 3, []int{0, 1, 2}}, {3, 7, []int{4, 5, 6}}, {0, 4, []int{0, 1, 2, 3}}, {1, 5, []int{4}},
	} {
		tl := newTail[int](tt.n)
		for i := range tt.add {
			tl.add(i)
		}
		if got := tl.items(); !slices.Equal(got, tt.want) {
			t.Errorf("tail of %d after %d adds = %v, want %v", tt.n, tt.add, got, tt.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{{0, "0 pages"}, {1, "1 page"}, {2, "2 pages"}} {
		if got := plural(tt.n, "page", "pages"); got != tt.want {
			t.Errorf("plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

// TestCheckListsTheEventsThatCanHappen: a resource emits deletes only
// with deletes: snapshot, and check lists what each can emit.
func TestCheckListsTheEventsThatCanHappen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	snapshot := writeConfig(t, dir, "https://api.example.com", "")
	out, errOut, code := runCLI(t, "check", "-c", snapshot)
	if code != 0 || !strings.Contains(out, "events thing.created,thing.updated,thing.deleted ") {
		t.Errorf("check of a snapshot resource: exit %d, %q\n%s", code, errOut, out)
	}
	none := filepath.Join(dir, "none.yaml")
	b, _ := os.ReadFile(snapshot)
	os.WriteFile(none, []byte(strings.Replace(string(b), "deletes: snapshot", "deletes: none", 1)), 0o600)
	out, errOut, code = runCLI(t, "check", "-c", none)
	if code != 0 || !strings.Contains(out, "events thing.created,thing.updated ") {
		t.Errorf("check of a deletes: none resource: exit %d, %q\n%s", code, errOut, out)
	}
	os.WriteFile(none, []byte(strings.Replace(string(b), "deletes: snapshot", "deletes: none", 1)+"destinations:\n  - { name: app, url: stdout, events: [\"thing.deleted\"] }\n"), 0o600)
	if _, errOut, code := runCLI(t, "check", "-c", none); code != 2 || !strings.Contains(errOut, `"thing.deleted" matches no event`) || !strings.Contains(errOut, "deletes: snapshot") {
		t.Errorf("check of a destination of deletes only: exit %d, %q", code, errOut)
	}
}
