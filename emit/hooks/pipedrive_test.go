package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
)

// pdResponse is Pipedrive's envelope.
type pdResponse[T any] struct {
	Success   bool   `json:"success"`
	Status    string `json:"status"`
	Data      T      `json:"data"`
	Error     string `json:"error"`
	ErrorCode int    `json:"errorCode"`
}

func (e *env) createWebhook(t *testing.T, form url.Values) PipedriveWebhook {
	t.Helper()
	r := e.do(t, "POST", "/v1/webhooks", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusCreated {
		t.Fatalf("POST /v1/webhooks %v: %d %s", form, r.status, r.body)
	}
	var resp pdResponse[PipedriveWebhook]
	r.json(t, &resp)
	return resp.Data
}

func (e *env) listWebhooks(t *testing.T) []PipedriveWebhook {
	t.Helper()
	r := e.do(t, "GET", "/v1/webhooks", "")
	var resp pdResponse[[]PipedriveWebhook]
	r.json(t, &resp)
	if r.status != http.StatusOK || !resp.Success {
		t.Fatalf("GET /v1/webhooks: %d %s", r.status, r.body)
	}
	return resp.Data
}

func TestPipedriveCreateForm(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, http.StatusOK, nil)
	r := e.do(t, "POST", "/v1/webhooks", url.Values{
		"subscription_url": {rc.URL + "/pd"}, "event_action": {"updated"}, "event_object": {"deal"},
		"http_auth_user": {"hook"}, "http_auth_password": {"s3cret"}, "name": {"deals"}, "user_id": {"42"},
	}.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.status != http.StatusCreated {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	var resp map[string]any
	r.json(t, &resp)
	data, _ := resp["data"].(map[string]any)
	user, mask := "hook", "********"
	want := map[string]any{
		"id": data["id"], "company_id": 0.0, "owner_id": 0.0, "user_id": 42.0, "event_action": "updated",
		"event_object": "deal", "subscription_url": rc.URL + "/pd", "is_active": 1.0, "add_time": "2026-11-22 10:00:00",
		"remove_time": nil, "type": "general", "http_auth_user": user, "http_auth_password": mask,
		"remove_reason": nil, "last_delivery_time": nil, "last_http_status": nil, "admin_id": 0.0,
		"version": "1.0", "name": "deals",
	}
	if resp["success"] != true || resp["status"] != "ok" || !reflect.DeepEqual(data, want) {
		t.Errorf("response\n got %v\nwant success, ok and data %v", resp, want)
	}
	if id, ok := data["id"].(float64); !ok || id < 1 || id != float64(int64(id)) {
		t.Errorf("id %v, want a positive integer", data["id"])
	}
	if strings.Contains(string(r.body), "s3cret") {
		t.Error("the response holds the http_auth_password")
	}
	if n := len(rc.received()); n != 0 {
		t.Errorf("a Pipedrive webhook got %d handshake requests, want none", n)
	}

	subs := e.subscribers(t)
	if len(subs) != 1 {
		t.Fatalf("subscribers: %v", subs)
	}
	for _, s := range subs {
		want := Subscriber{
			Name: s.Name, Key: s.Key, ID: int64(data["id"].(float64)), URL: rc.URL + "/pd",
			Events: []string{"deal.updated", "deal.edit"}, Format: emit.FormatPipedrive,
			BasicAuth:     &config.BasicAuth{Username: "hook", Password: "s3cret"},
			RetrySchedule: []time.Duration{3 * time.Second, 30 * time.Second, 150 * time.Second},
			Timeout:       10 * time.Second, MaxEvents: 1, WebhookID: fmt.Sprint(data["id"]),
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("subscriber\n got %+v\nwant %+v", s, want)
		}
		d := s.Destination()
		if d.Name != s.Name || d.Format != "pipedrive" || d.BasicAuth.Username != "hook" || len(d.Retry.Schedule) != 3 ||
			d.Retry.Schedule[2].D() != 150*time.Second || d.Timeout.D() != 10*time.Second || d.Batch.MaxEvents != 1 {
			t.Errorf("destination %+v", d)
		}
	}
}

func TestPipedriveCreateJSON(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/v1/webhooks",
		`{"subscription_url":"http://127.0.0.1:9/x","event_action":"*","event_object":"contact","user_id":7,"http_auth_user":null,"version":"1.0"}`)
	var resp pdResponse[PipedriveWebhook]
	r.json(t, &resp)
	wh := resp.Data
	if r.status != http.StatusCreated || wh.EventAction != "*" || wh.EventObject != "contact" || wh.UserID != 7 ||
		wh.HTTPAuthUser != nil || wh.HTTPAuthPassword != nil || wh.IsActive != 1 {
		t.Errorf("POST JSON: %d %s", r.status, r.body)
	}
}

// TestPipedriveURLHidden: the subscription_url's user information and
// query values are shown to no one; deliveries go to it as registered.
func TestPipedriveURLHidden(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/v1/webhooks",
		`{"subscription_url":"http://u:pw@127.0.0.1:9/x?api_token=t0k","event_action":"*","event_object":"contact"}`)
	var resp pdResponse[PipedriveWebhook]
	r.json(t, &resp)
	const shown = "http://127.0.0.1:9/x?api_token=REDACTED"
	if r.status != http.StatusCreated || resp.Data.SubscriptionURL != shown {
		t.Errorf("POST: %d %s, want subscription_url %s", r.status, r.body, shown)
	}
	list := e.listWebhooks(t)
	if len(list) != 1 || list[0].SubscriptionURL != shown {
		t.Errorf("GET /v1/webhooks: %+v, want subscription_url %s", list, shown)
	}
	for _, s := range e.subscribers(t) {
		if s.URL != "http://u:pw@127.0.0.1:9/x?api_token=t0k" {
			t.Errorf("subscriber URL %q, want the registered one", s.URL)
		}
	}
}

