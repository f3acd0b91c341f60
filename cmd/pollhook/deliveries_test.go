package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// statusReceiver answers every request with the current status and
// records the webhook-ids it accepted.
type statusReceiver struct {
	mu       sync.Mutex
	status   int
	accepted []string
}

func (s *statusReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status/100 == 2 {
		s.accepted = append(s.accepted, r.Header.Get("webhook-id"))
	}
	w.WriteHeader(s.status)
}

func (s *statusReceiver) set(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func TestOnceDeliversAndTheDeliveryCommands(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	up := httptest.NewServer(api)
	defer up.Close()
	rcv := &statusReceiver{status: http.StatusInternalServerError}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	cfg := writeConfig(t, t.TempDir(), up.URL, fmt.Sprintf(`    start: beginning
destinations:
  - name: app
    url: %s
    retry: { schedule: [500ms] }
`, hook.URL))

	// First attempt fails; the second (the one retry, due half a second
	// later: not within the first once) fails too: dead.
	out, errOut, code := runCLI(t, "once", "-c", cfg)
	if code != 0 || !regexp.MustCompile(`delivery: 0 delivered in (1 request, 1 failed, 0 dead|2 requests, 1 failed, 1 dead)`).MatchString(errOut) {
		t.Fatalf("once with a failing receiver: code %d, stderr %q", code, errOut)
	}
	eventID := regexp.MustCompile(`evt_[0-9a-f]{32}`).FindString(out)
	waitFor(t, "a later once to make the retry, and the event dead", func() bool {
		_, errOut, _ = runCLI(t, "once", "-c", cfg)
		return strings.Contains(errOut, "1 dead")
	})
	out, _, code = runCLI(t, "deliveries", "-c", cfg, "--status", "dead")
	if code != 0 || !strings.Contains(out, eventID) || !strings.Contains(out, "dead") || !strings.Contains(out, "500") {
		t.Fatalf("deliveries --status dead: code %d\n%s", code, out)
	}
	out, _, _ = runCLI(t, "attempts", "-c", cfg, "--event", eventID)
	if n := strings.Count(out, "500 Internal Server Error"); n != 2 {
		t.Fatalf("attempts lists %d failures of %s, want 2:\n%s", n, eventID, out)
	}

	// Replayed once the receiver works: delivered with the same id.
	rcv.set(http.StatusNoContent)
	out, _, code = runCLI(t, "replay", "-c", cfg, "--destination", "app", "--status", "dead")
	if code != 0 || !strings.Contains(out, "1 deliveries to app are pending again") {
		t.Fatalf("replay: code %d, %q", code, out)
	}
	runCLI(t, "once", "-c", cfg)
	if len(rcv.accepted) != 1 || rcv.accepted[0] != eventID {
		t.Fatalf("after replay the receiver accepted %v, want [%s]", rcv.accepted, eventID)
	}
	// Three attempts were made, two before the replay: deliveries lists
	// the attempts made, and counts against the schedule only the last.
	out, _, _ = runCLI(t, "deliveries", "-c", cfg, "--event", eventID, "--json")
	var row struct {
		Status          string `json:"status"`
		Attempts        int    `json:"attempts"`
		CountedAttempts int    `json:"counted_attempts"`
	}
	if err := json.Unmarshal([]byte(out), &row); err != nil || row.Status != "delivered" || row.Attempts != 3 || row.CountedAttempts != 1 {
		t.Fatalf("deliveries --json after a replay: %q (%v); want delivered, 3 attempts made, 1 counted", out, err)
	}
	if out, _, _ = runCLI(t, "deliveries", "-c", cfg, "--event", eventID); !regexp.MustCompile(`delivered\s+3\s`).MatchString(out) {
		t.Fatalf("deliveries after a replay shows\n%s\nwant 3 attempts", out)
	}

	// 410 disables the destination until it is enabled again.
	rcv.set(http.StatusGone)
	api.set("1", "2026-11-05T10:00:00Z")
	_, errOut, _ = runCLI(t, "once", "-c", cfg)
	if !strings.Contains(errOut, "1 destination disabled by a 410") {
		t.Fatalf("once against a 410: %q", errOut)
	}
	out, _, _ = runCLI(t, "destinations", "-c", cfg)
	if !strings.Contains(out, "DISABLED") {
		t.Fatalf("destinations after a 410:\n%s", out)
	}
	rcv.set(http.StatusOK)
	// The flags may come before the subcommand as well as after it.
	if out, errOut, code := runCLI(t, "destinations", "-c", cfg, "enable", "app"); code != 0 || !strings.Contains(out, "app enabled") {
		t.Fatalf("destinations -c FILE enable app: code %d, %q %q", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, "destinations", "enable", "nope", "-c", cfg); code != 2 || !strings.Contains(errOut, `no destination "nope"`) {
		t.Fatalf("destinations enable nope: code %d, %q", code, errOut)
	}
	runCLI(t, "once", "-c", cfg)
	if len(rcv.accepted) != 2 {
		t.Fatalf("after enable the receiver has %v", rcv.accepted)
	}
	if _, errOut, code := runCLI(t, "replay", "-c", cfg, "--destination", "app"); code != 2 || !strings.Contains(errOut, "say what to replay") {
		t.Errorf("replay without a selector: code %d, %q", code, errOut)
	}
	if _, errOut, code := runCLI(t, "replay", "-c", cfg, "--destination", "ap", "--status", "dead"); code != 2 || !strings.Contains(errOut, `no destination "ap"`) || !strings.Contains(errOut, "(it has app)") {
		t.Errorf("replay to a misspelt destination: code %d, %q; want the names there are", code, errOut)
	}
}

// TestDeliveriesToAFile: a delivery to a destination without status
// codes (a file here; NATS and stdout alike) shows it succeeded.
func TestDeliveriesToAFile(t *testing.T) {
	t.Parallel()
	api := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	up := httptest.NewServer(api)
	defer up.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, up.URL, fmt.Sprintf(`    start: beginning
destinations:
  - name: log
    url: file://%s/events.jsonl
`, dir))
	if _, errOut, code := runCLI(t, "once", "-c", cfg); code != 0 {
		t.Fatalf("once: code %d, stderr %q", code, errOut)
	}
	out, _, _ := runCLI(t, "deliveries", "-c", cfg)
	if !regexp.MustCompile(`(?m)^log\s+evt_\S+\s+\S+\s+delivered\s+1\s+-\s+ok\s+-\s*$`).MatchString(out) {
		t.Errorf("deliveries to a file:\n%s\nwant its LAST to say ok", out)
	}
}
