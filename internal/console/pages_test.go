package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// fill writes what a day of pollhook would have: cycles of contacts (the
// last one failed), n events, their deliveries to app (the first dead
// after two attempts, the second delivered, the rest pending), and a
// REST Hooks subscription.
func (f *fixture) fill(n int) []cursor.Event {
	f.t.Helper()
	ctx := context.Background()
	ls, err := f.store.AcquireLeases(ctx, "test", []string{cursor.ResourceLease("contacts"), cursor.DestinationLease("app")}, time.Hour, t0)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.EnsureDestination(ctx, "app", t0.Add(-time.Hour)); err != nil {
		f.t.Fatal(err)
	}
	var evs []cursor.Event
	for i := range n {
		evs = append(evs, cursor.Event{
			ID: fmt.Sprintf("evt_%05d", i), Type: "contact.updated", Resource: "contacts", Source: "up", Object: "contact",
			ObjectID: fmt.Sprint(i), OccurredAt: t0, DetectedAt: t0,
			Data: json.RawMessage(fmt.Sprintf(`{"id":%d,"email":"ada%d@example.com","tags":["a","b"]}`, i, i)),
		})
	}
	// History: the first event's email changed, the second's nothing at
	// the top level; the others carry none.
	if n > 1 {
		evs[0].Previous, evs[0].ChangedFields = json.RawMessage(`{"id":0,"email":"old0@example.com","tags":["a","b"]}`), []string{"email"}
		evs[1].Previous, evs[1].ChangedFields = json.RawMessage(`{"id":1,"email":"ada1@example.com","tags":["a","c"]}`), []string{}
	}
	for cyc, errText := range []string{"", "poll contacts: GET page 2: 502 Bad Gateway"} {
		num, err := f.store.BeginCycle(ctx, "contacts", ls[0])
		if err != nil {
			f.t.Fatal(err)
		}
		if cyc == 0 {
			if err := f.store.CommitPage(ctx, cursor.Page{Resource: "contacts", Cycle: num, Lease: ls[0], Events: evs}); err != nil {
				f.t.Fatal(err)
			}
		}
		c := cursor.CycleRecord{Resource: "contacts", Cycle: num, Started: t0, Ended: t0.Add(time.Duration(cyc+1) * time.Minute),
			Pages: 3, Records: int64(n), Updated: int64(n), Known: int64(n), Error: errText}
		if errText != "" {
			c.Known, c.Updated = -1, 0
		}
		if err := f.store.RecordCycle(ctx, ls[0], c); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.store.Fanout(ctx, "app", nil, t0); err != nil {
		f.t.Fatal(err)
	}
	for i, st := range []cursor.DeliveryStatus{cursor.StatusPending, cursor.StatusDead} {
		err := f.store.RecordOutcomes(ctx, ls[1], []cursor.Outcome{{
			Destination: "app", EventID: evs[0].ID, At: t0.Add(time.Duration(i) * time.Minute), HTTPStatus: 500,
			Latency: 120 * time.Millisecond, Error: "post https://app.example.com/hook: 500 Internal Server Error",
			Response: `{"error":"database is locked"}`, Status: st, Counted: true,
		}})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	err = f.store.RecordOutcomes(ctx, ls[1], []cursor.Outcome{{Destination: "app", EventID: evs[1].ID, At: t0, HTTPStatus: 204, Status: cursor.StatusDelivered, Counted: true}})
	if err != nil {
		f.t.Fatal(err)
	}
	_, err = f.store.CreateSubscription(ctx, cursor.Subscription{Key: "k1", Dialect: "keap", EventKey: "contact.created",
		URL: "https://hooks.example.com/in?sig=abc", Status: cursor.SubscriptionInactive, InactiveReason: "410 Gone", Secret: "hook-secret"})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

func TestPagesShowTheState(t *testing.T) {
	f := newFixture(t)
	evs := f.fill(PageRows + 7)
	sid, _ := f.signIn("10.0.0.1")
	get := func(path string) response {
		t.Helper()
		r := f.do("GET", path, "10.0.0.1", sid, nil)
		if r.code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, r.code, r.body)
		}
		return r
	}
	has := func(what, body string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q", what, w)
			}
		}
	}
	hasNot := func(what, body string, secrets ...string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s shows %q", what, s)
			}
		}
	}

	over := get("/ui/").body
	has("the overview", over, ">contacts<", ">deals<", "failing", "502 Bad Gateway", "waiting",
		">app<", "dead deliveries", "hook:k1", "REST Hook (keap)", "inactive", "contact.created",
		"Events per hour", "Backlog (pending deliveries)", fmt.Sprint(PageRows+7))
	hasNot("the overview", over, "pw@", "secret", "hook-secret", "sig=abc")

	res := get("/ui/resources/contacts").body
	has("the resource page", res, "Poll now", "Reset the cursor", "502 Bad Gateway", "cycle 2", "cycle 1",
		evs[len(evs)-1].ID, "Older events")
	hasNot("the resource page's first events", res, evs[0].ID+"<")
	older := regexp.MustCompile(`href="\?events_before=(\d+)#events"`).FindStringSubmatch(res)
	if older == nil {
		t.Fatal("no link to older events")
	}
	next := get("/ui/resources/contacts?events_before=" + older[1]).body
	has("the older events", next, evs[0].ID, evs[6].ID)
	hasNot("the older events", next, evs[7].ID+"<", "Older events")

	dest := get("/ui/destinations/app").body
	has("the destination page", dest, "Replay all dead deliveries", evs[0].ID, "database is locked", "500",
		"120 ms", "Pending deliveries", evs[len(evs)-1].ID, "Older pending deliveries")
	hasNot("the destination page", dest, "pw@", "key=secret")
	hook := get("/ui/destinations/hook:k1").body
	has("the subscription's page", hook, "POST /hooks/k1/verify", "410 Gone")
	hasNot("the subscription's page", hook, "hook-secret", "Enable")

	ev := get("/ui/events/" + evs[0].ID).body
	has("the event page", ev, "contact.updated", `  &#34;email&#34;: &#34;ada0@example.com&#34;,`, "dead", ">app<", "Replay", "database is locked",
		"Before", `  &#34;email&#34;: &#34;old0@example.com&#34;,`, "changed fields: <code>email</code>")
	has("an update that changed no top-level field", get("/ui/events/"+evs[1].ID).body, "Before", "no top-level field changed")
	hasNot("an event without history", get("/ui/events/"+evs[2].ID).body, `id="previous"`)

	for _, path := range []string{"/ui/resources/nope", "/ui/destinations/nope", "/ui/events/nope", "/ui/nowhere"} {
		if r := f.do("GET", path, "10.0.0.1", sid, nil); r.code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.code)
		}
	}
}

// TestBacklogAboveTheCountLimit: a backlog above CountLimit is shown
// from the last sample, which says when it was taken.
func TestBacklogAboveTheCountLimit(t *testing.T) {
	f := newFixture(t)
	f.fill(CountLimit + 3) // one dead, one delivered
	sid, _ := f.signIn("10.0.0.1")
	if page := f.do("GET", "/ui/", "10.0.0.1", sid, nil).body; !strings.Contains(page, "over 1,000") {
		t.Errorf("a backlog above the limit with no sample is not shown as over 1,000")
	}
	at := f.clock().Add(-time.Minute).Truncate(time.Minute)
	err := f.store.RecordBacklog(context.Background(), []cursor.BacklogSample{{Destination: "app", At: at, Pending: 123456, Dead: 1}})
	if err != nil {
		t.Fatal(err)
	}
	page := f.do("GET", "/ui/", "10.0.0.1", sid, nil).body
	if !strings.Contains(page, `title="as sampled at `+when(at)+`">123,456<`) {
		t.Errorf("a backlog above the limit is not the last sample's, with its time:\n%s", page)
	}
}