func TestPipedriveGlobs(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		action, object string
		want           []string
	}{
		{"added", "deal", []string{"deal.created", "deal.add"}},
		{"updated", "contact", []string{"contact.updated", "contact.edit"}},
		{"deleted", "*", []string{"*.deleted", "*.delete"}},
		{"*", "deal", []string{"deal.*"}},
		{"*", "*", []string{"*.*"}},
		{"change", "deal", []string{"deal.updated", "deal.edit"}},
		{"create", "contact", []string{"contact.created", "contact.add"}},
		{"delete", "deal", []string{"deal.deleted", "deal.delete"}},
	}
	ids := map[int64][]string{}
	for _, tt := range tests {
		wh := e.createWebhook(t, url.Values{"subscription_url": {"http://127.0.0.1:9/"}, "event_action": {tt.action}, "event_object": {tt.object}})
		ids[wh.ID] = tt.want
	}
	subs, err := e.api.Subscribers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != len(tests) {
		t.Fatalf("%d subscribers, want %d", len(subs), len(tests))
	}
	for _, s := range subs {
		if !slices.Equal(s.Events, ids[s.ID]) {
			t.Errorf("webhook %d: events %v, want %v", s.ID, s.Events, ids[s.ID])
		}
	}
	// What the globs match, as a user sees it.
	for _, tc := range []struct {
		events []string
		typ    string
		want   bool
	}{
		{ids[subs[0].ID], "deal.add", true},
		{ids[subs[0].ID], "deal.created", true},
		{ids[subs[0].ID], "deal.updated", false},
		{ids[subs[2].ID], "contact.delete", true},
		{ids[subs[2].ID], "deal.deleted", true},
		{ids[subs[2].ID], "deal.created", false},
	} {
		got := slices.ContainsFunc(tc.events, func(g string) bool { return config.MatchEvent(g, tc.typ) })
		if got != tc.want {
			t.Errorf("%v matches %s: %v, want %v", tc.events, tc.typ, got, tc.want)
		}
	}
}

