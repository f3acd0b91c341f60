package runtime

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

// countingStore is a cursor.Store that counts the calls made to it, by
// method, and the lease rows AcquireLeases and ReleaseLeases are asked to
// write. Every call of the store is one statement or one transaction of
// a few: what the benchmarks report as store calls.
type countingStore struct {
	cursor.Store
	calls     map[string]*atomic.Int64 // by method; filled before use, read-only after
	leaseRows atomic.Int64
}

func newCountingStore(s cursor.Store) *countingStore {
	c := &countingStore{Store: s, calls: map[string]*atomic.Int64{}}
	for _, m := range storeMethods {
		c.calls[m] = new(atomic.Int64)
	}
	return c
}

// total is the number of calls so far, and them by method.
func (c *countingStore) total() (int64, map[string]int64) {
	var n int64
	by := make(map[string]int64, len(c.calls))
	for m, v := range c.calls {
		by[m] = v.Load()
		n += by[m]
	}
	return n, by
}

// Register registers holder with the store under it, when it takes one
// (SQLite's dead-holder takeover: see cursor.SQLite.Register).
func (c *countingStore) Register(holder string) error {
	if r, ok := c.Store.(interface{ Register(holder string) error }); ok {
		return r.Register(holder)
	}
	return nil
}

func (c *countingStore) Location() string {
	c.calls["Location"].Add(1)
	return c.Store.Location()
}

func (c *countingStore) Close() error {
	c.calls["Close"].Add(1)
	return c.Store.Close()
}

func (c *countingStore) ResourceState(a0 context.Context, a1 string) (cursor.ResourceState, error) {
	c.calls["ResourceState"].Add(1)
	return c.Store.ResourceState(a0, a1)
}

func (c *countingStore) Resources(a0 context.Context) ([]cursor.ResourceState, error) {
	c.calls["Resources"].Add(1)
	return c.Store.Resources(a0)
}

func (c *countingStore) InitResource(a0 context.Context, a1 string, a2 time.Time) error {
	c.calls["InitResource"].Add(1)
	return c.Store.InitResource(a0, a1, a2)
}

func (c *countingStore) BeginCycle(a0 context.Context, a1 string, a2 cursor.Lease) (int64, error) {
	c.calls["BeginCycle"].Add(1)
	return c.Store.BeginCycle(a0, a1, a2)
}

func (c *countingStore) Seen(a0 context.Context, a1 string, a2 []string) (map[string]cursor.Seen, error) {
	c.calls["Seen"].Add(1)
	return c.Store.Seen(a0, a1, a2)
}

func (c *countingStore) Contents(a0 context.Context, a1 string, a2 []string) (map[string]string, error) {
	c.calls["Contents"].Add(1)
	return c.Store.Contents(a0, a1, a2)
}

func (c *countingStore) CommitPage(a0 context.Context, a1 cursor.Page) error {
	c.calls["CommitPage"].Add(1)
	return c.Store.CommitPage(a0, a1)
}

func (c *countingStore) Missing(a0 context.Context, a1 string, a2 int64, a3 string, a4 int) (cursor.MissingRecords, error) {
	c.calls["Missing"].Add(1)
	return c.Store.Missing(a0, a1, a2, a3, a4)
}

func (c *countingStore) FinishCycle(a0 context.Context, a1 cursor.Finish) (cursor.FinishResult, error) {
	c.calls["FinishCycle"].Add(1)
	return c.Store.FinishCycle(a0, a1)
}

func (c *countingStore) ResetResource(a0 context.Context, a1 string, a2 time.Time) error {
	c.calls["ResetResource"].Add(1)
	return c.Store.ResetResource(a0, a1, a2)
}

func (c *countingStore) Cursors(a0 context.Context) ([]cursor.ResourceState, error) {
	c.calls["Cursors"].Add(1)
	return c.Store.Cursors(a0)
}

func (c *countingStore) RecordCycle(a0 context.Context, a1 cursor.Lease, a2 cursor.CycleRecord) error {
	c.calls["RecordCycle"].Add(1)
	return c.Store.RecordCycle(a0, a1, a2)
}

func (c *countingStore) Cycles(a0 context.Context, a1 cursor.CycleFilter) ([]cursor.CycleRecord, error) {
	c.calls["Cycles"].Add(1)
	return c.Store.Cycles(a0, a1)
}

func (c *countingStore) EventsPerHour(a0 context.Context, a1 time.Time) ([]cursor.HourCount, error) {
	c.calls["EventsPerHour"].Add(1)
	return c.Store.EventsPerHour(a0, a1)
}

