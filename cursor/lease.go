package cursor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Leases give each resource, and each destination, one owner at a time
// (schema version 7):
//
//   - leases: one row per lease name — holder (who holds it, or held it
//     last), expires_at (0 once released) and fence, a number that grows
//     by one each time the lease changes hands.
//
// A process polls a resource, or delivers to a destination, only while it
// holds its lease, and every write of that work carries the lease: the
// store commits it only if the lease's holder and fence are still those in
// the row. A process that lost its lease — paused past its expiry, cut off
// from the store — commits nothing, even if it does not know yet; the new
// holder took a greater fence. This is what lets two pollhook processes
// share one SQLite file, and replicas share one PostgreSQL database,
// without emitting anything twice.

// Lease name prefixes: a lease is named after what it owns.
const (
	resourceLeasePrefix    = "resource/"
	destinationLeasePrefix = "destination/"
	memberLeasePrefix      = "member/"
)

// MemberLease is the name of the lease a process holds to tell the others
// it is alive, so that they share the work with it.
func MemberLease(holder string) string { return memberLeasePrefix + holder }

// ResourceLease is the name of the lease that owns resource.
func ResourceLease(resource string) string { return resourceLeasePrefix + resource }

// DestinationLease is the name of the lease that owns the deliveries to
// destination dest.
func DestinationLease(dest string) string { return destinationLeasePrefix + dest }

// ErrLeaseLost is returned by a write whose lease is no longer held with
// its fence: another holder took it, so the write is not made.
var ErrLeaseLost = errors.New("lease lost")

// Lease is the right to do one piece of work — poll a resource, deliver to
// a destination — until it expires.
type Lease struct {
	// Name is what the lease owns: ResourceLease or DestinationLease.
	Name string
	// Holder identifies the process that holds it.
	Holder string
	// Fence grows each time the lease changes hands; writes check it.
	Fence int64
	// Expires is when the lease ends unless renewed; zero once released.
	Expires time.Time
}

// Held reports whether l is held by someone at now.
func (l Lease) Held(now time.Time) bool { return l.Holder != "" && l.Expires.After(now) }

// LeaseError says a write was refused because its lease is no longer
// held: errors.Is(err, ErrLeaseLost).
type LeaseError struct {
	Name string
	// Holder and Fence are what the store holds now; Holder is empty when
	// nobody does.
	Holder string
	Fence  int64
}

func (e *LeaseError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("lease %s lost: it was released", e.Name)
	}
	return fmt.Sprintf("lease %s lost: %s holds it now (fence %d)", e.Name, e.Holder, e.Fence)
}

// Is makes errors.Is(err, ErrLeaseLost) true.
func (e *LeaseError) Is(target error) bool { return target == ErrLeaseLost }

// AcquireLeases takes for holder, until now+ttl, each lease of names that
// is free (never taken, released or expired) and renews those that holder
// already holds. A lease that changes hands gets a greater fence; a renewed
// one keeps its fence. It returns the state of every lease of names after
// that, in the order of names: those held by holder, and those held by
// others (with their holder and expiry), so that a caller can say who
// holds what it did not get.
func (s *sqlStore) AcquireLeases(ctx context.Context, holder string, names []string, ttl time.Duration, now time.Time) ([]Lease, error) {
	if holder == "" {
		return nil, errors.New("acquire leases: empty holder")
	}
	if now.IsZero() || ttl <= 0 {
		return nil, fmt.Errorf("acquire leases: want a time and a positive ttl (got %v, %v)", now, ttl)
	}
	if len(names) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(names)
	if err != nil {
		return nil, fmt.Errorf("acquire leases: %w", err)
	}
	var out []Lease
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// Renew what holder holds and take what is free, in one
		// statement: a row held by another holder that has not expired
		// is left alone. Rows are taken in name order, so that two
		// holders asking for the same leases never wait for each other
		// in a circle.
		if _, err := tx.ExecContext(ctx, s.q(`
INSERT INTO leases (name, holder, expires_at, fence)
SELECT DISTINCT value, CAST(?1 AS TEXT), CAST(?2 AS BIGINT), 1 FROM json_each(?4) WHERE true ORDER BY value
ON CONFLICT (name) DO UPDATE
SET fence = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > 0 THEN leases.fence ELSE leases.fence + 1 END,
    holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?3`),
			holder, nanos(now.Add(ttl)), nanos(now), string(list)); err != nil {
			return err
		}
		out, err = s.readLeases(ctx, tx, names)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("acquire leases: %w", err)
	}
	return out, nil
}

