package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// keapSubscriber is a REST Hooks subscriber: it echoes X-Hook-Secret on
// the handshake and records the event bodies; status is its answer to
// deliveries.
type keapSubscriber struct {
	mu     sync.Mutex
	status int
	bodies chan map[string]any
}

func (k *keapSubscriber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s := r.Header.Get("X-Hook-Secret"); s != "" {
		w.Header().Set("X-Hook-Secret", s)
		w.WriteHeader(http.StatusOK)
		return
	}
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	k.mu.Lock()
	status := k.status
	k.mu.Unlock()
	w.WriteHeader(status)
	if status/100 == 2 {
		k.bodies <- body
	}
}

func (k *keapSubscriber) set(status int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status = status
}

func api(t *testing.T, method, url, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestKeapHookLifecycle subscribes through the daemon's REST Hooks API and
// follows a hook from the handshake to delivery, a 410, Inactive, and a
// re-verification.
func TestKeapHookLifecycle(t *testing.T) {
	up := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	sub := &keapSubscriber{status: http.StatusOK, bodies: make(chan map[string]any, 10)}
	hook := httptest.NewServer(sub)
	defer hook.Close()
	addr := freeAddr(t)
	base := "http://" + addr
	cfg := writeConfig(t, t.TempDir(), srv.URL, fmt.Sprintf(`    schedule: 1s
    event_names: keap
http:
  listen: %s
  token: s3cret-token
  allow_targets: [127.0.0.0/8]
`, addr))
	stop, _ := daemonRun(t, cfg)
	defer stop()
	get(t, base+"/healthz")

	if code, _ := api(t, "GET", base+"/hooks", "wrong", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	code, h := api(t, "POST", base+"/hooks", "s3cret-token", map[string]string{"eventKey": "thing.add", "hookUrl": hook.URL})
	if code/100 != 2 || h["status"] != "Verified" {
		t.Fatalf("POST /hooks: %d %v", code, h)
	}
	key := h["key"].(string)

	next := func() map[string]any {
		t.Helper()
		select {
		case b := <-sub.bodies:
			return b
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery to the subscriber within 15s")
			return nil
		}
	}
	// The subscribers' engine restarts after the change; it receives the
	// events detected once it has registered the hook's destination.
	store, err := cursor.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, "the hook's destination", func() bool {
		_, err := store.Destination(context.Background(), "hook:"+key)
		return err == nil
	})
	up.set("2", "2026-11-02T10:00:00Z")
	b := next()
	keys, _ := b["object_keys"].([]any)
	if b["event_key"] != "thing.add" || b["object_type"] != "thing" || len(keys) != 1 || keys[0].(map[string]any)["id"] != float64(2) {
		t.Fatalf("keap body %v", b)
	}

	// A 410 makes the hook Inactive.
	sub.set(http.StatusGone)
	up.set("3", "2026-11-03T10:00:00Z")
	waitFor(t, "the hook to become Inactive", func() bool {
		_, h := api(t, "GET", base+"/hooks/"+key, "s3cret-token", nil)
		return h["status"] == "Inactive"
	})

	// verify reactivates it, and deliveries resume.
	sub.set(http.StatusOK)
	if code, h := api(t, "POST", base+"/hooks/"+key+"/verify", "s3cret-token", nil); code/100 != 2 || h["status"] != "Verified" {
		t.Fatalf("verify: %d %v", code, h)
	}
	up.set("4", "2026-11-04T10:00:00Z")
	// Pending deliveries (id 3) may come first.
	for !hasKeapID(next(), 4) {
	}
	if code, _ := api(t, "DELETE", base+"/hooks/"+key, "s3cret-token", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
}

// hasKeapID reports whether a keap body names the object id.
func hasKeapID(b map[string]any, id float64) bool {
	keys, _ := b["object_keys"].([]any)
	for _, k := range keys {
		if m, _ := k.(map[string]any); m["id"] == id {
			return true
		}
	}
	return false
}

// TestPipedriveWebhookDelivery subscribes in the Pipedrive dialect with a
// wildcard action and basic auth, and checks the deliveries.
func TestPipedriveWebhookDelivery(t *testing.T) {
	up := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	type delivery struct {
		user, pass string
		body       map[string]any
	}
	got := make(chan delivery, 10)
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		got <- delivery{u, p, body}
	}))
	defer sub.Close()
	addr := freeAddr(t)
	base := "http://" + addr
	cfg := writeConfig(t, t.TempDir(), srv.URL, fmt.Sprintf(`    schedule: 1s
http:
  listen: %s
  token: s3cret-token
  allow_targets: [127.0.0.0/8]
`, addr))
	stop, _ := daemonRun(t, cfg)
	defer stop()
	get(t, base+"/healthz")

	form := "subscription_url=" + sub.URL + "&event_action=*&event_object=thing&http_auth_user=pd&http_auth_password=pw"
	req, _ := http.NewRequest("POST", base+"/v1/webhooks?api_token=s3cret-token", bytes.NewBufferString(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Success bool `json:"success"`
		Data    struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 || !created.Success || created.Data.ID == 0 {
		t.Fatalf("POST /v1/webhooks: %s %+v", resp.Status, created)
	}
	store, err := cursor.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, "the webhook's destination", func() bool {
		ds, err := store.Destinations(context.Background())
		return err == nil && len(ds) > 0
	})

	up.set("2", "2026-11-02T10:00:00Z") // created
	up.set("1", "2026-11-03T10:00:00Z") // updated
	actions := map[string]bool{}
	for len(actions) < 2 {
		select {
		case d := <-got:
			meta, _ := d.body["meta"].(map[string]any)
			if d.user != "pd" || d.pass != "pw" || meta["object"] != "thing" {
				t.Fatalf("delivery: auth %s:%s, body %v", d.user, d.pass, d.body)
			}
			if fmt.Sprint(meta["webhook_id"]) != fmt.Sprint(created.Data.ID) {
				t.Errorf("meta.webhook_id = %v, want %d", meta["webhook_id"], created.Data.ID)
			}
			actions[fmt.Sprint(meta["action"])] = true
		case <-time.After(15 * time.Second):
			t.Fatalf("deliveries so far: %v", actions)
		}
	}
	if !actions["added"] || !actions["updated"] {
		t.Errorf("actions %v, want added and updated through the * wildcard", actions)
	}
}
