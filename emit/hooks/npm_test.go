package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pipedriveClientDir holds the Node project that drives the API with the
// official pipedrive npm client; `npm ci --prefix <dir>` installs it.
const pipedriveClientDir = "testdata/pipedrive-client"

// TestPipedriveNpmClient runs the official pipedrive npm client's
// WebhooksApi (add, list, delete) against the API.
func TestPipedriveNpmClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: this test runs the official pipedrive npm client (install Node.js, then npm ci --prefix emit/hooks/testdata/pipedrive-client)")
	}
	if _, err := os.Stat(filepath.Join(pipedriveClientDir, "node_modules", "pipedrive", "package.json")); err != nil {
		t.Skip("the pipedrive npm client is not installed: run npm ci --prefix emit/hooks/testdata/pipedrive-client")
	}

	// Each change is seen through Subscribers, as the delivery engine sees it.
	var mu sync.Mutex
	var seen [][]Subscriber
	var api atomic.Pointer[API]
	e := newEnv(t, func(o *Options) {
		o.OnChange = func() {
			subs, err := api.Load().Subscribers(context.Background())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			seen = append(seen, subs)
			mu.Unlock()
		}
	})
	api.Store(e.api)
	rc := newReceiver(t, http.StatusOK, nil)
	target := rc.URL + "/pipedrive"

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "test.mjs")
	cmd.Dir = pipedriveClientDir
	// The client (axios) honours proxy variables; the API is local.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); !strings.HasSuffix(strings.ToLower(name), "_proxy") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "POLLHOOK_URL="+e.srv.URL, "POLLHOOK_TOKEN="+testToken, "SUBSCRIPTION_URL="+target)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node test.mjs: %v\nstdout: %s\nstderr: %s", err, out, ee.Stderr)
		}
		t.Fatalf("node test.mjs: %v", err)
	}

	var res struct {
		Added  PipedriveWebhook   `json:"added"`
		Listed []PipedriveWebhook `json:"listed"`
		After  []PipedriveWebhook `json:"after"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %s: %v", out, err)
	}
	if res.Added.ID <= 0 || res.Added.SubscriptionURL != target || res.Added.Version != "1.0" ||
		res.Added.Name != "pollhook compatibility test" || res.Added.HTTPAuthPassword == nil || *res.Added.HTTPAuthPassword != passwordMask {
		t.Errorf("added %+v", res.Added)
	}
	if len(res.Listed) != 1 || len(res.After) != 0 {
		t.Errorf("listed %d webhooks, %d after the delete; want 1 and 0", len(res.Listed), len(res.After))
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || len(seen[0]) != 1 || len(seen[1]) != 0 {
		t.Fatalf("subscribers after each change: %+v; want the webhook, then none", seen)
	}
	s := seen[0][0]
	if s.ID != res.Added.ID || s.URL != target || !slices.Equal(s.Events, []string{"deal.updated", "deal.edit"}) ||
		s.Format != "pipedrive" || s.BasicAuth == nil || s.BasicAuth.Username != "hook-user" || s.BasicAuth.Password != "hook-password" {
		t.Errorf("subscriber while the webhook existed: %+v", s)
	}
	if subs, _ := e.store.Subscriptions(t.Context()); len(subs) != 0 {
		t.Errorf("store after the delete: %+v", subs)
	}
	if n := len(rc.received()); n != 0 {
		t.Errorf("the subscription URL got %d requests, want none", n)
	}
}