func TestPipedriveListDelete(t *testing.T) {
	e := newEnv(t)
	a := e.createWebhook(t, url.Values{"subscription_url": {"http://127.0.0.1:9/a"}, "event_action": {"added"}, "event_object": {"deal"}})
	b := e.createWebhook(t, url.Values{"subscription_url": {"http://127.0.0.1:9/b"}, "event_action": {"*"}, "event_object": {"*"}})
	list := e.listWebhooks(t)
	if len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID || list[1].SubscriptionURL != "http://127.0.0.1:9/b" {
		t.Fatalf("list %+v", list)
	}

	r := e.do(t, "DELETE", fmt.Sprintf("/v1/webhooks/%d", a.ID), "")
	var resp pdResponse[map[string]int64]
	r.json(t, &resp)
	if r.status != http.StatusOK || !resp.Success || resp.Data["id"] != a.ID {
		t.Errorf("DELETE: %d %s", r.status, r.body)
	}
	if list := e.listWebhooks(t); len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("list after delete: %+v", list)
	}
	if _, ok := e.subscribers(t)[NamePrefix]; ok || len(e.subscribers(t)) != 1 {
		t.Errorf("subscribers after delete: %v", e.subscribers(t))
	}

	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"DELETE", fmt.Sprintf("/v1/webhooks/%d", a.ID), 404, fmt.Sprintf("webhook %d not found", a.ID)},
		{"DELETE", "/v1/webhooks/abc", 400, `webhook id "abc": want a positive integer`},
		{"GET", fmt.Sprintf("/v1/webhooks/%d", b.ID), 405, "want DELETE"},
		{"PUT", "/v1/webhooks", 405, "want GET or POST"},
		{"GET", "/v1/webhooks/1/x", 404, "no such route"},
	} {
		r := e.do(t, tc.method, tc.path, "")
		var fail pdResponse[any]
		r.json(t, &fail)
		if r.status != tc.status || fail.Success || fail.ErrorCode != tc.status || !strings.Contains(fail.Error, tc.msg) {
			t.Errorf("%s %s: %d %s, want %d %q", tc.method, tc.path, r.status, r.body, tc.status, tc.msg)
		}
	}
}

func TestPipedriveCreateErrors(t *testing.T) {
	e := newEnv(t)
	form := func(kv ...string) string {
		v := url.Values{"subscription_url": {"http://127.0.0.1:9/"}, "event_action": {"updated"}, "event_object": {"deal"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v.Encode()
	}
	formType := []string{"Content-Type", "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		name, body string
		header     []string
		status     int
		msg        string
	}{
		{"missing", form("subscription_url", "", "event_object", ""), formType, 400, "subscription_url, event_object required"},
		{"merged", form("event_action", "merged"), formType, 400, "pollhook detects no merges"},
		{"bad action", form("event_action", "moved"), formType, 400, `event_action "moved": want added, updated, deleted or *`},
		{"unknown object", form("event_object", "person"), formType, 400, `event_object "person": no configured resource has that object; want one of contact, deal or *`},
		{"version 2", form("version", "2.0"), formType, 400, "pollhook sends webhooks v1 payloads only"},
		{"user id", form("user_id", "me"), formType, 400, `user_id: want an integer (got "me")`},
		{"private url", form("subscription_url", "http://10.1.2.3/hook"), formType, 400,
			`subscription_url: check url: 10.1.2.3 is a private address (RFC 1918, RFC 4193): pollhook sends to such addresses only when http.allow_targets holds them (for example "10.1.2.3/32")`},
		{"bad json", `{"event_action":`, nil, 400, "request body: want JSON or a form"},
		{"trailing garbage", `{"subscription_url":"http://127.0.0.1:9/","event_action":"*","event_object":"*"}]`, nil, 400,
			"data after the JSON value at byte 80"},
		{"json not string", `{"subscription_url":["x"],"event_action":"*","event_object":"*"}`, nil, 400, "subscription_url: want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/webhooks", tc.body, tc.header...)
			var fail pdResponse[any]
			r.json(t, &fail)
			if r.status != tc.status || fail.Success || fail.ErrorCode != tc.status || !strings.Contains(fail.Error, tc.msg) {
				t.Errorf("%d %s, want %d %q", r.status, r.body, tc.status, tc.msg)
			}
		})
	}
	if list := e.listWebhooks(t); len(list) != 0 {
		t.Errorf("refused requests made webhooks: %+v", list)
	}
}

