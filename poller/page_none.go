package poller

// onePage is pagination type none: the walk's firstURL is its only page.
type onePage struct{ url string }

func (p onePage) first() string { return p.url }

func (onePage) next(fetched) (nextPage, error) { return nextPage{}, nil }
