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

// TestUpgradeKeepsMisses: a record the last complete snapshot cycle of
// an older pollhook missed (its last_seen before that cycle) is deleted
// by the next one that misses it; one seen by that cycle, or by a cycle
// begun after it that never finished, is only missing.
func TestUpgradeKeepsMisses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	rawExec(t, path, strings.Join(migrations[:11], ";\n")+fmt.Sprintf(`;
INSERT INTO resources (resource, cycle, completed, snapshot_cycle) VALUES ('contacts', 6, 5, 5);
INSERT INTO seen (resource, id, updated, hash, last_seen) VALUES
	('contacts', 'a', 1, 'h', 5), ('contacts', 'b', 1, 'h', 4), ('contacts', 'c', 1, 'h', 6);
PRAGMA user_version = 11; PRAGMA application_id = %d;`, applicationID))
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lease := resourceLease(t, s, "contacts")
	n, err := s.BeginCycle(ctx, "contacts", lease)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	res, err := s.FinishCycle(ctx, Finish{Resource: "contacts", Cycle: n, Lease: lease, Snapshot: true, DeleteGuard: 1,
		Deleted: func(id string, _ Seen) Event {
			gone = append(gone, id)
			return Event{ID: "del-" + id, Type: "contact.deleted", Resource: "contacts", ObjectID: id}
		}})
	if err != nil || res.Missing != 3 || !reflect.DeepEqual(gone, []string{"b"}) {
		t.Errorf("first snapshot after the upgrade: %+v, %v, deleted %v; want b alone deleted of 3 missing", res, err, gone)
	}
}
