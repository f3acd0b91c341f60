package poller

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pollhook/pollhook/config"
)

// listing is an API listing ordered by updated date that changes while it
// is walked: before serving request n (1-based), it runs change[n].
type listing struct {
	mu     sync.Mutex
	order  []int       // ids, in the listing's order
	rev    map[int]int // each id's version
	change map[int]func(l *listing)
	offs   []int // the offsets asked for
}

func newListing(n int) *listing {
	l := &listing{rev: map[int]int{}, change: map[int]func(*listing){}}
	for id := 1; id <= n; id++ {
		l.order = append(l.order, id)
	}
	return l
}

// del deletes id.
func (l *listing) del(id int) {
	l.order = slices.DeleteFunc(l.order, func(x int) bool { return x == id })
}

// edit makes a new version of id, which moves to the end of the order.
func (l *listing) edit(id int) {
	l.del(id)
	l.order = append(l.order, id)
	l.rev[id]++
}

// insert puts a new id at position i (an order that is not by date).
func (l *listing) insert(i, id int) { l.order = slices.Insert(l.order, i, id) }

func (l *listing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	off, lim := atoi(r.URL.Query().Get("offset"), -1), atoi(r.URL.Query().Get("limit"), -1)
	l.offs = append(l.offs, off)
	if f := l.change[len(l.offs)]; f != nil {
		f(l)
	}
	var page []map[string]any
	for _, id := range l.order[min(off, len(l.order)):min(off+lim, len(l.order))] {
		page = append(page, map[string]any{"id": id, "rev": l.rev[id]})
	}
	writeJSON(w, map[string]any{"data": page})
}

// TestOffsetWalkShifts changes the listing during offset walks: every
// record the listing holds at the end of the walk, in the version it
// holds then, must have been read.
func TestOffsetWalkShifts(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		limit   int
		change  map[int]func(*listing)
		offsets []int
		err     string
		// unread are records no walk can be asked to find: inserted
		// ahead of pages already read.
		unread []int
	}{
		{
			name: "steady", n: 10, limit: 4,
			offsets: []int{0, 3, 6, 9},
		},
		{
			name: "a limit of 1 leaves no room for overlap", n: 3, limit: 1,
			offsets: []int{0, 1, 2, 3},
		},
		{
			name: "a delete on page 1 before page 2", n: 10, limit: 4,
			change: map[int]func(*listing){2: func(l *listing) { l.del(1) }},
			// Page 2 at offset 3 starts at 5 (4 moved to offset 2): step
			// back half a page, to 2, then on from its last record.
			offsets: []int{0, 3, 2, 5, 8},
		},
		{
			name: "two edits move records to the end", n: 12, limit: 5,
			change:  map[int]func(*listing){2: func(l *listing) { l.edit(2); l.edit(3) }},
			offsets: []int{0, 4, 2, 6, 10},
		},
		{
			name: "the overlap record itself edited", n: 10, limit: 4,
			change: map[int]func(*listing){2: func(l *listing) { l.edit(4) }},
			// 4 moved to the end: page 2 holds none of 1…4 unchanged.
			offsets: []int{0, 3, 2, 5, 8},
		},
		{
			name: "an insert ahead shifts forward: no step back", n: 10, limit: 4,
			change:  map[int]func(*listing){2: func(l *listing) { l.insert(0, 100) }},
			offsets: []int{0, 3, 6, 9},
			unread:  []int{100},
		},
		{
			name: "a mass delete empties the next page", n: 10, limit: 4,
			change: map[int]func(*listing){4: func(l *listing) {
				for id := 1; id <= 8; id++ {
					l.del(id)
				}
			}},
			// Three empty pages stepping back, then the walk starts over.
			offsets: []int{0, 3, 6, 9, 8, 5, 2, 0},
		},
		{
			name: "a shift of many pages steps back to the start", n: 40, limit: 4,
			change: map[int]func(*listing){3: func(l *listing) {
				for id := 1; id <= 20; id++ {
					l.del(id)
				}
			}},
			offsets: []int{0, 3, 6, 5, 2, 0, 3, 6, 9, 12, 15, 18},
		},
		{
			name: "a shift deeper than the steps back, twice, fails", n: 80, limit: 4,
			change: map[int]func(*listing){
				6: func(l *listing) {
					for id := 1; id <= 14; id++ {
						l.del(id)
					}
				},
				14: func(l *listing) {
					for id := 15; id <= 28; id++ {
						l.del(id)
					}
				},
			},
			// Refused at 15, steps back to 14, 11, 8, starts over at 0;
			// refused again at 12, steps back to 11, 8, 5: fails.
			offsets: []int{0, 3, 6, 9, 12, 15, 14, 11, 8, 0, 3, 6, 9, 12, 11, 8, 5},
			err:     "offset pagination: records ahead of offset 12 were deleted or moved during the walk, and 3 steps back (to offset 5) did not find the last records read, after the walk had started over once already",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newListing(tt.n)
			if tt.change != nil {
				l.change = tt.change
			}
			srv := httptest.NewServer(l)
			defer srv.Close()
			r := config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageOffset, Limit: tt.limit}}
			_, pages, err := walkPages(t, srv, r, "/items", config.Source{})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Each: %v, want an error with %q", err, tt.err)
				}
			} else if err != nil {
				t.Fatalf("Each: %v", err)
			}
			if !slices.Equal(l.offs, tt.offsets) {
				t.Errorf("offsets asked = %v, want %v", l.offs, tt.offsets)
			}
			if tt.err != "" {
				return
			}
			read := map[string]bool{} // the records read, as their JSON
			for _, p := range pages {
				for _, rec := range p.Records {
					read[string(rec.Data)] = true
				}
			}
			for _, id := range l.order {
				if slices.Contains(tt.unread, id) {
					continue
				}
				if want := `{"id":` + strconv.Itoa(id) + `,"rev":` + strconv.Itoa(l.rev[id]) + `}`; !read[want] {
					t.Errorf("%s, in the listing when the walk ended, was never read (listing %v)", want, l.order)
				}
			}
		})
	}
}