// readLeases returns the leases of names in their order; a name with no
// row has a zero lease with its Name.
func (s *sqlStore) readLeases(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, names []string) ([]Lease, error) {
	list, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, s.q(`
SELECT name, holder, fence, expires_at FROM leases WHERE name IN (SELECT value FROM json_each(?))`), string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byName := make(map[string]Lease, len(names))
	for rows.Next() {
		var l Lease
		var exp int64
		if err := rows.Scan(&l.Name, &l.Holder, &l.Fence, &exp); err != nil {
			return nil, err
		}
		l.Expires = fromNanos(exp)
		byName[l.Name] = l
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Lease, len(names))
	for i, n := range names {
		l, ok := byName[n]
		if !ok {
			l = Lease{Name: n}
		}
		out[i] = l
	}
	return out, nil
}

// ReleaseLeases gives up the leases of names that holder holds, so that
// another process may take them at once rather than after they expire.
// Leases held by others are left alone.
func (s *sqlStore) ReleaseLeases(ctx context.Context, holder string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	list, err := json.Marshal(names)
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	_, err = s.w.ExecContext(ctx, s.q(`
UPDATE leases SET expires_at = 0
WHERE holder = ? AND name IN (SELECT value FROM json_each(?))`), holder, string(list))
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return nil
}

// Leases returns every lease the store knows, sorted by name: who holds
// (or last held) each, its fence and its expiry.
func (s *sqlStore) Leases(ctx context.Context) ([]Lease, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT name, holder, fence, expires_at FROM leases ORDER BY name`))
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		var exp int64
		if err := rows.Scan(&l.Name, &l.Holder, &l.Fence, &exp); err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		l.Expires = fromNanos(exp)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

// leaseCheck reads a lease for checkLease.
const leaseCheck = `SELECT holder, fence, expires_at FROM leases WHERE name = ? /*FOR SHARE*/`

// checkLease fails with a *LeaseError unless l is held, with its fence, by
// its holder, and names want. It runs inside the write it guards, so the
// check and the write are one transaction.
func (s *sqlStore) checkLease(ctx context.Context, tx *sql.Tx, l Lease, want string) error {
	if l.Name != want {
		return fmt.Errorf("write under lease %q, want lease %q", l.Name, want)
	}
	if l.Holder == "" || l.Fence <= 0 {
		return fmt.Errorf("write under lease %s without a holder and fence: acquire the lease first", want)
	}
	var holder string
	var fence, exp int64
	// Row-locked where the backend has row locks: a takeover waits for
	// this write to commit, so no write lands after it.
	var row *sql.Row
	if st := s.preparedIn(ctx, tx, leaseCheck); st != nil {
		row = st.QueryRowContext(ctx, l.Name)
	} else {
		row = tx.QueryRowContext(ctx, s.q(leaseCheck), l.Name)
	}
	err := row.Scan(&holder, &fence, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return &LeaseError{Name: l.Name}
	}
	if err != nil {
		return fmt.Errorf("check lease %s: %w", l.Name, err)
	}
	if holder != l.Holder || fence != l.Fence {
		return &LeaseError{Name: l.Name, Holder: holder, Fence: fence}
	}
	if exp == 0 {
		// Released by its holder: the work it covered has stopped.
		return &LeaseError{Name: l.Name}
	}
	return nil
}
