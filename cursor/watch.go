package cursor

import (
	"context"
	"sync"
	"time"
)

// outboxPoll is how often WatchOutbox looks at the outbox's last seq where
// the backend has no notification of commits (SQLite: other processes'
// commits are seen this way; a reader's query of the primary key's
// greatest value costs next to nothing). Commits of this process are told
// at once (see outboxWatchers).
const outboxPoll = 200 * time.Millisecond

// outboxWatchers are the WatchOutbox calls of one store value, told at
// once when a transaction of this process that added outbox events
// commits: the delivery of a page's events starts when the page commits,
// not at the next look at the outbox. Safe for concurrent use.
type outboxWatchers struct {
	mu    sync.Mutex
	chans map[chan struct{}]struct{}
}

// add returns a channel that receives (without blocking the sender: one
// signal is kept while the watcher is busy) after each commit of events.
func (o *outboxWatchers) add() chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.chans == nil {
		o.chans = map[chan struct{}]struct{}{}
	}
	c := make(chan struct{}, 1)
	o.chans[c] = struct{}{}
	return c
}

func (o *outboxWatchers) remove(c chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.chans, c)
}

// committed tells every watcher that events were committed.
func (o *outboxWatchers) committed() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for c := range o.chans {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// watchLocal calls notify after each commit of events by this store
// value, until ctx is done.
func (s *sqlStore) watchLocal(ctx context.Context, notify func()) {
	c := s.watchers.add()
	defer s.watchers.remove(c)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c:
			notify()
		}
	}
}

// pollOutbox is WatchOutbox by looking at the outbox's last seq every
// interval, calling notify when it grew, and at once when local (nil for
// none) receives.
func (s *sqlStore) pollOutbox(ctx context.Context, every time.Duration, local <-chan struct{}, notify func()) {
	last, _ := s.LastSeq(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-local:
			notify()
			continue
		case <-t.C:
		}
		n, err := s.LastSeq(ctx)
		if err != nil {
			continue // the store's health says why; the next tick tries again
		}
		if n > last {
			last = n
			notify()
		}
	}
}

// WatchOutbox calls notify when the outbox grew: at once after a commit of
// this store value, and within 200 ms of another process's commit (SQLite
// looks at its last seq that often).
func (s *SQLite) WatchOutbox(ctx context.Context, notify func()) {
	c := s.watchers.add()
	defer s.watchers.remove(c)
	s.pollOutbox(ctx, s.outboxPoll, c, notify)
}