func TestViewsAcrossDialects(t *testing.T) {
	e := newEnv(t)
	good := newReceiver(t, http.StatusOK, echoSecret)
	mute := newReceiver(t, http.StatusOK, nil)
	e.createHook(t, "contact.created", good.URL)
	unverified := e.createHook(t, "deal.delete", mute.URL)
	e.createWebhook(t, url.Values{"subscription_url": {good.URL + "/pd"}, "event_action": {"updated"}, "event_object": {"deal"}})
	wild := e.createWebhook(t, url.Values{"subscription_url": {good.URL + "/all"}, "event_action": {"*"}, "event_object": {"deal"}})

	// Keap hooks in Pipedrive's view.
	list := e.listWebhooks(t)
	if len(list) != 4 {
		t.Fatalf("GET /v1/webhooks lists %d, want 4", len(list))
	}
	got := [][3]any{}
	for _, wh := range list[:2] {
		got = append(got, [3]any{wh.EventAction + "." + wh.EventObject, wh.SubscriptionURL, wh.IsActive})
	}
	want := [][3]any{{"added.contact", good.URL, 1}, {"deleted.deal", mute.URL, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Keap hooks as webhooks: %v, want %v", got, want)
	}

	// Pipedrive webhooks in Keap's view: updated + deal is deal.edit (the
	// configured naming); the wildcard one has no single key.
	var hooks []KeapHook
	e.do(t, "GET", "/hooks", "").json(t, &hooks)
	if len(hooks) != 3 || hooks[2].EventKey != "deal.edit" || hooks[2].HookURL != good.URL+"/pd" || hooks[2].Status != "Verified" {
		t.Errorf("GET /hooks = %+v, want the 2 hooks and the deal.edit webhook", hooks)
	}
	wildKey := ""
	for _, s := range e.subscribers(t) {
		if s.ID == wild.ID {
			wildKey = s.Key
		}
	}
	if r := e.do(t, "GET", "/hooks/"+wildKey, ""); r.status != http.StatusNotFound || !strings.Contains(r.message(t), "wildcard") {
		t.Errorf("GET /hooks/{wildcard webhook}: %d %s", r.status, r.body)
	}
	editKey := hooks[2].Key
	if r := e.do(t, "PUT", "/hooks/"+editKey, `{"eventKey":"deal.add","hookUrl":"`+good.URL+`"}`); r.status != http.StatusBadRequest ||
		!strings.Contains(r.message(t), "delete it and create it again") {
		t.Errorf("PUT on a Pipedrive webhook: %d %s", r.status, r.body)
	}

	// Either view deletes what the other made.
	if r := e.do(t, "DELETE", fmt.Sprintf("/v1/webhooks/%d", list[1].ID), ""); r.status != http.StatusOK {
		t.Errorf("DELETE /v1/webhooks/{keap hook}: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/hooks/"+unverified.Key, ""); r.status != http.StatusNotFound {
		t.Errorf("keap hook deleted through /v1/webhooks still there: %d", r.status)
	}
	if r := e.do(t, "DELETE", "/hooks/"+editKey, ""); r.status != http.StatusNoContent {
		t.Errorf("DELETE /hooks/{webhook}: %d %s", r.status, r.body)
	}
	left := e.listWebhooks(t)
	if len(left) != 2 || left[0].SubscriptionURL != good.URL || left[1].ID != wild.ID {
		t.Errorf("left: %+v", left)
	}
}

func TestPipedriveDeactivate(t *testing.T) {
	e := newEnv(t)
	wh := e.createWebhook(t, url.Values{"subscription_url": {"http://127.0.0.1:9/"}, "event_action": {"updated"}, "event_object": {"deal"}})
	var name, key string
	for _, s := range e.subscribers(t) {
		name, key = s.Name, s.Key
	}

	// Failing, but made less than 3 days ago: kept, as Pipedrive does.
	e.clock.advance(71 * time.Hour)
	if err := e.api.Deactivate(t.Context(), name, "answered 503"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.subscribers(t)[name]; !ok {
		t.Fatal("a webhook made 71 hours ago was deactivated")
	}

	// A successful delivery at 71 h keeps it until 143 h.
	deliver(t, e.store, name, e.clock.now(), 200)
	e.clock.advance(70 * time.Hour)
	e.api.Deactivate(t.Context(), name, "answered 503")
	if _, ok := e.subscribers(t)[name]; !ok {
		t.Fatal("a webhook delivered to 70 hours ago was deactivated")
	}
	e.clock.advance(3 * time.Hour)
	if err := e.api.Deactivate(t.Context(), name, "answered 503"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.subscribers(t)[name]; ok {
		t.Fatal("a webhook with no success for 73 hours is still a subscriber")
	}
	list := e.listWebhooks(t)
	if len(list) != 1 || list[0].ID != wh.ID || list[0].IsActive != 0 || list[0].RemoveTime == nil ||
		*list[0].RemoveTime != "2026-11-28 10:00:00" || list[0].RemoveReason == nil || *list[0].RemoveReason != "answered 503" ||
		list[0].LastDeliveryTime == nil || *list[0].LastDeliveryTime != "2026-11-25 09:00:00" || *list[0].LastHTTPStatus != 200 {
		t.Errorf("deactivated webhook: %+v", list)
	}

	// POST /hooks/{key}/verify reactivates it (no handshake).
	r := e.do(t, "POST", "/hooks/"+key+"/verify", "")
	var h KeapHook
	r.json(t, &h)
	if r.status != http.StatusOK || h.Status != "Verified" {
		t.Errorf("verify: %d %s", r.status, r.body)
	}
	if l := e.listWebhooks(t); l[0].IsActive != 1 || l[0].RemoveTime != nil {
		t.Errorf("after verify: %+v", l[0])
	}
}

// deliver records a delivery attempt to dest answered with status, as the
// engine does.
func deliver(t *testing.T, s *cursor.SQLite, dest string, at time.Time, status int) {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("evt_%d", at.UnixNano())
	ev := cursor.Event{ID: id, Type: "deal.updated", Resource: "deals", Object: "deal", ObjectID: "1",
		OccurredAt: at, DetectedAt: at, Data: json.RawMessage(`{}`)}
	leases, err := s.AcquireLeases(ctx, "test", []string{cursor.ResourceLease("deals"), cursor.DestinationLease(dest)}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPage(ctx, cursor.Page{Resource: "deals", Cycle: 1, Lease: leases[0], Events: []cursor.Event{ev}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureDestination(ctx, dest, at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fanout(ctx, dest, func(cursor.Event) bool { return true }, at); err != nil {
		t.Fatal(err)
	}
	err = s.RecordOutcomes(ctx, leases[1], []cursor.Outcome{{Destination: dest, EventID: id, At: at, HTTPStatus: status,
		Status: cursor.StatusDelivered, Counted: true}})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeactivateErrors(t *testing.T) {
	e := newEnv(t)
	if err := e.api.Deactivate(t.Context(), "my-app", "x"); err == nil || !strings.Contains(err.Error(), "not a subscription") {
		t.Errorf("a configured destination's name: %v", err)
	}
	if err := e.api.Deactivate(t.Context(), "hook:nope", "x"); err == nil {
		t.Error("unknown key: no error")
	}
}
