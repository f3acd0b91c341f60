package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs the demo for a few seconds, faster than by default, and
// checks that events of every type arrived with valid signatures.
func TestDemo(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for 6s; skipped with -short")
	}
	out, errOut, code := runCLI(t, "demo", "--duration", "6s", "--poll", "1s", "--mutate", "100ms", "--seed", "7")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, typ := range []string{"contact.created", "contact.updated", "contact.deleted"} {
		if !regexp.MustCompile(`(?m)^✓ ` + regexp.QuoteMeta(typ) + ` .*\(signature ok, evt_[0-9a-f]{32}\)$`).MatchString(out) {
			t.Errorf("no verified %s line in the demo's output:\n%s", typ, out)
		}
	}
	// Updates say what changed; deletes name the contact from the last
	// version pollhook saw.
	if !regexp.MustCompile(`(?m)^✓ contact\.updated .* changed=\S*modified`).MatchString(out) {
		t.Errorf("no contact.updated line with its changed fields:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^✓ contact\.deleted .* email=\S+@`).MatchString(out) {
		t.Errorf("no contact.deleted line with the contact's email:\n%s", out)
	}
	if strings.Contains(out, "✗") || !strings.Contains(out, "all signatures valid") {
		t.Errorf("the demo saw bad signatures:\n%s", out)
	}
	if !regexp.MustCompile(`summary: \d+ polls?, \d+ changes? made in the CRM, [1-9]\d* events? delivered`).MatchString(out) {
		t.Errorf("no summary line:\n%s", out)
	}
}

// TestDemoKeep: demo --keep leaves its state file and says how to browse
// it; the command it gives works.
func TestDemoKeep(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs for 3s; skipped with -short")
	}
	out, errOut, code := runCLI(t, "demo", "--duration", "3s", "--poll", "1s", "--mutate", "100ms", "--seed", "3", "--keep")
	if code != 0 {
		t.Fatalf("demo --keep: exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^  pollhook (events --state (\S+))$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("demo --keep does not say how to browse its state:\n%s", out)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(m[2])) })
	list, errOut, code := runCLI(t, strings.Fields(m[1])...)
	if code != 0 || !strings.Contains(list, "contact.") {
		t.Errorf("pollhook %s: exit %d, %q\n%s", m[1], code, errOut, list)
	}
}

// TestDemoSummaryOfNothing: a demo stopped before anything changed says
// so, rather than calling no signature at all valid.
func TestDemoSummaryOfNothing(t *testing.T) {
	d, err := newDemoReceiver(&strings.Builder{}, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	d.summary(&out, 1, 0)
	got := out.String()
	if strings.Contains(got, "()") || strings.Contains(got, "all signatures valid") {
		t.Errorf("summary of no events = %q", got)
	}
	if !strings.Contains(got, "0 events delivered, ") || !strings.Contains(got, "nothing to verify") {
		t.Errorf("summary of no events = %q; want it to say nothing was delivered or verified", got)
	}
}
