package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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
	t.Parallel()
	up := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	sub := &keapSubscriber{status: http.StatusOK, bodies: make(chan map[string]any, 10)}
	hook := httptest.NewServer(sub)
	defer hook.Close()
	base, cfg := hooksDaemon(t, srv.URL, "    event_names: keap\n")

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
	store := openTestState(t, cfg)
	waitFor(t, "the hook's destination", func() bool {
		_, err := store.Destination(context.Background(), "hook:"+key)
		return err == nil
	})
	waitFirstCycle(t, store)
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

	// A change detected while it is Inactive waits for it.
	st, err := store.ResourceState(context.Background(), "things")
	if err != nil {
		t.Fatal(err)
	}
	up.set("5", "2026-11-05T10:00:00Z")
	waitFor(t, "a cycle to detect the change made while the hook is Inactive", func() bool {
		now, err := store.ResourceState(context.Background(), "things")
		return err == nil && now.Completed >= st.Completed+2
	})

	// verify reactivates it, and deliveries resume.
	sub.set(http.StatusOK)
	if code, h := api(t, "POST", base+"/hooks/"+key+"/verify", "s3cret-token", nil); code/100 != 2 || h["status"] != "Verified" {
		t.Fatalf("verify: %d %v", code, h)
	}
	up.set("4", "2026-11-04T10:00:00Z")
	// The delivery pending while the hook was Inactive (id 3) is kept and
	// sent too, and so is the change detected meanwhile (id 5).
	for got3, got4, got5 := false, false, false; !got3 || !got4 || !got5; {
		b := next()
		got3, got4, got5 = got3 || hasKeapID(b, 3), got4 || hasKeapID(b, 4), got5 || hasKeapID(b, 5)
	}
	if code, _ := api(t, "DELETE", base+"/hooks/"+key, "s3cret-token", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d", code)
	}
	// A deleted hook's destination goes, so that it holds back no pruning.
	waitFor(t, "the deleted hook's destination to go", func() bool {
		_, err := store.Destination(context.Background(), "hook:"+key)
		return errors.Is(err, cursor.ErrUnknownDestination)
	})
}

// waitFirstCycle waits for the first complete cycle of resource things,
// which records what exists without events: a change made before it would
// go unnoticed.
func waitFirstCycle(t *testing.T, store cursor.Store) {
	t.Helper()
	waitFor(t, "the first cycle of things", func() bool {
		st, err := store.ResourceState(context.Background(), "things")
		return err == nil && st.Completed > 0
	})
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
// wildcard action and basic auth, and checks the deliveries, previous
// included.
func TestPipedriveWebhookDelivery(t *testing.T) {
	t.Parallel()
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
	base, cfg := hooksDaemon(t, srv.URL, "")

	id := createPipedriveWebhook(t, base, "subscription_url="+sub.URL+"&event_action=*&event_object=thing&http_auth_user=pd&http_auth_password=pw")
	store := openTestState(t, cfg)
	waitFor(t, "the webhook's destination", func() bool {
		ds, err := store.Destinations(context.Background())
		return err == nil && len(ds) > 0
	})
	waitFirstCycle(t, store)

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
			if fmt.Sprint(meta["webhook_id"]) != fmt.Sprint(id) {
				t.Errorf("meta.webhook_id = %v, want %d", meta["webhook_id"], id)
			}
			actions[fmt.Sprint(meta["action"])] = true
			// previous as Pipedrive's own webhooks fill it: the whole
			// object before the change, null for an added one.
			prev, _ := json.Marshal(d.body["previous"])
			cur, _ := json.Marshal(d.body["current"])
			switch meta["action"] {
			case "added":
				if string(prev) != "null" || string(cur) != `{"id":"2","updated":"2026-11-02T10:00:00Z"}` {
					t.Errorf("added: current %s, previous %s; want the record and null", cur, prev)
				}
			case "updated":
				if string(prev) != `{"id":"1","updated":"2026-11-01T10:00:00Z"}` || string(cur) != `{"id":"1","updated":"2026-11-03T10:00:00Z"}` {
					t.Errorf("updated: current %s, previous %s; want the record after and before", cur, prev)
				}
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("deliveries so far: %v", actions)
		}
	}
	if !actions["added"] || !actions["updated"] {
		t.Errorf("actions %v, want added and updated through the * wildcard", actions)
	}
}

