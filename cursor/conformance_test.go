package cursor_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/cursor/storetest"
)

// TestConformance runs the store's conformance suite against SQLite, each
// store a file of its own in t.TempDir(); Reopen opens the same file
// again, as another process would.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T) cursor.Store {
			return openSQLite(t, filepath.Join(t.TempDir(), "state.db"))
		},
		Reopen: func(t *testing.T, s cursor.Store) cursor.Store {
			return openSQLite(t, s.Location())
		},
	})
}

func openSQLite(t *testing.T, path string) cursor.Store {
	t.Helper()
	s, err := cursor.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
