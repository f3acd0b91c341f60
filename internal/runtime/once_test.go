package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestOnceDeliversWhilePolling: Once delivers a page's events while it
// polls the next ones. The upstream holds every page after the first
// until the receiver has an event (at most 10 s): were delivery to wait
// for the poll's end, the later pages would wait the whole 10 s.
func TestOnceDeliversWhilePolling(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			const records, limit = 20, 8
			got := make(chan struct{})
			var gotOnce sync.Once
			rcv := newReceiver(t)
			rcv.status = func([]byte) int {
				gotOnce.Do(func() { close(got) })
				return http.StatusOK
			}
			var mu sync.Mutex
			var waited []time.Duration // how long each later page was held
			us := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
				if offset > 0 {
					began := time.Now()
					select {
					case <-got:
					case <-time.After(10 * time.Second):
					case <-r.Context().Done():
					}
					mu.Lock()
					waited = append(waited, time.Since(began))
					mu.Unlock()
				}
				var items []map[string]any
				for id := offset + 1; id <= min(offset+limit, records); id++ {
					items = append(items, map[string]any{"id": id, "updated": time.Date(2026, 11, 1, 0, 0, id, 0, time.UTC).Format(time.RFC3339)})
				}
				json.NewEncoder(w).Encode(map[string]any{"items": items})
			}))
			defer us.Close()

			dir := stateDir(t, backend)
			cfg := parseConfig(t, dir, fmt.Sprintf(`state:
  %s
sources:
  - name: up
    base_url: %s
resources:
  - name: r0
    object: thing
    url: /items
    items: .items
    dates: { updated_field: updated, updated_format: rfc3339 }
    pagination: { type: offset, limit: %d }
    start: beginning
destinations:
  - name: app
    url: %s
`, stateKey(dir), us.URL, limit, rcv.URL))
			store, err := openState(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			rt, err := New(store, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := rt.Once(context.Background(), OnceOptions{Deliver: true})
			if err != nil || len(res.Failed) > 0 || res.DeliveryErr != nil {
				t.Fatalf("Once: %v, failed %v, delivery %v", err, res.Failed, res.DeliveryErr)
			}
			counts, dups := rcv.types(t)
			if counts["thing.created"] != records || len(dups) > 0 || res.Delivery.Delivered != records {
				t.Errorf("received %v (twice: %v), Once counted %+v; want each of %d records created once", counts, dups, res.Delivery, records)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(waited) == 0 {
				t.Fatal("the upstream served one page: the test needs later ones")
			}
			for _, d := range waited {
				if d > 5*time.Second {
					t.Errorf("later pages were held %v: no event was delivered while Once polled", waited)
					break
				}
			}
		})
	}
}