// createPipedriveWebhook makes a webhook through the Pipedrive dialect of
// the daemon at base, from a form, and returns its id.
func createPipedriveWebhook(t *testing.T, base, form string) int64 {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/webhooks?api_token=s3cret-token", bytes.NewBufferString(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct {
		Success bool `json:"success"`
		Data    struct {
			ID int64 `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	if resp.StatusCode/100 != 2 || !created.Success || created.Data.ID == 0 {
		t.Fatalf("POST /v1/webhooks: %s %+v", resp.Status, created)
	}
	return created.Data.ID
}

// TestPipedriveWebhookSurvives410 follows Pipedrive's rule: a webhook whose
// receiver answers 410 is retried like after any failure, receives the
// later events, and stays active.
func TestPipedriveWebhookSurvives410(t *testing.T) {
	t.Parallel()
	up := &tinyAPI{items: map[string]string{"1": "2026-11-01T10:00:00Z"}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	var mu sync.Mutex
	requests := 0
	got := make(chan string, 10) // meta.id of the deliveries answered 200
	sub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Meta struct {
				ID any `json:"id"`
			} `json:"meta"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		requests++
		first := requests == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusGone)
			return
		}
		got <- fmt.Sprint(body.Meta.ID)
	}))
	defer sub.Close()
	base, cfg := hooksDaemon(t, srv.URL, "")

	id := createPipedriveWebhook(t, base, "subscription_url="+sub.URL+"&event_action=*&event_object=thing")
	store := openTestState(t, cfg)
	waitFor(t, "the webhook's destination", func() bool {
		ds, err := store.Destinations(context.Background())
		return err == nil && len(ds) > 0
	})
	waitFirstCycle(t, store)

	up.set("2", "2026-11-02T10:00:00Z")
	waitFor(t, "the first delivery, answered 410", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return requests > 0
	})
	up.set("3", "2026-11-03T10:00:00Z")
	received := map[string]bool{}
	for !received["2"] || !received["3"] {
		select {
		case id := <-got:
			received[id] = true
		case <-time.After(15 * time.Second):
			t.Fatalf("received %v after a 410, want the later event 3 and the retried event 2", received)
		}
	}
	req, _ := http.NewRequest("GET", base+"/v1/webhooks?api_token=s3cret-token", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID       int64 `json:"id"`
			IsActive int   `json:"is_active"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	if len(list.Data) != 1 || list.Data[0].ID != id || list.Data[0].IsActive != 1 {
		t.Errorf("GET /v1/webhooks = %+v, want webhook %d still active", list.Data, id)
	}
}

// TestRunDropsDestinationsNoLongerConfigured starts the daemon on a store
// that knows a destination its config no longer has: the destination and
// its pending deliveries are dropped, and said so.
func TestRunDropsDestinationsNoLongerConfigured(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := &tinyAPI{items: map[string]string{}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, srv.URL, `    schedule: 1h
destinations:
  - name: kept
    url: stdout
`)
	store, err := cursor.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, name := range []string{"removed", "kept"} {
		if _, err := store.EnsureDestination(ctx, name, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	evs := []cursor.Event{
		{ID: "evt_1", Type: "thing.created", Resource: "things", ObjectID: "1", DetectedAt: now, Data: []byte(`{}`)},
		{ID: "evt_2", Type: "thing.created", Resource: "things", ObjectID: "2", DetectedAt: now, Data: []byte(`{}`)},
	}
	// As a poll of things would, under its lease, given back after.
	lease := []string{cursor.ResourceLease("things")}
	held, err := store.AcquireLeases(ctx, "test", lease, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CommitPage(ctx, cursor.Page{Resource: "things", Cycle: 1, Lease: held[0], Events: evs}); err != nil {
		t.Fatal(err)
	}
	if err := store.ReleaseLeases(ctx, "test", lease); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Fanout(ctx, "removed", nil, now); err != nil {
		t.Fatal(err)
	}

	stop, logs := daemonRun(t, cfg)
	defer stop()
	waitFor(t, "the removed destination to go", func() bool {
		_, err := store.Destination(ctx, "removed")
		return errors.Is(err, cursor.ErrUnknownDestination)
	})
	waitFor(t, "the log line", func() bool {
		return strings.Contains(logs(), "destination removed is no longer in the config: its 2 pending deliveries are dropped")
	})
	if _, err := store.Destination(ctx, "kept"); err != nil {
		t.Errorf("the configured destination: %v, want it kept", err)
	}
	if strings.Contains(logs(), "destination kept is no longer") {
		t.Errorf("the configured destination was said to be dropped:\n%s", logs())
	}
}

// hooksDaemon runs "pollhook run" polling upstream, with the REST Hooks API
// on (token s3cret-token, loopback subscribers allowed) and extra resource
// keys; it returns the API's base URL and the config file.
func hooksDaemon(t *testing.T, upstream, extra string) (base, cfg string) {
	t.Helper()
	addr := freeAddr(t)
	cfg = writeConfig(t, t.TempDir(), upstream, fmt.Sprintf(`    schedule: 1s
%shttp:
  listen: %s
  token: s3cret-token
  allow_targets: [127.0.0.0/8]
`, extra, addr))
	stop, _ := daemonRun(t, cfg)
	t.Cleanup(func() { stop() })
	base = "http://" + addr
	get(t, base+"/healthz")
	return base, cfg
}

// openTestState opens the state file of the config at cfg, beside the daemon.
func openTestState(t *testing.T, cfg string) cursor.Store {
	t.Helper()
	store, err := cursor.Open(context.Background(), filepath.Join(filepath.Dir(cfg), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}
