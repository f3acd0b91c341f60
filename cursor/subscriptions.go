package cursor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The REST Hooks subscriptions clients make at run time are one table
// (schema version 3), one row each, whichever API dialect made it:
//
//   - subscriptions: id (integer, autoincrement: never reused), key (the
//     caller's string key, unique), dialect, event_key, event_action,
//     event_object, url, status (Unverified, Verified or Inactive), secret
//     (the X-Hook-Secret of the last verification handshake), http_user and
//     http_password (HTTP basic auth sent to url), name, version, user_id,
//     created_at, updated_at, inactive_at, inactive_reason.

// SubscriptionStatus is the state of a subscription, named as Keap names
// the states of its REST Hooks.
type SubscriptionStatus string

// Subscription states.
const (
	// SubscriptionUnverified receives nothing: its URL has not answered
	// the verification handshake yet.
	SubscriptionUnverified SubscriptionStatus = "Unverified"
	// SubscriptionVerified receives events.
	SubscriptionVerified SubscriptionStatus = "Verified"
	// SubscriptionInactive receives nothing: it was deactivated (its URL
	// answered 410 Gone, or kept failing) until it is verified again.
	SubscriptionInactive SubscriptionStatus = "Inactive"
)

func (s SubscriptionStatus) valid() bool {
	return s == SubscriptionUnverified || s == SubscriptionVerified || s == SubscriptionInactive
}

// MaxReasonBytes bounds the inactive reason a subscription keeps.
const MaxReasonBytes = 1 << 10

// ErrSubscriptionNotFound is returned for a subscription key or id the
// store does not hold.
var ErrSubscriptionNotFound = errors.New("subscription not found")

// Subscription is one REST Hooks subscription. The store keeps what it is
// given; what the fields mean for each dialect is the hooks API's to say.
type Subscription struct {
	// ID is assigned by the store on create: an increasing integer, never
	// reused.
	ID int64
	// Key is the subscription's unique string key, chosen by the caller.
	Key string
	// Dialect is the API that made the subscription ("keap", "pipedrive").
	Dialect string
	// EventKey is a Keap event key (noun.verb).
	EventKey string
	// EventAction and EventObject are a Pipedrive event_action and
	// event_object ("*" for any).
	EventAction, EventObject string
	URL                      string
	Status                   SubscriptionStatus
	// Secret is the X-Hook-Secret of the last verification handshake.
	Secret string
	// HTTPUser and HTTPPassword are HTTP basic auth credentials sent to
	// URL; empty for none.
	HTTPUser, HTTPPassword string
	Name                   string
	Version                string
	UserID                 int64
	CreatedAt              time.Time
	UpdatedAt              time.Time
	// InactiveAt and InactiveReason say when and why the subscription
	// became Inactive; zero while it is not.
	InactiveAt     time.Time
	InactiveReason string
}

const subscriptionColumns = `id, key, dialect, event_key, event_action, event_object, url, status, secret,
	http_user, http_password, name, version, user_id, created_at, updated_at, inactive_at, inactive_reason`

// subscriptionRow is what scanning a row needs of *sql.Row and *sql.Rows.
type subscriptionRow interface {
	Scan(dest ...any) error
}

func scanSubscription(r subscriptionRow) (Subscription, error) {
	var s Subscription
	var created, updated, inactive int64
	err := r.Scan(&s.ID, &s.Key, &s.Dialect, &s.EventKey, &s.EventAction, &s.EventObject, &s.URL, &s.Status, &s.Secret,
		&s.HTTPUser, &s.HTTPPassword, &s.Name, &s.Version, &s.UserID, &created, &updated, &inactive, &s.InactiveReason)
	if err != nil {
		return Subscription{}, err
	}
	s.CreatedAt, s.UpdatedAt, s.InactiveAt = fromNanos(created), fromNanos(updated), fromNanos(inactive)
	return s, nil
}

func checkSubscription(s Subscription) error {
	switch {
	case s.Key == "":
		return errors.New("empty key")
	case s.URL == "":
		return errors.New("empty url")
	case !s.Status.valid():
		return fmt.Errorf("invalid status %q", s.Status)
	}
	return nil
}

// CreateSubscription stores a new subscription and returns it with its ID.
// CreatedAt and UpdatedAt are kept as given. A key already stored is an
// error.
func (s *sqlStore) CreateSubscription(ctx context.Context, sub Subscription) (Subscription, error) {
	if err := checkSubscription(sub); err != nil {
		return Subscription{}, fmt.Errorf("create subscription %s: %w", sub.Key, err)
	}
	row := s.w.QueryRowContext(ctx, s.q(`
INSERT INTO subscriptions (key, dialect, event_key, event_action, event_object, url, status, secret,
	http_user, http_password, name, version, user_id, created_at, updated_at, inactive_at, inactive_reason)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING `)+subscriptionColumns,
		sub.Key, sub.Dialect, sub.EventKey, sub.EventAction, sub.EventObject, sub.URL, string(sub.Status), sub.Secret,
		sub.HTTPUser, sub.HTTPPassword, sub.Name, sub.Version, sub.UserID,
		nanos(sub.CreatedAt), nanos(sub.UpdatedAt), nanos(sub.InactiveAt), truncate(sub.InactiveReason, MaxReasonBytes))
	out, err := scanSubscription(row)
	if err != nil {
		return Subscription{}, fmt.Errorf("create subscription %s: %w", sub.Key, err)
	}
	return out, nil
}

