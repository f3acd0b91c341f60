package poller

// numberedPages is pagination type page: firstURL with
// page_param=first_page, first_page+1 … and limit_param=limit, until a
// page of fewer than limit records.
//
// Offset pages of one record leave no room for the overlap of an
// offsetWalk: they are numbered pages on offset_param from 0.
type numberedPages struct {
	f        *Fetcher
	firstURL string
	param    string // page_param, or offset_param
	from     int    // the first page's number
}

func (p *numberedPages) first() string { return p.f.limited(p.firstURL, p.param, p.from) }

func (p *numberedPages) next(pg fetched) (nextPage, error) {
	if pg.body.count() < p.f.limit {
		return nextPage{}, nil
	}
	return nextPage{url: p.f.limited(p.firstURL, p.param, p.from+pg.n)}, nil
}
