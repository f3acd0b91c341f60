package storetest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// subscriptionTests: REST Hooks subscriptions.
var subscriptionTests = []test{
	{"Lifecycle", testSubscriptionLifecycle},
	{"UpdateChangeError", testUpdateSubscriptionChangeError},
	{"CreateInvalid", testCreateSubscriptionInvalid},
	{"SurviveReopen", testSubscriptionsSurviveReopen},
}

func keapSub(key, url string) cursor.Subscription {
	return cursor.Subscription{
		Key: key, Dialect: "keap", EventKey: "contact.add", URL: url,
		Status: cursor.SubscriptionUnverified, Secret: "s-" + key, CreatedAt: t0, UpdatedAt: t0,
	}
}

func testSubscriptionLifecycle(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)

	a, err := s.CreateSubscription(ctx, keapSub("ka", "https://a.example/hook"))
	if err != nil {
		t.Fatal(err)
	}
	pd := cursor.Subscription{
		Key: "kb", Dialect: "pipedrive", EventAction: "updated", EventObject: "*", URL: "https://b.example/",
		Status: cursor.SubscriptionVerified, HTTPUser: "u", HTTPPassword: "p", Name: "deals", Version: "1.0", UserID: 7,
		CreatedAt: t0, UpdatedAt: t0,
	}
	sb, err := s.CreateSubscription(ctx, pd)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID <= 0 || sb.ID <= a.ID {
		t.Errorf("ids %d, %d: want increasing positive ids", a.ID, sb.ID)
	}
	pd.ID = sb.ID
	if !reflect.DeepEqual(sb, pd) {
		t.Errorf("created\n got %+v\nwant %+v", sb, pd)
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
	upd, err := s.UpdateSubscription(ctx, "ka", func(sub *cursor.Subscription) error {
		sub.Status, sub.InactiveAt, sub.InactiveReason = cursor.SubscriptionInactive, later, "410 Gone"
		sub.UpdatedAt = later
		sub.ID, sub.Key = 999, "changed" // ignored
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.ID != a.ID || upd.Key != "ka" || upd.Status != cursor.SubscriptionInactive || !upd.InactiveAt.Equal(later) {
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
			_, err := s.UpdateSubscription(ctx, "ka", func(*cursor.Subscription) error { return nil })
			return err
		}(),
	} {
		if !errors.Is(err, cursor.ErrSubscriptionNotFound) {
			t.Errorf("after delete: %v, want ErrSubscriptionNotFound", err)
		}
	}

	// An id is never reused.
	c, err := s.CreateSubscription(ctx, keapSub("kc", "https://c.example/"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ID <= sb.ID {
		t.Errorf("id after delete = %d, want above %d", c.ID, sb.ID)
	}
}

func testUpdateSubscriptionChangeError(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	if _, err := s.CreateSubscription(ctx, keapSub("k", "https://a.example/")); err != nil {
		t.Fatal(err)
	}
	stale := errors.New("secret changed meanwhile")
	_, err := s.UpdateSubscription(ctx, "k", func(sub *cursor.Subscription) error {
		sub.Status = cursor.SubscriptionVerified
		return stale
	})
	if err != stale {
		t.Errorf("error = %v, want the change's own error unwrapped", err)
	}
	if got, _ := s.Subscription(ctx, "k"); got.Status != cursor.SubscriptionUnverified {
		t.Errorf("status after a failed change = %s, want Unverified (nothing written)", got.Status)
	}

	_, err = s.UpdateSubscription(ctx, "k", func(sub *cursor.Subscription) error {
		sub.Status = "Active"
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), `invalid status "Active"`) {
		t.Errorf("invalid status: error %v", err)
	}
}

func testCreateSubscriptionInvalid(t *testing.T, b Backend) {
	s := b.Open(t)
	for _, tc := range []struct {
		name string
		sub  cursor.Subscription
		want string
	}{
		{"no key", cursor.Subscription{URL: "https://a/", Status: cursor.SubscriptionVerified}, "empty key"},
		{"no url", cursor.Subscription{Key: "k", Status: cursor.SubscriptionVerified}, "empty url"},
		{"bad status", cursor.Subscription{Key: "k", URL: "https://a/", Status: "verified"}, `invalid status "verified"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateSubscription(context.Background(), tc.sub)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func testSubscriptionsSurviveReopen(t *testing.T, b Backend) {
	ctx := context.Background()
	s := b.Open(t)
	want, err := s.CreateSubscription(ctx, keapSub("k", "https://a.example/"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = b.reopen(t, s)
	got, err := s.Subscription(ctx, "k")
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after reopen: %+v, %v; want %+v", got, err, want)
	}
}
