package poller

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/pollhook/pollhook/cursor"
)

// lookupChunk is how many missing records a cycle reads from the store,
// looks up and commits at a time.
const lookupChunk = 200

// Lookups counts what the lookups of one cycle found (see
// Poller.confirm).
type Lookups struct {
	// Gone were answered 404 or 410, or filtered out: their deletes are
	// confirmed.
	Gone int
	// Found exist: each was diffed, and is seen in the cycle.
	Found int
	// Failed could not be looked up (another status, a network error, a
	// body without the record): they stay as they were, missing, and are
	// looked up again by the next cycle that misses them.
	Failed int
}

// lookup is the outcome of looking one record up.
type lookup int

const (
	lookupFailed lookup = iota
	lookupGone
	lookupFound
	lookupSkipped // found, but its date is unusable: it exists
)

// confirm looks up, one by one at the resource's item_url, the records
// that cycle (a complete snapshot walk) did not see, and returns the ids
// found gone. A record found is diffed against the version the store holds
// and committed as seen in the cycle, with the event its change makes, if
// any. Nothing is looked up when no record is missing, when more are
// missing than the delete guard lets go (FinishCycle holds them back), or
// when control — a record the walk listed — is not found there: item_url
// or item_record is then wrong, and a 404 would prove nothing.
func (p *Poller) confirm(ctx, commitCtx context.Context, res *CycleResult, lease cursor.Lease, d *differ, control string) ([]string, error) {
	name := p.res.Name
	m, err := p.store.Missing(commitCtx, name, res.Cycle, "", 0)
	if err != nil {
		return nil, err
	}
	if m.Missing == 0 || float64(m.Missing) > *p.res.DeleteGuard*float64(m.Known) {
		return nil, nil
	}
	if control != "" {
		if _, outcome, err := p.lookUp(ctx, control); outcome != lookupFound && outcome != lookupSkipped {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.log.Error("item_url does not find a record the listing holds: no delete is confirmed until it does; check item_url and item_record",
				"object_id", control, "error", err, "missing", m.Missing)
			res.Lookups.Failed += int(m.Missing)
			return nil, nil
		}
	}
	var gone []string
	var firstErr error
	after := ""
	for {
		m, err := p.store.Missing(commitCtx, name, res.Cycle, after, lookupChunk)
		if err != nil {
			return gone, err
		}
		if len(m.Records) == 0 {
			break
		}
		var found []Record
		var touch []string
		held := make(map[string]cursor.Seen, len(m.Records))
		for _, r := range m.Records {
			rec, outcome, err := p.lookUp(ctx, r.ID)
			if ctx.Err() != nil {
				return gone, ctx.Err()
			}
			switch outcome {
			case lookupGone:
				gone = append(gone, r.ID)
				res.Lookups.Gone++
			case lookupFound:
				found = append(found, rec)
				held[r.ID] = r.Seen
				res.Lookups.Found++
			case lookupSkipped:
				touch = append(touch, r.ID)
				res.Lookups.Found++
			default:
				if firstErr == nil {
					firstErr = fmt.Errorf("look up %s: %w", r.ID, err)
				}
				res.Lookups.Failed++
			}
		}
		if err := p.readContents(commitCtx, d, found, held); err != nil {
			return gone, err
		}
		d.lookingUp = true
		pd := d.page(found, held)
		d.lookingUp = false
		err = p.store.CommitPage(commitCtx, cursor.Page{
			Resource: name, Cycle: res.Cycle, Lease: lease,
			Records: pd.records, Touch: append(pd.touch, touch...), Events: pd.events,
		})
		if err != nil {
			return gone, err
		}
		res.Updated += pd.updated
		res.Created += pd.created
		res.Backwards += len(pd.backwards)
		after = m.Records[len(m.Records)-1].ID
	}
	p.log.Info("looked up the records missing from the listing",
		"missing", m.Missing, "gone", res.Lookups.Gone, "found", res.Lookups.Found, "failed", res.Lookups.Failed)
	if firstErr != nil {
		p.log.Warn("records missing from the listing could not be looked up: kept, and looked up again by the next cycle that misses them",
			"failed", res.Lookups.Failed, "first_error", firstErr)
	}
	return gone, nil
}

// lookUp fetches record id at item_url. A 404 or 410, or a record the
// resource's filter leaves out, is gone; a record with id is found (or
// skipped, found with an unusable date); anything else fails, with err
// saying why.
func (p *Poller) lookUp(ctx context.Context, id string) (Record, lookup, error) {
	f := p.fetcher
	resp, err := f.c.Get(ctx, p.res.ItemTemplate.Expand(id))
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusGone) {
			return Record{}, lookupGone, nil
		}
		return Record{}, lookupFailed, err
	}
	doc, err := f.x.Decode(resp.Body)
	if err != nil {
		return Record{}, lookupFailed, f.c.scrub(err)
	}
	item, err := f.x.Item(doc)
	if err != nil {
		return Record{}, lookupFailed, f.c.scrub(err)
	}
	recs, skips, err := f.x.RecordsOf([]any{item})
	switch {
	case err != nil:
		return Record{}, lookupFailed, f.c.scrub(err)
	case len(skips) == 1 && skips[0].ID == id:
		return Record{}, lookupSkipped, nil
	case len(skips) == 1:
		return Record{}, lookupFailed, fmt.Errorf("the record has no usable id: %s", skips[0].Reason)
	case len(recs) == 0:
		return Record{}, lookupGone, nil // the filter leaves it out, as a listing would
	case recs[0].ID != id:
		return Record{}, lookupFailed, fmt.Errorf("item_url answered with record %q", recs[0].ID)
	}
	return recs[0], lookupFound, nil
}