func (c *countingStore) RecordBacklog(a0 context.Context, a1 []cursor.BacklogSample) error {
	c.calls["RecordBacklog"].Add(1)
	return c.Store.RecordBacklog(a0, a1)
}

func (c *countingStore) BacklogHistory(a0 context.Context, a1 string, a2 time.Time) ([]cursor.BacklogSample, error) {
	c.calls["BacklogHistory"].Add(1)
	return c.Store.BacklogHistory(a0, a1, a2)
}

func (c *countingStore) LastSeq(a0 context.Context) (int64, error) {
	c.calls["LastSeq"].Add(1)
	return c.Store.LastSeq(a0)
}

func (c *countingStore) EachEvent(a0 context.Context, a1 cursor.EventFilter, a2 func(cursor.Event) error) error {
	c.calls["EachEvent"].Add(1)
	return c.Store.EachEvent(a0, a1, a2)
}

func (c *countingStore) WatchOutbox(a0 context.Context, a1 func()) {
	c.calls["WatchOutbox"].Add(1)
	c.Store.WatchOutbox(a0, a1)
}

func (c *countingStore) Event(a0 context.Context, a1 string) (cursor.Event, error) {
	c.calls["Event"].Add(1)
	return c.Store.Event(a0, a1)
}

func (c *countingStore) EnsureDestination(a0 context.Context, a1 string, a2 time.Time) (cursor.DestinationState, error) {
	c.calls["EnsureDestination"].Add(1)
	return c.Store.EnsureDestination(a0, a1, a2)
}

func (c *countingStore) Destination(a0 context.Context, a1 string) (cursor.DestinationState, error) {
	c.calls["Destination"].Add(1)
	return c.Store.Destination(a0, a1)
}

func (c *countingStore) Destinations(a0 context.Context) ([]cursor.DestinationState, error) {
	c.calls["Destinations"].Add(1)
	return c.Store.Destinations(a0)
}

func (c *countingStore) DisableDestination(a0 context.Context, a1 string, a2 string, a3 time.Time) error {
	c.calls["DisableDestination"].Add(1)
	return c.Store.DisableDestination(a0, a1, a2, a3)
}

func (c *countingStore) EnableDestination(a0 context.Context, a1 string) error {
	c.calls["EnableDestination"].Add(1)
	return c.Store.EnableDestination(a0, a1)
}

func (c *countingStore) DeleteDestination(a0 context.Context, a1 string, a2 time.Time) error {
	c.calls["DeleteDestination"].Add(1)
	return c.Store.DeleteDestination(a0, a1, a2)
}

func (c *countingStore) Fanout(a0 context.Context, a1 string, a2 func(cursor.Event) bool, a3 time.Time) (int, error) {
	c.calls["Fanout"].Add(1)
	return c.Store.Fanout(a0, a1, a2, a3)
}

func (c *countingStore) Pending(a0 context.Context, a1 cursor.PendingQuery) ([]cursor.PendingDelivery, error) {
	c.calls["Pending"].Add(1)
	return c.Store.Pending(a0, a1)
}

func (c *countingStore) NextDue(a0 context.Context, a1 string, a2 time.Time) (time.Time, bool, error) {
	c.calls["NextDue"].Add(1)
	return c.Store.NextDue(a0, a1, a2)
}

func (c *countingStore) RecordOutcomes(a0 context.Context, a1 cursor.Lease, a2 []cursor.Outcome) error {
	c.calls["RecordOutcomes"].Add(1)
	return c.Store.RecordOutcomes(a0, a1, a2)
}

func (c *countingStore) Deliveries(a0 context.Context, a1 cursor.DeliveryFilter) ([]cursor.Delivery, error) {
	c.calls["Deliveries"].Add(1)
	return c.Store.Deliveries(a0, a1)
}

func (c *countingStore) Attempts(a0 context.Context, a1 cursor.AttemptFilter) ([]cursor.AttemptLog, error) {
	c.calls["Attempts"].Add(1)
	return c.Store.Attempts(a0, a1)
}

func (c *countingStore) Replay(a0 context.Context, a1 cursor.ReplayFilter) (int64, error) {
	c.calls["Replay"].Add(1)
	return c.Store.Replay(a0, a1)
}

func (c *countingStore) Backlog(a0 context.Context, a1 string) (cursor.Backlog, error) {
	c.calls["Backlog"].Add(1)
	return c.Store.Backlog(a0, a1)
}

func (c *countingStore) Backlogs(a0 context.Context) ([]cursor.Backlog, error) {
	c.calls["Backlogs"].Add(1)
	return c.Store.Backlogs(a0)
}

