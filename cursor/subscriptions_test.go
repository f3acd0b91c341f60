package cursor

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func keapSub(key, url string) Subscription {
	return Subscription{
		Key: key, Dialect: "keap", EventKey: "contact.add", URL: url,
		Status: SubscriptionUnverified, Secret: "s-" + key, CreatedAt: t0, UpdatedAt: t0,
	}
}

func TestSubscriptionLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)

	a, err := s.CreateSubscription(ctx, keapSub("ka", "https://a.example/hook"))
	if err != nil {
		t.Fatal(err)
	}
	pd := Subscription{
		Key: "kb", Dialect: "pipedrive", EventAction: "updated", EventObject: "*", URL: "https://b.example/",
		Status: SubscriptionVerified, HTTPUser: "u", HTTPPassword: "p", Name: "deals", Version: "1.0", UserID: 7,
		CreatedAt: t0, UpdatedAt: t0,
	}
	b, err := s.CreateSubscription(ctx, pd)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 || b.ID <= a.ID {
		t.Errorf("ids %d, %d: want increasing positive ids", a.ID, b.ID)
	}
	pd.ID = b.ID
	if !reflect.DeepEqual(b, pd) {
		t.Errorf("created\n got %+v\nwant %+v", b, pd)
	}

	got, err := s.Subscription(ctx, "kb")
	if err != nil || !reflect.DeepEqual(got, pd) {
		t.Errorf("Subscription(kb) = %+v, %v; want %+v", got, err, pd)
	}
	got, err = s.SubscriptionByID(ctx, a.ID)
	if err != nil || got.Key != "ka" || got.Secret != "s-ka" {
		t.Errorf("SubscriptionByID(%d) = %+v, %v; want ka", a.ID, got, err)
	}

	if _, err := s.CreateSubscription(ctx, keapSub("ka", "https://other.example/")); err == nil {
		t.Error("a second subscription with key ka was stored")
	}

	later := t0.Add(time.Hour)
	upd, err := s.UpdateSubscription(ctx, "ka", func(sub *Subscription) error {
		sub.Status, sub.InactiveAt, sub.InactiveReason = SubscriptionInactive, later, "410 Gone"
		sub.UpdatedAt = later
		sub.ID, sub.Key = 999, "changed" // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != a.ID || upd.Key != "ka" || upd.Status != SubscriptionInactive || !upd.InactiveAt.Equal(later) {
		t.Errorf("updated = %+v", upd)
	}
	if got, _ := s.Subscription(ctx, "ka"); !reflect.DeepEqual(got, upd) {
		t.Errorf("read after update\n got %+v\nwant %+v", got, upd)
	}

	list, err := s.Subscriptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Key != "ka" || list[1].Key != "kb" {
		t.Errorf("Subscriptions = %+v; want ka, kb in creation order", list)
	}

	if err := s.DeleteSubscription(ctx, "ka"); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.DeleteSubscription(ctx, "ka"),
		func() error { _, err := s.Subscription(ctx, "ka"); return err }(),
		func() error { _, err := s.SubscriptionByID(ctx, a.ID); return err }(),
		func() error {
			_, err := s.UpdateSubscription(ctx, "ka", func(*Subscription) error { return nil })
			return err
		}(),
	} {
		if !errors.Is(err, ErrSubscriptionNotFound) {
			t.Errorf("after delete: %v, want ErrSubscriptionNotFound", err)
		}
	}

	// An id is never reused.
	c, err := s.CreateSubscription(ctx, keapSub("kc", "https://c.example/"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID <= b.ID {
		t.Errorf("id after delete = %d, want above %d", c.ID, b.ID)
	}
}

func TestUpdateSubscriptionChangeError(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateSubscription(ctx, keapSub("k", "https://a.example/")); err != nil {
		t.Fatal(err)
	}
	stale := errors.New("secret changed meanwhile")
	_, err := s.UpdateSubscription(ctx, "k", func(sub *Subscription) error {
		sub.Status = SubscriptionVerified
		return stale
	})
	if err != stale {
		t.Errorf("error = %v, want the change's own error unwrapped", err)
	}
	if got, _ := s.Subscription(ctx, "k"); got.Status != SubscriptionUnverified {
		t.Errorf("status after a failed change = %s, want Unverified (nothing written)", got.Status)
	}

	_, err = s.UpdateSubscription(ctx, "k", func(sub *Subscription) error {
		sub.Status = "Active"
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), `invalid status "Active"`) {
		t.Errorf("invalid status: error %v", err)
	}
}

func TestCreateSubscriptionInvalid(t *testing.T) {
	s := openStore(t)
	for _, tc := range []struct {
		name string
		sub  Subscription
		want string
	}{
		{"no key", Subscription{URL: "https://a/", Status: SubscriptionVerified}, "empty key"},
		{"no url", Subscription{Key: "k", Status: SubscriptionVerified}, "empty url"},
		{"bad status", Subscription{Key: "k", URL: "https://a/", Status: "verified"}, `invalid status "verified"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateSubscription(context.Background(), tc.sub)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSubscriptionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.CreateSubscription(ctx, keapSub("k", "https://a.example/"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Subscription(ctx, "k")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen: %+v, %v; want %+v", got, err, want)
	}
}

func TestDeliverySummary(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const dest = "hook:k"

	if d, err := s.DeliverySummary(ctx, dest); err != nil || d != (DeliverySummary{}) {
		t.Errorf("never attempted: %+v, %v; want zero", d, err)
	}

	evs := []Event{event("contacts", "e1", "contact.created"), event("contacts", "e2", "contact.created")}
	if err := s.CommitPage(ctx, Page{Resource: "contacts", Cycle: 1, Events: evs}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureDestination(ctx, dest, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fanout(ctx, dest, func(string) bool { return true }, t0); err != nil {
		t.Fatal(err)
	}
	ok, failed := t0.Add(time.Minute), t0.Add(2*time.Minute)
	err := s.RecordOutcomes(ctx, []Outcome{
		{Destination: dest, EventID: "e1", At: ok, HTTPStatus: 204, Status: StatusDelivered, Counted: true},
		{Destination: dest, EventID: "e2", At: failed, HTTPStatus: 503, Status: StatusPending, Counted: true, NextAt: failed.Add(time.Minute)},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.DeliverySummary(ctx, dest)
	if err != nil {
		t.Fatal(err)
	}
	want := DeliverySummary{LastAt: failed, LastStatus: 503, LastSuccess: ok}
	if d != want {
		t.Errorf("summary = %+v, want %+v", d, want)
	}
	if d, _ := s.DeliverySummary(ctx, "hook:other"); d != (DeliverySummary{}) {
		t.Errorf("other destination: %+v, want zero", d)
	}
}
