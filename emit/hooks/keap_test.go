package hooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

func TestKeapEventKeys(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EventKeys = []string{"deal.edit", "contact.created", "deal.edit"} })
	r := e.do(t, "GET", "/hooks/event_keys", "")
	var keys []string
	r.json(t, &keys)
	if r.status != http.StatusOK || !reflect.DeepEqual(keys, []string{"contact.created", "deal.edit"}) {
		t.Errorf("GET /hooks/event_keys = %d %v, want the configured keys, sorted, once each", r.status, keys)
	}
}

func TestKeapLifecycle(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusOK, echoSecret)

	h := e.createHook(t, "contact.created", rc.URL+"/hook")
	if h.Key == "" || h.EventKey != "contact.created" || h.HookURL != rc.URL+"/hook" || h.Status != "Verified" {
		t.Fatalf("created hook %+v, want a key and status Verified", h)
	}
	secrets := rc.received()
	if len(secrets) != 1 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secrets[0]) {
		t.Fatalf("handshake secrets received: %q, want one of 64 hex digits", secrets)
	}
	if got := e.getHook(t, h.Key); got != h {
		t.Errorf("GET /hooks/{key} = %+v, want %+v", got, h)
	}
	var list []KeapHook
	e.do(t, "GET", "/hooks", "").json(t, &list)
	if !reflect.DeepEqual(list, []KeapHook{h}) {
		t.Errorf("GET /hooks = %+v, want [%+v]", list, h)
	}

	sub, ok := e.subscribers(t)["hook:"+h.Key]
	if !ok {
		t.Fatalf("verified hook is not a subscriber")
	}
	want := Subscriber{
		Name: "hook:" + h.Key, Key: h.Key, ID: sub.ID, URL: h.HookURL, Events: []string{"contact.created"},
		Format: config.FormatKeap, RetrySchedule: []time.Duration{45 * time.Second, 5 * time.Minute, 30 * time.Minute},
		Timeout: 30 * time.Second, MaxEvents: 1000, WebhookID: fmt.Sprint(sub.ID),
	}
	if !reflect.DeepEqual(sub, want) {
		t.Errorf("subscriber\n got %+v\nwant %+v", sub, want)
	}
	if e.changes.Load() == 0 {
		t.Error("OnChange was not called")
	}

	// The engine deactivates it (410 Gone): Inactive, not a subscriber.
	before := e.changes.Load()
	if err := e.api.Deactivate(t.Context(), "hook:"+h.Key, "answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if got := e.getHook(t, h.Key); got.Status != "Inactive" {
		t.Errorf("after Deactivate: status %s, want Inactive", got.Status)
	}
	if _, ok := e.subscribers(t)["hook:"+h.Key]; ok {
		t.Error("inactive hook is still a subscriber")
	}
	if e.changes.Load() == before {
		t.Error("Deactivate did not call OnChange")
	}
	// The secret of the first handshake cannot reactivate it.
	r := e.do(t, "POST", "/hooks/"+h.Key+"/delayedVerify", "", HeaderHookSecret, secrets[0])
	if r.status != http.StatusBadRequest || !strings.Contains(r.message(t), "verify first") {
		t.Errorf("delayedVerify of an inactive hook: %d %s, want 400 asking for verify first", r.status, r.body)
	}

	// verify runs a new handshake and reactivates it.
	r = e.do(t, "POST", "/hooks/"+h.Key+"/verify", "")
	var v KeapHook
	r.json(t, &v)
	if r.status != http.StatusOK || v.Status != "Verified" {
		t.Errorf("verify: %d %+v, want 200 Verified", r.status, v)
	}
	if s := rc.received(); len(s) != 2 || s[1] == s[0] {
		t.Errorf("handshakes %q: want a second one with a new secret", s)
	}
	if _, ok := e.subscribers(t)["hook:"+h.Key]; !ok {
		t.Error("reactivated hook is not a subscriber")
	}

	// Deactivating twice changes nothing.
	e.api.Deactivate(t.Context(), "hook:"+h.Key, "first")
	e.api.Deactivate(t.Context(), "hook:"+h.Key, "second")
	sub2, _ := e.store.Subscription(t.Context(), h.Key)
	if sub2.InactiveReason != "first" {
		t.Errorf("inactive reason %q after two deactivations, want the first", sub2.InactiveReason)
	}
}

