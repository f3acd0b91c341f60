package examples_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// shBlock returns the command lines of the first sh block of the README
// after the text after (or of the first screen, when after is "").
func shBlock(t *testing.T, after string) []string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)
	if after != "" {
		var ok bool
		if _, section, ok = strings.Cut(section, after); !ok {
			t.Fatalf("README has no %q", strings.TrimSpace(after))
		}
	}
	_, block, ok := strings.Cut(section, "\n```sh\n")
	block, _, ok2 := strings.Cut(block, "\n```\n")
	if !ok || !ok2 {
		t.Fatalf("no ```sh block after %q in the README", strings.TrimSpace(after))
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkout makes a checkout of the repository of its own, as ~/pollhook
// of a home directory: its files, linked, and none of what the README's
// commands write. It returns the home directory and the checkout.
func checkout(t *testing.T) (home, work string) {
	t.Helper()
	root, _ := filepath.Abs("..")
	home = t.TempDir()
	work = filepath.Join(home, "pollhook")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case ".git", "pollhook", "pollhook.yaml", "pollhook-data":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return home, work
}

// toolchainEnv is the test's environment for the go command, and nothing
// else: PATH, HOME, TMPDIR and the GO variables.
func toolchainEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "PATH" || name == "HOME" || name == "TMPDIR" || strings.HasPrefix(name, "GO") {
			env = append(env, kv)
		}
	}
	return env
}

// placeholders are the README's values a reader replaces, and what the
// test puts in: the fake API's token, and its receiver's URL.
var placeholders = map[string]func(rcv string) string{
	"GITHUB_TOKEN": func(string) string { return githubToken },
	"WEBHOOK_URL":  func(rcv string) string { return rcv },
}

// TestREADMECommands runs, as the README writes them and in one checkout
// of their own (see the subtests), the first screen's demo and the quick
// start with a real API.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pollhook and runs it; skipped with -short")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the README's commands with")
	}
	home, work := checkout(t)
	t.Run("first screen", func(t *testing.T) { firstScreen(t, bash, work) })
	t.Run("quick start", func(t *testing.T) { quickStart(t, bash, home, work) })
}

