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

// TestDeliveryIndexes: the deliveries table has a partial index over the
// pending rows, one over the dead and one over the done (schema version
// 13), and the queries that count, scan or prune deliveries of a status
// read them rather than every delivery of the destination.
func TestDeliveryIndexes(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'deliveries' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if want := []string{"deliveries_dead_seq", "deliveries_done", "deliveries_pending"}; !reflect.DeepEqual(names, want) {
		t.Errorf("indexes of deliveries = %v, want %v", names, want)
	}
	for _, q := range []struct {
		name, query string
		args        []any
	}{
		{"NextDue", nextDueQuery, []any{"a", 0}},
		{"Backlog", backlogQuery, []any{"a"}},
		{"BacklogAtMost", backlogAtMostQuery, []any{"a", 10}},
		{"pruneDeliveries", pruneDeliveriesQuery, []any{"a", "delivered", 0, 10}},
	} {
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.query, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(detail, "deliveries") {
				plan = append(plan, detail)
			}
		}
		rows.Close()
		for _, step := range plan {
			// The outer DELETE of pruneDeliveries finds each row it was
			// given by its key.
			if step == "SEARCH deliveries USING PRIMARY KEY (destination=? AND event_id=?)" {
				continue
			}
			if !strings.Contains(step, "deliveries_pending") && !strings.Contains(step, "deliveries_dead_seq") &&
				!strings.Contains(step, "deliveries_done") {
				t.Errorf("%s reads %q, want a partial index (plan %q)", q.name, step, plan)
			}
		}
		if len(plan) == 0 {
			t.Errorf("%s: no step of the plan reads deliveries", q.name)
		}
	}
}