func TestKeapHandshake(t *testing.T) {
	tests := []struct {
		name   string
		status int
		echo   func(string) string
		want   string
	}{
		{"echoes with 200", http.StatusOK, echoSecret, "Verified"},
		{"no echo", http.StatusOK, nil, "Unverified"},
		{"wrong echo", http.StatusOK, func(s string) string { return s[:10] }, "Unverified"},
		{"echo with 202", http.StatusAccepted, echoSecret, "Unverified"},
		{"echo with 500", http.StatusInternalServerError, echoSecret, "Unverified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rc := newReceiver(t, tt.status, tt.echo)
			h := e.createHook(t, "deal.add", rc.URL)
			if h.Status != tt.want {
				t.Errorf("status %s, want %s", h.Status, tt.want)
			}
			_, subscribed := e.subscribers(t)["hook:"+h.Key]
			if subscribed != (tt.want == "Verified") {
				t.Errorf("in Subscribers: %v, want %v", subscribed, tt.want == "Verified")
			}
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		e := newEnv(t)
		rc := newReceiver(t, http.StatusOK, echoSecret)
		url := rc.URL
		rc.Close()
		if h := e.createHook(t, "deal.add", url); h.Status != "Unverified" {
			t.Errorf("status %s, want Unverified", h.Status)
		}
	})
}

func TestKeapDelayedVerify(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusOK, nil) // takes the secret, echoes nothing
	h := e.createHook(t, "contact.updated", rc.URL)
	if h.Status != "Unverified" {
		t.Fatalf("status %s, want Unverified", h.Status)
	}
	secret := rc.received()[0]

	path := "/hooks/" + h.Key + "/delayedVerify"
	for _, tc := range []struct {
		name   string
		header []string
		status int
		msg    string
	}{
		{"no header", nil, http.StatusBadRequest, "X-Hook-Secret header required"},
		{"wrong secret", []string{HeaderHookSecret, strings.Repeat("0", 64)}, http.StatusBadRequest, "does not match"},
	} {
		r := e.do(t, "POST", path, "", tc.header...)
		if r.status != tc.status || !strings.Contains(r.message(t), tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.body, tc.status, tc.msg)
		}
	}
	if _, ok := e.subscribers(t)["hook:"+h.Key]; ok {
		t.Fatal("an unverified hook is a subscriber")
	}

	r := e.do(t, "POST", path, "", HeaderHookSecret, secret)
	var v KeapHook
	r.json(t, &v)
	if r.status != http.StatusOK || v.Status != "Verified" {
		t.Fatalf("delayedVerify with the secret: %d %s, want 200 Verified", r.status, r.body)
	}
	if _, ok := e.subscribers(t)["hook:"+h.Key]; !ok {
		t.Error("hook verified through delayedVerify is not a subscriber")
	}
	// Sending it again is harmless.
	if r := e.do(t, "POST", path, "", HeaderHookSecret, secret); r.status != http.StatusOK {
		t.Errorf("second delayedVerify: %d %s", r.status, r.body)
	}
}

func TestKeapUpdate(t *testing.T) {
	e := newEnv(t)
	good := newReceiver(t, http.StatusOK, echoSecret)
	mute := newReceiver(t, http.StatusOK, nil)
	h := e.createHook(t, "contact.created", good.URL)

	// Another event key, same URL: no new handshake, still Verified.
	r := e.do(t, "PUT", "/hooks/"+h.Key, fmt.Sprintf(`{"eventKey":"contact.deleted","hookUrl":%q}`, good.URL))
	var v KeapHook
	r.json(t, &v)
	if r.status != http.StatusOK || v.EventKey != "contact.deleted" || v.Status != "Verified" {
		t.Errorf("PUT eventKey: %d %s", r.status, r.body)
	}
	if n := len(good.received()); n != 1 {
		t.Errorf("handshakes after changing the event key: %d, want 1", n)
	}
	if s := e.subscribers(t)["hook:"+h.Key]; !slices.Equal(s.Events, []string{"contact.deleted"}) {
		t.Errorf("subscriber events %v, want [contact.deleted]", s.Events)
	}

	// Another URL: verified again there, Unverified when it does not echo.
	r = e.do(t, "PUT", "/hooks/"+h.Key, fmt.Sprintf(`{"eventKey":"contact.deleted","hookUrl":%q}`, mute.URL))
	r.json(t, &v)
	if r.status != http.StatusOK || v.HookURL != mute.URL || v.Status != "Unverified" {
		t.Errorf("PUT hookUrl: %d %s, want the new URL, Unverified", r.status, r.body)
	}
	if n := len(mute.received()); n != 1 {
		t.Errorf("handshakes sent to the new URL: %d, want 1", n)
	}
	if _, ok := e.subscribers(t)["hook:"+h.Key]; ok {
		t.Error("hook moved to an unverified URL is still a subscriber")
	}

	for _, tc := range []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"unknown key", "/hooks/nope", `{"eventKey":"contact.created","hookUrl":"` + good.URL + `"}`, 404, `no hook with key "nope"`},
		{"unknown event key", "/hooks/" + h.Key, `{"eventKey":"contact.add","hookUrl":"` + good.URL + `"}`, 400,
			`unknown eventKey "contact.add": want one of contact.created, contact.deleted, contact.updated, deal.add`},
		{"no hookUrl", "/hooks/" + h.Key, `{"eventKey":"contact.created"}`, 400, "hookUrl required"},
	} {
		r := e.do(t, "PUT", tc.path, tc.body)
		if r.status != tc.status || !strings.Contains(r.message(t), tc.msg) {
			t.Errorf("%s: %d %s, want %d %q", tc.name, r.status, r.body, tc.status, tc.msg)
		}
	}
}