// firstScreen runs the demo line of the README's first screen, with bash
// in a process group as a terminal does, until the demo has delivered an
// event, then Ctrl-C (SIGINT to the group): it exits 0, with its summary.
func firstScreen(t *testing.T, bash, work string) {
	lines := shBlock(t, "")
	var demo string
	for _, l := range lines {
		if strings.Contains(l, "pollhook demo") {
			demo = l
		}
	}
	if demo == "" || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "go test ./...") }) {
		t.Fatalf("the first screen's commands %q: want the demo and go test ./...", lines)
	}
	cmd := exec.Command(bash, "-c", demo)
	cmd.Dir, cmd.Env = work, toolchainEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The first build may take minutes on a cold cache.
	deadline := time.After(10 * time.Minute)
	for !strings.Contains(out.String(), "(signature ok, evt_") {
		select {
		case err := <-done:
			t.Fatalf("%s ended before delivering an event: %v\n%s", demo, err, out.String())
		case <-deadline:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("%s delivered no event in 10 minutes:\n%s", demo, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil || !strings.Contains(out.String(), "\nsummary: ") {
			t.Errorf("%s after Ctrl-C: %v, want exit 0 and the summary:\n%s", demo, err, out.String())
		}
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("%s did not stop within 30s of Ctrl-C:\n%s", demo, out.String())
	}
}

// quickStart runs the README's quick start as written, with bash, against
// a fake of the GitHub API (the example's GITHUB_API_URL) and a receiver
// that checks each event's signature with the key the quick start made:
// every variable the example needs must be in the quick start (nothing
// else of the test's environment reaches it), check and the dry run
// succeed, run polls and stops cleanly on SIGINT. Then the crontab
// example's line, run as cron runs it, delivers a change, signed, and
// prints nothing (cron mails nothing) until the API fails.
func quickStart(t *testing.T, bash, home, work string) {
	lines := shBlock(t, "\n## Quick start with a real API\n")

	var api *fakeAPI
	for _, tc := range replayCases {
		if tc.file == "github-issues.yaml" {
			api = newFakeAPI(t, "github-issues", tc.handle)
		}
	}
	rcv := &signedReceiver{}
	rsrv := httptest.NewServer(rcv)
	defer rsrv.Close()

	// Only the toolchain's variables and the API's address come from the
	// test; the rest is the quick start's.
	base := append(toolchainEnv(), "GITHUB_API_URL="+api.base)
	run := func(env []string, line string) (string, string, error) {
		cmd := exec.Command(bash, "-c", "set -e\n"+line)
		cmd.Dir, cmd.Env = work, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}

	var exports, commands []string
	for _, l := range lines {
		if strings.HasPrefix(l, "export ") {
			exports = append(exports, l)
		} else {
			commands = append(commands, l)
		}
	}
	// The exports, run as written; then the placeholders filled in.
	out, errOut, err := run(base, strings.Join(exports, "\n")+"\nenv -0")
	if err != nil {
		t.Fatalf("the quick start's exports: %v\n%s", err, errOut)
	}
	var env []string
	exported := map[string]string{}
	for _, kv := range strings.Split(strings.TrimRight(out, "\x00"), "\x00") {
		name, value, _ := strings.Cut(kv, "=")
		if fill, ok := placeholders[name]; ok {
			value = fill(rsrv.URL + "/webhooks")
		} else if strings.Contains(value, "…") {
			t.Errorf("the quick start exports %s=%s, a placeholder this test does not fill in", name, value)
		}
		exported[name] = value
		env = append(env, name+"="+value)
	}
	for name := range requiredEnv["github-issues.yaml"] {
		if !slices.ContainsFunc(exports, func(l string) bool { return strings.Contains(l, " "+name+"=") }) {
			t.Errorf("the quick start does not export %s, which examples/github-issues.yaml needs", name)
		}
	}
	rcv.setSecret(t, exported["WEBHOOK_SECRET"])

	ran := map[string]bool{}
	for _, line := range commands {
		switch {
		case strings.HasPrefix(line, "./pollhook run"):
			runDaemon(t, bash, work, env, line, api)
			ran["run"] = true
			continue
		}
		out, errOut, err := run(env, line)
		if err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", line, err, out, errOut)
		}
		switch {
		case strings.HasPrefix(line, "./pollhook check"):
			for _, want := range []string{"config pollhook.yaml is valid", "events issue.created,issue.updated ", "destinations (1)"} {
				if !strings.Contains(out, want) {
					t.Errorf("%s: the output lacks %q:\n%s", line, want, out)
				}
			}
			ran["check"] = true
		case strings.HasPrefix(line, "./pollhook once --dry-run"):
			if want := "issues: (dry run) first cycle recorded 4 records in 2 pages"; !strings.Contains(errOut, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", line, want, errOut)
			}
			ran["dry run"] = true
		}
	}
	for _, step := range []string{"check", "dry run", "run"} {
		if !ran[step] {
			t.Errorf("the quick start has no %s step", step)
		}
	}
	if t.Failed() {
		return
	}

	// The crontab example's line, as cron runs it: with cron's bare
	// environment and the env file the example says to write (here with
	// the fake's address, as for GitHub Enterprise). An edited issue is
	// delivered, and cron has nothing to mail.
	var envFile strings.Builder
	for _, kv := range append(env, "GITHUB_API_URL="+api.base) {
		name, value, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&envFile, "export %s='%s'\n", name, value)
	}
	if err := os.WriteFile(filepath.Join(work, "env"), []byte(envFile.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cron := crontabLine(t)
	cronRun := func() (string, error) {
		cmd := exec.Command("/bin/sh", "-c", cron)
		cmd.Dir = "/"
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "LOGNAME=pollhook"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	api.replace("page1", "2026-02-11T14:22:05Z", "2026-03-06T07:00:00Z")
	if out, err := cronRun(); err != nil || out != "" {
		t.Fatalf("the crontab line after an edit: %v; it printed (cron would mail):\n%s", err, out)
	}
	if got := rcv.received(); !slices.Equal(got, []string{"issue.updated 3"}) {
		t.Errorf("the receiver got %q, want the one update of issue 3, signed", got)
	}
	// The API answers garbage: the line fails, and says why.
	api.mu.Lock()
	api.pages["page1"] = []byte("<html>maintenance</html>")
	api.mu.Unlock()
	if out, err := cronRun(); err == nil || !strings.Contains(out, "issues: failed") {
		t.Errorf("the crontab line against a failing API: %v, and it printed %q; want exit 1 and the failure", err, out)
	}
}

// crontabLine returns the command of examples/deploy/crontab's job: its
// one line that is not a comment or a variable, without the schedule.
func crontabLine(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("deploy/crontab")
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || regexp.MustCompile(`^[A-Z_]+=`).MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("crontab line %q: want five schedule fields and a command", l)
		}
		jobs = append(jobs, strings.Join(f[5:], " "))
	}
	if len(jobs) != 1 {
		t.Fatalf("examples/deploy/crontab has %d jobs, want 1", len(jobs))
	}
	if strings.Contains(jobs[0], "/var/") {
		t.Errorf("the crontab line %q writes under /var, where an ordinary user's crontab cannot", jobs[0])
	}
	return jobs[0]
}