func (c *countingStore) BacklogAtMost(a0 context.Context, a1 string, a2 int64) (cursor.Backlog, error) {
	c.calls["BacklogAtMost"].Add(1)
	return c.Store.BacklogAtMost(a0, a1, a2)
}

func (c *countingStore) DeliverySummary(a0 context.Context, a1 string) (cursor.DeliverySummary, error) {
	c.calls["DeliverySummary"].Add(1)
	return c.Store.DeliverySummary(a0, a1)
}

func (c *countingStore) Prune(a0 context.Context, a1 cursor.PruneOptions) (cursor.PruneResult, error) {
	c.calls["Prune"].Add(1)
	return c.Store.Prune(a0, a1)
}

func (c *countingStore) CreateSubscription(a0 context.Context, a1 cursor.Subscription) (cursor.Subscription, error) {
	c.calls["CreateSubscription"].Add(1)
	return c.Store.CreateSubscription(a0, a1)
}

func (c *countingStore) Subscription(a0 context.Context, a1 string) (cursor.Subscription, error) {
	c.calls["Subscription"].Add(1)
	return c.Store.Subscription(a0, a1)
}

func (c *countingStore) SubscriptionByID(a0 context.Context, a1 int64) (cursor.Subscription, error) {
	c.calls["SubscriptionByID"].Add(1)
	return c.Store.SubscriptionByID(a0, a1)
}

func (c *countingStore) Subscriptions(a0 context.Context) ([]cursor.Subscription, error) {
	c.calls["Subscriptions"].Add(1)
	return c.Store.Subscriptions(a0)
}

func (c *countingStore) UpdateSubscription(a0 context.Context, a1 string, a2 func(*cursor.Subscription) error) (cursor.Subscription, error) {
	c.calls["UpdateSubscription"].Add(1)
	return c.Store.UpdateSubscription(a0, a1, a2)
}

func (c *countingStore) DeleteSubscription(a0 context.Context, a1 string) error {
	c.calls["DeleteSubscription"].Add(1)
	return c.Store.DeleteSubscription(a0, a1)
}

func (c *countingStore) AcquireLeases(a0 context.Context, a1 string, a2 []string, a3 time.Duration, a4 time.Time) ([]cursor.Lease, error) {
	c.calls["AcquireLeases"].Add(1)
	c.leaseRows.Add(int64(len(a2)))
	return c.Store.AcquireLeases(a0, a1, a2, a3, a4)
}

func (c *countingStore) ReleaseLeases(a0 context.Context, a1 string, a2 []string) error {
	c.calls["ReleaseLeases"].Add(1)
	c.leaseRows.Add(int64(len(a2)))
	return c.Store.ReleaseLeases(a0, a1, a2)
}

func (c *countingStore) Leases(a0 context.Context) ([]cursor.Lease, error) {
	c.calls["Leases"].Add(1)
	return c.Store.Leases(a0)
}

func (c *countingStore) Health(a0 context.Context, a1 time.Time) error {
	c.calls["Health"].Add(1)
	return c.Store.Health(a0, a1)
}

func (c *countingStore) Ping(a0 context.Context) error {
	c.calls["Ping"].Add(1)
	return c.Store.Ping(a0)
}

func (c *countingStore) PingWrite(a0 context.Context, a1 time.Time) error {
	c.calls["PingWrite"].Add(1)
	return c.Store.PingWrite(a0, a1)
}

func (c *countingStore) WriteErr() error {
	c.calls["WriteErr"].Add(1)
	return c.Store.WriteErr()
}

func (c *countingStore) RetainResourceWrites(a0 []string) {
	c.calls["RetainResourceWrites"].Add(1)
	c.Store.RetainResourceWrites(a0)
}

// storeMethods are the methods of cursor.Store.
var storeMethods = []string{"Location", "Close", "ResourceState", "Resources", "InitResource", "BeginCycle", "Seen", "Contents", "CommitPage", "Missing", "FinishCycle", "ResetResource", "Cursors", "RecordCycle", "Cycles", "EventsPerHour", "RecordBacklog", "BacklogHistory", "LastSeq", "EachEvent", "WatchOutbox", "Event", "EnsureDestination", "Destination", "Destinations", "DisableDestination", "EnableDestination", "DeleteDestination", "Fanout", "Pending", "NextDue", "RecordOutcomes", "Deliveries", "Attempts", "Replay", "Backlog", "Backlogs", "BacklogAtMost", "DeliverySummary", "Prune", "CreateSubscription", "Subscription", "SubscriptionByID", "Subscriptions", "UpdateSubscription", "DeleteSubscription", "AcquireLeases", "ReleaseLeases", "Leases", "Health", "Ping", "PingWrite", "WriteErr", "RetainResourceWrites"}