// TestKeapHookURLHidden: a hookUrl's user information and query values
// are credentials more often than not; the API shows them to no one, but
// deliveries still go to the URL as registered, and a hook read back and
// written again keeps it.
func TestKeapHookURLHidden(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusOK, echoSecret)
	u, err := url.Parse(rc.URL)
	if err != nil {
		t.Fatal(err)
	}
	registered := "http://zap:s3cret@" + u.Host + "/hook?token=abc123&tenant=acme"
	shown := "http://" + u.Host + "/hook?token=REDACTED&tenant=REDACTED"

	h := e.createHook(t, "contact.created", registered)
	if h.HookURL != shown || h.Status != "Verified" {
		t.Fatalf("POST /hooks answered %+v, want hookUrl %s, Verified", h, shown)
	}
	var list []KeapHook
	r := e.do(t, "GET", "/hooks", "")
	r.json(t, &list)
	if got := e.getHook(t, h.Key); got.HookURL != shown || len(list) != 1 || list[0].HookURL != shown {
		t.Errorf("GET /hooks/{key} %+v, GET /hooks %s: want hookUrl %s", got, r.body, shown)
	}
	for _, secret := range []string{"s3cret", "abc123", "acme"} {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("GET /hooks shows %q: %s", secret, r.body)
		}
	}
	if s := e.subscribers(t)["hook:"+h.Key]; s.URL != registered {
		t.Errorf("subscriber URL %q, want the registered %q", s.URL, registered)
	}

	// PUT back what GET showed: the same URL, no new handshake.
	r = e.do(t, "PUT", "/hooks/"+h.Key, fmt.Sprintf(`{"eventKey":"contact.updated","hookUrl":%q}`, shown))
	var v KeapHook
	r.json(t, &v)
	if r.status != http.StatusOK || v.Status != "Verified" || v.HookURL != shown {
		t.Errorf("PUT with the hookUrl as shown: %d %s, want it kept, Verified", r.status, r.body)
	}
	if n := len(rc.received()); n != 1 {
		t.Errorf("handshakes: %d, want 1 (the URL did not change)", n)
	}
	if s := e.subscribers(t)["hook:"+h.Key]; s.URL != registered {
		t.Errorf("after PUT: subscriber URL %q, want the registered %q", s.URL, registered)
	}
}

func TestKeapDelete(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusOK, echoSecret)
	h := e.createHook(t, "contact.created", rc.URL)
	if r := e.do(t, "DELETE", "/hooks/"+h.Key, ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Errorf("DELETE: %d %q, want 204 and no body", r.status, r.body)
	}
	if r := e.do(t, "GET", "/hooks/"+h.Key, ""); r.status != http.StatusNotFound {
		t.Errorf("GET after DELETE: %d", r.status)
	}
	if r := e.do(t, "DELETE", "/hooks/"+h.Key, ""); r.status != http.StatusNotFound {
		t.Errorf("second DELETE: %d", r.status)
	}
	if len(e.subscribers(t)) != 0 {
		t.Error("deleted hook is still a subscriber")
	}
	if err := e.api.Deactivate(t.Context(), "hook:"+h.Key, "x"); !errors.Is(err, cursor.ErrSubscriptionNotFound) {
		t.Errorf("Deactivate of a deleted hook: %v", err)
	}
}

func TestKeapRequestErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"bad json", "POST", "/hooks", `{"eventKey":`, 400, `request body: want JSON {"eventKey": "…", "hookUrl": "https://…"}`},
		{"trailing garbage", "POST", "/hooks", `{"eventKey":"deal.add","hookUrl":"https://example.com/"} {"eventKey":"deal.delete"}`, 400,
			"data after the JSON value at byte 56"},
		{"trailing text", "POST", "/hooks", `{"eventKey":"deal.add","hookUrl":"https://example.com/"}x`, 400, "data after the JSON value"},
		{"empty body", "POST", "/hooks", ``, 400, "empty request body"},
		{"missing fields", "POST", "/hooks", `{}`, 400, "eventKey and hookUrl required"},
		{"unknown event key", "POST", "/hooks", `{"eventKey":"order.add","hookUrl":"https://example.com/"}`, 400,
			`unknown eventKey "order.add": want one of contact.created, contact.deleted, contact.updated, deal.add, deal.delete, deal.edit (GET /hooks/event_keys)`},
		{"not http", "POST", "/hooks", `{"eventKey":"deal.add","hookUrl":"ftp://example.com/"}`, 400,
			`hookUrl: check url: want an http or https URL (got scheme "ftp")`},
		{"unresolvable", "POST", "/hooks", `{"eventKey":"deal.add","hookUrl":"https://nowhere.invalid/"}`, 400,
			"resolve host nowhere.invalid"},
		{"too large", "POST", "/hooks", `{"eventKey":"` + strings.Repeat("x", MaxRequestBytes) + `"}`, 413, "larger than"},
		{"method", "PATCH", "/hooks", ``, 405, "want GET or POST"},
		{"method on key", "POST", "/hooks/abc", ``, 405, "want GET or PUT or DELETE"},
		{"unknown route", "GET", "/hooks/abc/def", ``, 404, "no such route"},
		{"unknown key", "GET", "/hooks/abc", ``, 404, `no hook with key "abc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(r.message(t), tc.msg) {
				t.Errorf("%d %s, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
			if r.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", r.header.Get("Content-Type"))
			}
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if n := e.changes.Load(); n != 0 {
		t.Errorf("refused requests called OnChange %d times", n)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		path   string
		header []string
		status int
	}{
		{"no token", "/hooks", []string{"Authorization", ""}, 401},
		{"wrong bearer", "/hooks", []string{"Authorization", "Bearer nope"}, 401},
		{"bearer, other case", "/hooks", []string{"Authorization", "bearer " + testToken}, 200},
		{"basic is not bearer", "/hooks", []string{"Authorization", "Basic " + testToken}, 401},
		{"keap api key", "/hooks", []string{"Authorization", "", "X-Keap-API-Key", testToken}, 200},
		{"pipedrive header on keap", "/hooks", []string{"Authorization", "", "x-api-token", testToken}, 401},
		{"pipedrive bearer", "/v1/webhooks", nil, 200},
		{"pipedrive x-api-token", "/v1/webhooks", []string{"Authorization", "", "x-api-token", testToken}, 200},
		{"pipedrive api_token", "/v1/webhooks?api_token=" + testToken, []string{"Authorization", ""}, 200},
		{"pipedrive wrong api_token", "/v1/webhooks?api_token=nope", []string{"Authorization", ""}, 401},
		{"pipedrive none", "/v1/webhooks", []string{"Authorization", ""}, 401},
		{"api_token on keap", "/hooks?api_token=" + testToken, []string{"Authorization", ""}, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "GET", tc.path, "", tc.header...)
			if r.status != tc.status {
				t.Errorf("%d %s, want %d", r.status, r.body, tc.status)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="pollhook"` {
				t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestDisabledWithoutToken(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Token = "" })
	for _, path := range []string{"/hooks", "/hooks/event_keys", "/hooks/x/verify", "/v1/webhooks"} {
		for _, tok := range []string{"", "Bearer "} {
			r := e.do(t, "GET", path, "", "Authorization", tok)
			if r.status != http.StatusNotFound || !strings.Contains(r.message(t), "REST Hooks API is disabled: set http.token") {
				t.Errorf("GET %s (Authorization %q): %d %s, want 404 saying it is disabled", path, tok, r.status, r.body)
			}
		}
	}
}

func TestSubscriptionsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	rc := newReceiver(t, http.StatusOK, echoSecret)
	opts := Options{Token: testToken, EventKeys: testKeys, AllowTargets: []netip.Prefix{loopbackNet}}

	store, err := cursor.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := NewAPI(store, opts)
	srv := httptest.NewServer(api.Handler())
	e := &env{api: api, store: store, srv: srv}
	h := e.createHook(t, "deal.edit", rc.URL)
	srv.Close()
	store.Close()

	store, err = cursor.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	api, _ = NewAPI(store, opts)
	subs, err := api.Subscribers(ctx)
	if err != nil || len(subs) != 1 || subs[0].Key != h.Key || subs[0].URL != rc.URL {
		t.Errorf("after restart: %+v, %v; want hook %s", subs, err, h.Key)
	}
}

func TestNewAPIErrors(t *testing.T) {
	s, err := cursor.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"contact", "contact.", ".add", "contact.*", "a.b.c"} {
		if _, err := NewAPI(s, Options{EventKeys: []string{k}}); err == nil || !strings.Contains(err.Error(), "want noun.verb") {
			t.Errorf("event key %q: error %v", k, err)
		}
	}
	if _, err := NewAPI(nil, Options{}); err == nil {
		t.Error("no store: no error")
	}
}
