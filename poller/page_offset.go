package poller

import (
	"fmt"
)

// overlapRefs is how many of an offset page's last items the next page is
// checked against.
const overlapRefs = 8

// MaxStepBacks is how many times an offset walk steps back, for one page,
// before it starts over from offset 0; the second time it fails the cycle
// instead (which the next cycle retries).
const MaxStepBacks = 3

// Overlap is how many records an offset page of limit records shares
// with the page before: limit/8, at least 1 and at most 8 (so 8 for 64
// and more). A shift of fewer records than that between two pages costs
// nothing more.
func Overlap(limit int) int { return max(1, min(overlapRefs, limit/8)) }

// offsetWalk is pagination type offset: firstURL with offset_param=0 and
// limit_param=limit, then at the offsets worked out below, until a page
// of fewer than limit records. It keeps the walk contiguous while the
// listing changes under it. Offsets count positions in the API's current
// order, so a record deleted ahead of the walk, or moved to the end of
// the order (an edit, when the order is by updated date), shifts every
// later record back: the first one shifted onto a page already read
// would be skipped.
//
// So each page after the first starts Overlap(limit) records before the
// previous page's end, and is taken only if it holds one of the previous
// page's last items unchanged (the same JSON, so the same version). Such
// an item has not moved; everything after it in the current order is on
// this page or later ones, and everything before it was read. When the
// page holds none — the listing shifted back by the overlap or more, or
// the overlap items themselves changed — the walk steps back and looks
// again: half a page, then a page at a time, up to MaxStepBacks times a
// page, then from offset 0, once a walk (a page at offset 0 is always
// taken: the walk starts over); past that the walk fails. Half a
// page first keeps the walk moving on a listing that shifts at every
// request: each page taken after a step back still ends half a page
// further on. Records read twice are the same versions: they make no event.
//
// A limit of 1 leaves no room for overlap: such walks are not checked
// (see newOffsetWalk).
type offsetWalk struct {
	f        *Fetcher
	firstURL string
	limit    int
	offset   int             // of the page being fetched
	refs     map[string]bool // the accepted page's last items, by identity
	backs    int             // step-backs for the page being fetched
	from     int             // the offset the walk stepped back from
	// restarted is set once the walk has started over from offset 0.
	restarted bool
}

// newOffsetWalk returns the walk of pagination type offset from
// firstURL: an offsetWalk, or numberedPages from offset 0 for pages of
// one record.
func newOffsetWalk(f *Fetcher, firstURL string) paginator {
	if f.limit <= 1 {
		return &numberedPages{f: f, firstURL: firstURL, param: f.p.OffsetParam, from: 0}
	}
	return &offsetWalk{f: f, firstURL: firstURL, limit: f.limit}
}

func (w *offsetWalk) first() string { return w.page() }

func (w *offsetWalk) next(pg fetched) (nextPage, error) {
	from := w.offset
	accept, reread, more, err := w.take(pg.body)
	if !accept && err == nil {
		w.f.c.log.Info("offset pagination: the listing shifted during the walk; stepping back",
			"resource", w.f.name, "page", pg.n, "offset", from, "step_back_to", w.offset)
	}
	np := nextPage{reread: reread, skip: !accept}
	if more {
		np.url = w.page()
	}
	return np, err
}

// page is the URL of the page at w.offset.
func (w *offsetWalk) page() string { return w.f.limited(w.firstURL, w.f.p.OffsetParam, w.offset) }

// take judges the page fetched at w.offset, whose body is pb. It
// reports whether fn gets the page, how many of its first items were read
// already (the overlap: leave them out), and whether there is a page to
// fetch next, and moves w.offset to it. It fails when the walk, having
// started over once, has again stepped back MaxStepBacks times without
// finding where it was.
func (w *offsetWalk) take(pb *pageBody) (accept bool, reread int, more bool, err error) {
	n := pb.count()
	if w.offset > 0 {
		for reread < n && w.refs[pb.identity(reread)] {
			reread++
		}
	}
	if w.offset > 0 && reread == 0 && !w.holdsRef(pb) {
		if w.backs == 0 {
			w.from = w.offset
		}
		if w.backs >= MaxStepBacks {
			if w.restarted {
				return false, 0, false, fmt.Errorf("offset pagination: records ahead of offset %d were deleted or moved during the walk, and %d steps back (to offset %d) did not find the last records read, after the walk had started over once already; the cycle is retried. An API order that does not move records (by id or created date) makes this rarer", w.from, MaxStepBacks, w.offset)
			}
			w.restarted, w.backs, w.offset = true, 0, 0
			return false, 0, true, nil
		}
		back := w.limit - 1
		if w.backs == 0 {
			back = max(1, back/2)
		}
		w.backs++
		w.offset = max(0, w.offset-back)
		return false, 0, true, nil
	}
	w.backs = 0
	w.refs = make(map[string]bool, overlapRefs)
	for i := max(0, n-overlapRefs); i < n; i++ {
		w.refs[pb.identity(i)] = true
	}
	if n < w.limit || n == 0 {
		return true, reread, false, nil
	}
	w.offset += n - Overlap(w.limit)
	return true, reread, true, nil
}

// holdsRef reports whether the items of pb hold one of the last accepted
// page's last items, unchanged.
// Without a shift the first item is one, and the rest are not encoded.
func (w *offsetWalk) holdsRef(pb *pageBody) bool {
	for i := range pb.count() {
		if w.refs[pb.identity(i)] {
			return true
		}
	}
	return false
}

// identity is a decoded item's canonical JSON: equal for the same record
// in the same version, whatever the order of a body's keys.
func identity(item any) string {
	b, err := appendCanonical(nil, item)
	if err != nil { // a decoded body always encodes; if not, match nothing
		return fmt.Sprintf("unencodable %p", &item)
	}
	return string(b)
}
