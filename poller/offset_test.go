package poller

import (
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
			// back to 0, then on from 3 (the new page's last record).
			offsets: []int{0, 3, 0, 3, 6},
		},
		{
			name: "two edits move records to the end", n: 12, limit: 5,
			change:  map[int]func(*listing){2: func(l *listing) { l.edit(2); l.edit(3) }},
			offsets: []int{0, 4, 0, 4, 8},
		},
		{
			name: "the overlap record itself edited", n: 10, limit: 4,
			change: map[int]func(*listing){2: func(l *listing) { l.edit(4) }},
			// 4 moved to the end: page 2 holds none of 1…4 unchanged.
			offsets: []int{0, 3, 0, 3, 6, 9},
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
			offsets: []int{0, 3, 6, 9, 6, 3, 0},
		},
		{
			name: "a shift of many pages steps back to the start", n: 40, limit: 4,
			change: map[int]func(*listing){3: func(l *listing) {
				for id := 1; id <= 20; id++ {
					l.del(id)
				}
			}},
			offsets: []int{0, 3, 6, 3, 0, 3, 6, 9, 12, 15, 18},
		},
		{
			name: "a shift deeper than MaxStepBacks pages fails", n: 60, limit: 4,
			change: map[int]func(*listing){6: func(l *listing) {
				for id := 1; id <= 14; id++ {
					l.del(id)
				}
			}},
			offsets: []int{0, 3, 6, 9, 12, 15, 12, 9, 6},
			err:     "offset pagination: records ahead of offset 15 were deleted or moved during the walk, and 3 steps back (to offset 6)",
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