// TestOffsetWalkSteadyEdits walks a listing ordered by updated date in
// which records are edited (moved to the end) before every request: the
// walk must finish, read every record in its final version, and not take
// many more requests than the pages it holds.
func TestOffsetWalkSteadyEdits(t *testing.T) {
	tests := []struct{ n, limit, edits, maxRequests int }{
		{1000, 100, 1, 15},
		{1000, 100, 5, 15},
		{1000, 20, 1, 70},
		{1000, 20, 2, 130},
		{1000, 20, 4, 200},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d records, limit %d, %d edits a request", tt.n, tt.limit, tt.edits), func(t *testing.T) {
			l := newListing(tt.n)
			rng := rand.New(rand.NewPCG(1, uint64(tt.edits)))
			for i := 1; i <= 10*tt.maxRequests; i++ {
				l.change[i] = func(l *listing) {
					for range tt.edits {
						l.edit(l.order[rng.IntN(len(l.order))])
					}
				}
			}
			srv := httptest.NewServer(l)
			defer srv.Close()
			r := config.Resource{Items: ".data", Pagination: config.Pagination{Type: config.PageOffset, Limit: tt.limit}}
			_, pages, err := walkPages(t, srv, r, "/items", config.Source{})
			if err != nil {
				t.Fatalf("Each: %v", err)
			}
			if len(l.offs) > tt.maxRequests {
				t.Errorf("%d requests, want at most %d", len(l.offs), tt.maxRequests)
			}
			read := map[string]bool{}
			for _, p := range pages {
				for _, rec := range p.Records {
					read[string(rec.Data)] = true
				}
			}
			for _, id := range l.order {
				if want := `{"id":` + strconv.Itoa(id) + `,"rev":` + strconv.Itoa(l.rev[id]) + `}`; !read[want] {
					t.Fatalf("%s was never read", want)
				}
			}
			t.Logf("%d requests", len(l.offs))
		})
	}
}
