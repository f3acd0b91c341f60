package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/pollhook/pollhook/cursor"
)

// screenshotEnv names the file TestConsoleInBrowser writes a screenshot
// of the overview to; the README's is made with
//
//	POLLHOOK_SCREENSHOT=$PWD/docs/console.png go test -run TestConsoleInBrowser ./internal/console
const screenshotEnv = "POLLHOOK_SCREENSHOT"

// chromium returns the path of a Chromium to drive, or skips t.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (looked for /usr/bin/chromium, chromium, chromium-browser): " +
		"the console's browser test needs one; on Debian: apt-get install -y chromium")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context; it is closed when t ends.
func browser(t *testing.T) context.Context {
	path := chromium(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelTab := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	return ctx
}

// do runs browser steps, failing t on error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// bodyText is the text of the page shown.
func bodyText(t *testing.T, ctx context.Context) string {
	return run(t, ctx, chromedp.Text(chromedp.CSS("body")))
}

// TestConsoleInBrowser drives the console in a real Chromium, as an
// operator would: refused without sign-in, sign in, see every resource
// and destination, Poll now and see the new cycle, replay a dead
// delivery and see it delivered, refused without the CSRF token, sign
// out; then, with scripts off, sign in and Poll now again. With
// POLLHOOK_SCREENSHOT set, it writes a screenshot of the overview there.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	sc := newScene(t)

	// Without sign-in: the sign-in form, and nothing of the state.
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/resources/contacts"))
	if loc := run(t, ctx, chromedp.Location()); !strings.Contains(loc, "/ui/login") {
		t.Fatalf("without sign-in, the resource page went to %s, want the sign-in form", loc)
	}
	for _, secret := range []string{"contacts", "billing", "crm-sync", "console-test"} {
		if text := bodyText(t, ctx); strings.Contains(text, secret) {
			t.Errorf("the sign-in page shows %q before sign-in:\n%s", secret, text)
		}
	}
	// A POST without a session is refused, and polls nothing.
	before := sc.cycles("contacts")
	status := run(t, ctx, chromedp.Evaluate[float64](
		`fetch("/ui/resources/contacts/poll", {method: "POST", body: new URLSearchParams({csrf: "x"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("Poll now without sign-in answered %v, want 403", status)
	}

	// A wrong token, then the right one.
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), "not the token"),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(".flash.bad")),
	)
	if text := bodyText(t, ctx); !strings.Contains(text, "not the token") {
		t.Errorf("a wrong token says:\n%s", text)
	}
	do(t, ctx,
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("cycles")),
	)
	if loc := run(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/ui/resources/contacts") {
		t.Errorf("after sign-in the browser is at %s, want back at the resource page it asked for", loc)
	}
	if n := sc.cycles("contacts"); n != before {
		t.Errorf("the POST without sign-in made %d cycles", n-before)
	}

	// The overview: every resource, destination and subscription.
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/"), chromedp.WaitVisible(chromedp.ID("charts")))
	text := bodyText(t, ctx)
	for _, want := range []string{"contacts", "leads", "crm-sync", "billing", "legacy-erp", "hook:", "REST Hook (keap)",
		"disabled", "dead deliveries", "Events per hour", "Backlog"} {
		if !strings.Contains(text, want) {
			t.Errorf("the overview does not show %q:\n%s", want, text)
		}
	}
	if path := os.Getenv(screenshotEnv); path != "" {
		png := run(t, ctx, chromedp.FullScreenshot(100))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the overview's screenshot to %s", path)
	}

	// Poll now, and see the new cycle.
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/resources/contacts"), chromedp.WaitVisible(chromedp.ID("cycles")))
	first := run(t, ctx, chromedp.Text(chromedp.CSS("#cycles tbody tr th")))
	sc.crm.Create("Katherine Johnson")
	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/poll"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash.good")))
	sc.waitFor("the polled cycle", func() bool { return sc.cycles("contacts") > before })
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("cycles")))
	if now := run(t, ctx, chromedp.Text(chromedp.CSS("#cycles tbody tr th"))); now == first {
		t.Errorf("after Poll now the newest cycle is still %s", now)
	}
	if text := bodyText(t, ctx); !strings.Contains(text, "contact.created") {
		t.Errorf("the resource page does not list the new contact's event:\n%s", text)
	}

	// Replay a dead delivery, and see it delivered.
	dead, err := sc.store.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: "billing", Status: cursor.StatusDead, Limit: 1})
	if err != nil || len(dead) != 1 {
		t.Fatalf("billing's dead deliveries: %v, %v", dead, err)
	}
	id := dead[0].EventID
	sc.billing.status.Store(200)
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/destinations/billing"), chromedp.WaitVisible(chromedp.ID("dead")),
		chromedp.Click(chromedp.CSS(`#dead form input[value="`+id+`"] ~ button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash.good")),
	)
	sc.waitFor("the replayed delivery", func() bool {
		d, err := sc.store.Deliveries(context.Background(), cursor.DeliveryFilter{Destination: "billing", EventID: id})
		return err == nil && len(d) == 1 && d[0].Status == cursor.StatusDelivered
	})
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/events/"+id), chromedp.WaitVisible(chromedp.ID("deliveries")))
	row := run(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#deliveries tbody tr")]
		.filter(r => r.querySelector('a[href="/ui/destinations/billing"]')).map(r => r.innerText).join("\n")`))
	if !strings.Contains(row, "delivered") {
		t.Errorf("the event page shows billing's delivery as %q, want delivered", row)
	}

	// A form without the session's CSRF token is refused, and polls
	// nothing.
	before = sc.cycles("contacts")
	status = run(t, ctx, chromedp.Evaluate[float64](
		`fetch("/ui/resources/contacts/poll", {method: "POST", body: new URLSearchParams({csrf: "forged"})}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("Poll now with a forged CSRF token answered %v, want 403", status)
	}
	time.Sleep(300 * time.Millisecond) // a cycle, had one started, would be recorded by now
	if n := sc.cycles("contacts"); n != before {
		t.Errorf("the POST with a forged CSRF token made %d cycles", n-before)
	}

	// Sign out: the session is over.
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/"), chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)),
		chromedp.WaitVisible(chromedp.ID("token")))
	do(t, ctx, chromedp.Navigate(sc.base+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))

	// With scripts off, sign in and Poll now work the same: they are
	// forms, the script only enhances.
	do(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	do(t, ctx,
		chromedp.Navigate(sc.base+"/ui/resources/leads"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`form[action="/ui/login"] button`)),
		chromedp.WaitVisible(chromedp.ID("cycles")),
	)
	if text := bodyText(t, ctx); strings.Contains(text, "Auto-refresh") {
		t.Errorf("with scripts off the page shows the script's switch: the script ran")
	}
	before = sc.cycles("leads")
	do(t, ctx, chromedp.Click(chromedp.CSS(`form[action$="/poll"] button`)), chromedp.WaitVisible(chromedp.CSS(".flash.good")))
	sc.waitFor("the cycle polled with scripts off", func() bool { return sc.cycles("leads") > before })
}