// Subscription returns the subscription whose key is key, or an error
// wrapping ErrSubscriptionNotFound.
func (s *sqlStore) Subscription(ctx context.Context, key string) (Subscription, error) {
	sub, err := scanSubscription(s.r.QueryRowContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM subscriptions WHERE key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrSubscriptionNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("read subscription %s: %w", key, err)
	}
	return sub, nil
}

// SubscriptionByID returns the subscription whose ID is id, or an error
// wrapping ErrSubscriptionNotFound.
func (s *sqlStore) SubscriptionByID(ctx context.Context, id int64) (Subscription, error) {
	sub, err := scanSubscription(s.r.QueryRowContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM subscriptions WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrSubscriptionNotFound
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("read subscription %d: %w", id, err)
	}
	return sub, nil
}

// Subscriptions returns every subscription, in the order they were
// created.
func (s *sqlStore) Subscriptions(ctx context.Context) ([]Subscription, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM subscriptions ORDER BY id`))
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

// UpdateSubscription reads the subscription whose key is key, lets change
// modify it and writes it back, in one write transaction: concurrent
// updates of a subscription apply one after the other, each seeing the
// last. change runs while the store's writer is held, so it must be quick
// and must not call the store. When change returns an error nothing is
// written and that error is returned as it is (unwrapped), so that a
// caller can test for its own errors. The key and ID cannot be changed.
// It returns the subscription as written.
func (s *sqlStore) UpdateSubscription(ctx context.Context, key string, change func(*Subscription) error) (Subscription, error) {
	var out Subscription
	var changeErr error
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		sub, err := scanSubscription(tx.QueryRowContext(ctx, s.q(`SELECT `+subscriptionColumns+` FROM subscriptions WHERE key = ? /*FOR UPDATE*/`), key))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrSubscriptionNotFound
		}
		if err != nil {
			return err
		}
		id := sub.ID
		if err := change(&sub); err != nil {
			changeErr = err
			return err
		}
		sub.ID, sub.Key = id, key
		if err := checkSubscription(sub); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`
UPDATE subscriptions SET dialect = ?, event_key = ?, event_action = ?, event_object = ?, url = ?, status = ?,
	secret = ?, http_user = ?, http_password = ?, name = ?, version = ?, user_id = ?, created_at = ?,
	updated_at = ?, inactive_at = ?, inactive_reason = ?
WHERE id = ?`),
			sub.Dialect, sub.EventKey, sub.EventAction, sub.EventObject, sub.URL, string(sub.Status),
			sub.Secret, sub.HTTPUser, sub.HTTPPassword, sub.Name, sub.Version, sub.UserID, nanos(sub.CreatedAt),
			nanos(sub.UpdatedAt), nanos(sub.InactiveAt), truncate(sub.InactiveReason, MaxReasonBytes), id)
		if err != nil {
			return err
		}
		sub.InactiveReason = truncate(sub.InactiveReason, MaxReasonBytes)
		out = sub
		return nil
	})
	if changeErr != nil {
		return Subscription{}, changeErr
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("update subscription %s: %w", key, err)
	}
	return out, nil
}

// DeleteSubscription deletes the subscription whose key is key, or returns
// an error wrapping ErrSubscriptionNotFound.
func (s *sqlStore) DeleteSubscription(ctx context.Context, key string) error {
	res, err := s.w.ExecContext(ctx, s.q(`DELETE FROM subscriptions WHERE key = ?`), key)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrSubscriptionNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("delete subscription %s: %w", key, err)
	}
	return nil
}

// DeliverySummary is what the attempt log says of the deliveries to one
// destination.
type DeliverySummary struct {
	// LastAt and LastStatus are the time and HTTP status (0 for none) of
	// the last attempt; LastAt is zero when the log holds none.
	LastAt     time.Time
	LastStatus int
	// LastSuccess is the time of the last attempt answered with a 2xx
	// status; zero when the log holds none.
	LastSuccess time.Time
}

// DeliverySummary returns what the attempt log holds of the deliveries to
// destination dest (a destination never attempted gives the zero
// DeliverySummary). Attempts pruned from the log are forgotten.
func (s *sqlStore) DeliverySummary(ctx context.Context, dest string) (DeliverySummary, error) {
	var d DeliverySummary
	var last, ok int64
	err := s.r.QueryRowContext(ctx, s.q(`
SELECT coalesce((SELECT at FROM attempts WHERE destination = ?1 ORDER BY id DESC LIMIT 1), 0),
       coalesce((SELECT status FROM attempts WHERE destination = ?1 ORDER BY id DESC LIMIT 1), 0),
       coalesce((SELECT max(at) FROM attempts WHERE destination = ?1 AND status BETWEEN 200 AND 299), 0)`), dest).
		Scan(&last, &d.LastStatus, &ok)
	if err != nil {
		return DeliverySummary{}, fmt.Errorf("summarize deliveries to %s: %w", dest, err)
	}
	d.LastAt, d.LastSuccess = fromNanos(last), fromNanos(ok)
	return d, nil
}
