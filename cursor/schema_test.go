package cursor

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestUpgrade opens a store written by each older pollhook: its data is
// kept, and what later versions added (deliveries, leases) works on it.
func TestUpgrade(t *testing.T) {
	for v := 1; v < len(migrations); v++ {
		t.Run(fmt.Sprintf("from version %d", v), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "state.db")
			rawExec(t, path, strings.Join(migrations[:v], ";\n")+fmt.Sprintf(`;
`+olderRows+`
INSERT INTO outbox (id, type, resource) VALUES ('e1', 'contact.created', 'contacts');
PRAGMA user_version = %d; PRAGMA application_id = %d;`, v, applicationID))
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := userVersion(t, s); got != len(migrations) {
				t.Errorf("schema version = %d, want %d", got, len(migrations))
			}
			if got := eventIDs(t, s); !reflect.DeepEqual(got, []string{"e1"}) {
				t.Errorf("outbox = %v, want [e1] kept", got)
			}
			if n, err := s.BeginCycle(ctx, "contacts", resourceLease(t, s, "contacts")); err != nil || n != 4 {
				t.Errorf("BeginCycle under a lease = %d, %v; want cycle 4", n, err)
			}
			if _, err := s.EnsureDestination(ctx, "a", time.Time{}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.Fanout(ctx, "a", nil, t0); err != nil || n != 1 {
				t.Errorf("fan-out of the kept event queued %d, %v; want 1", n, err)
			}
			checkHistoryAfterUpgrade(t, s)
		})
	}
}