// runDaemon runs the quick start's run line until the first cycle has
// completed, then stops it with SIGINT: it must exit 0.
func runDaemon(t *testing.T, bash, work string, env []string, line string, api *fakeAPI) {
	t.Helper()
	cmd := exec.Command(bash, "-c", "exec "+line)
	cmd.Dir, cmd.Env = work, env
	var errb syncBuffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The first cycle is complete when the state says so; cursors reads
	// it beside the daemon.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := exec.Command(filepath.Join(work, "pollhook"), "cursors", "--json")
		c.Dir, c.Env = work, env
		out, _ := c.Output()
		var row struct {
			Completed int64 `json:"completed"`
			Known     int64 `json:"known"`
		}
		if json.Unmarshal(out, &row) == nil && row.Completed >= 1 {
			if row.Known != 4 {
				t.Errorf("after run's first cycle the state knows %d issues, want 4", row.Known)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited before its first cycle completed: %v\n%s", line, err, errb.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s: no complete cycle within 30s\n%s", line, errb.String())
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s after SIGINT: %v, want exit 0\n%s", line, err, errb.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not stop within 30s of SIGINT\n%s", line, errb.String())
	}
}

// signedReceiver takes CloudEvents whose Standard Webhooks signature is
// good, and records "type subject" of each.
type signedReceiver struct {
	mu  sync.Mutex
	wh  *standardwebhooks.Webhook
	got []string
	bad []string
}

func (s *signedReceiver) setSecret(t *testing.T, secret string) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("the quick start's WEBHOOK_SECRET %q is no Standard Webhooks key: %v", secret, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wh = wh
}

func (s *signedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wh == nil || s.wh.Verify(body, r.Header) != nil {
		s.bad = append(s.bad, r.Header.Get("webhook-id"))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev struct {
		Type    string `json:"type"`
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	s.got = append(s.got, ev.Type+" "+ev.Subject)
	w.WriteHeader(http.StatusNoContent)
}

func (s *signedReceiver) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		return append(slices.Clone(s.got), fmt.Sprintf("%d badly signed", len(s.bad)))
	}
	return slices.Clone(s.got)
}

// syncBuffer is a bytes.Buffer safe to write from a process's output
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
