package cursor

import (
	"context"
	"time"
)

// outboxPoll is how often WatchOutbox looks at the outbox's last seq where
// the backend has no notification of commits (SQLite: other processes'
// commits are seen this way; a reader's query of the primary key's
// greatest value costs next to nothing).
const outboxPoll = 200 * time.Millisecond

// pollOutbox is WatchOutbox by looking at the outbox's last seq every
// interval, calling notify when it grew.
func (s *sqlStore) pollOutbox(ctx context.Context, every time.Duration, notify func()) {
	last, _ := s.LastSeq(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
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

// WatchOutbox calls notify when the outbox grew: SQLite looks at its last
// seq every 200 ms.
func (s *SQLite) WatchOutbox(ctx context.Context, notify func()) {
	s.pollOutbox(ctx, outboxPoll, notify)
}
