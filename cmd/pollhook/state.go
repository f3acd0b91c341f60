package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

// openState opens the state store st names: the PostgreSQL database of
// state.dsn, or the SQLite file of state.path.
func openState(ctx context.Context, st config.State) (cursor.Store, error) {
	if st.DSN != "" {
		return cursor.OpenPostgres(ctx, string(st.DSN))
	}
	return cursor.Open(ctx, st.Path)
}

// Waits between attempts to reach a PostgreSQL state store at start.
const (
	minConnectWait = time.Second
	maxConnectWait = 30 * time.Second
)

// openStateRetrying opens the state as openState does, but waits for a
// PostgreSQL database that cannot be reached yet (a daemon may start
// before its database), saying so once and then when it is reached. A
// store that answers with an error (a newer schema, another program's
// tables, a bad password) is not retried.
func openStateRetrying(ctx context.Context, st config.State, log *slog.Logger) (cursor.Store, error) {
	wait := minConnectWait
	for n := 1; ; n++ {
		s, err := openState(ctx, st)
		if err == nil {
			if n > 1 {
				log.Info("state store reached", "state", s.Location(), "attempts", n)
			}
			return s, nil
		}
		if st.DSN == "" || !cursor.Unreachable(err) {
			return nil, err
		}
		if n == 1 {
			log.Error("state store cannot be reached; retrying until it can (Ctrl-C to stop)", "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("state store not reached before stop: %w", errors.Join(err, ctx.Err()))
		case <-t.C:
		}
		wait = min(2*wait, maxConnectWait)
	}
}
