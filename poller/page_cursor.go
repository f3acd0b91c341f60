package poller

import (
	"fmt"

	"github.com/pollhook/pollhook/internal/clip"
)

// cursorPages is pagination type cursor: firstURL, then firstURL with
// cursor_param=<next_cursor of the last body>, until a body's next cursor
// is absent, null, false or empty, or a page is empty. A cursor that
// comes back is a loop: the walk fails.
type cursorPages struct {
	f        *Fetcher
	firstURL string
	seen     map[string]bool // the cursors followed
}

func (p *cursorPages) first() string { return p.firstURL }

func (p *cursorPages) next(pg fetched) (nextPage, error) {
	if pg.body.count() == 0 {
		return nextPage{}, nil
	}
	cur, err := pg.body.next()
	if err != nil || cur == "" {
		return nextPage{}, err
	}
	if p.seen[cur] {
		return nextPage{}, fmt.Errorf("pagination loop: next cursor %q repeated at page %d", clip.Ellipsis(cur, 100), pg.n)
	}
	p.seen[cur] = true
	return nextPage{url: setURLQuery(p.firstURL, p.f.p.CursorParam, cur)}, nil
}
