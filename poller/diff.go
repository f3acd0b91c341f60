package poller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/config/datefmt"
	"github.com/pollhook/pollhook/cursor"
)

// Event verbs, before a resource's event_names turns them into its types.
const (
	verbCreated = "created"
	verbUpdated = "updated"
	verbDeleted = "deleted"
)

// differ decides, record by record, what changed since the store last saw
// a resource. It holds one cycle's view of the rules of DESIGN.md's diff
// semantics; it does no I/O.
type differ struct {
	res    *config.Resource
	source string
	// watermark is the previous complete cycle's watermark (or the start
	// time before the first); created dates after it mean created.
	watermark time.Time
	// silent records without emitting: the first cycle of start: now.
	silent bool
	// silentUntil records without emitting the never-seen records updated
	// at or before it: from the first cycle of start: <time> on, and from
	// the second of start: now (see Poller.watchFrom). Such a record
	// existed unchanged when the watch began, and a walk had missed it (a
	// listing that shifted under it). A tombstone is never silent: the
	// receiver was told the record is gone.
	silentUntil time.Time
	// watchFrom is when the watch of the resource began, known (watching)
	// once a cycle completed: a never-seen record created after it is
	// new, however late a walk first lists it.
	watchFrom time.Time
	watching  bool
	// fullIDSet says the store holds every id the upstream has, so a
	// never-seen id without a created date is new.
	fullIDSet bool
	// snapshot marks unchanged records as seen in this cycle, so that the
	// cycle's end can tell which ids are gone.
	snapshot bool
	// lookingUp is set while records looked up at item_url are diffed:
	// their content is compared with the listing's only when their date
	// moved.
	lookingUp bool
	now       time.Time
	// history is how records are compared and what is kept of them.
	history
}

// pageDiff is what one page adds to the store.
type pageDiff struct {
	// records are the new and changed versions to write.
	records []cursor.SeenRecord
	// touch are the unchanged ids, marked seen in snapshot mode only.
	touch      []string
	events     []cursor.Event
	maxUpdated time.Time
	created    int
	updated    int
	// updatedAt are the records' updated dates, for future().
	updatedAt []time.Time
	// backwards are the records reported although their updated date is
	// before the one the store held (see page).
	backwards []backwardDate
}

// backwardDate is a record whose updated date went back while its
// content changed.
type backwardDate struct {
	id          string
	held, given time.Time
}

// future counts the page's records updated after t.
func (pd *pageDiff) future(t time.Time) int {
	n := 0
	for _, u := range pd.updatedAt {
		if u.After(t) {
			n++
		}
	}
	return n
}

// page diffs a page's records against seen, the versions the store holds
// for their ids. seen is updated as records are processed, so an id twice
// in one page yields at most one event for each version.
func (d *differ) page(recs []Record, seen map[string]cursor.Seen) pageDiff {
	var out pageDiff
	out.records = make([]cursor.SeenRecord, 0, len(recs))
	hasUpdated := d.res.Dates.Updated != nil
	for i := range recs {
		r := &recs[i]
		if r.Updated.After(out.maxUpdated) {
			out.maxUpdated = r.Updated
		}
		out.updatedAt = append(out.updatedAt, r.Updated)
		next := cursor.Seen{Updated: r.Updated, Hash: r.Hash}
		prev, found := seen[r.ID]
		// A tombstone is not known: the record is back, and new.
		known := found && !prev.Deleted
		next.Rev = prev.Rev
		if known {
			next.Content = prev.Content
		}
		verb := ""
		switch {
		case known && hasUpdated:
			switch {
			case r.Updated.Before(prev.Updated) && !d.sameContent(r, prev):
				// The content changed but the date went back: a DST
				// fold read in a zone-less format, a clock put right, a
				// date once in the future. The change is reported (and
				// the date it gives stored, so that later changes are
				// judged against it); the caller logs and counts it.
				verb = verbUpdated
				out.backwards = append(out.backwards, backwardDate{id: r.ID, held: prev.Updated, given: r.Updated})
			case r.Updated.Equal(prev.Updated) && !d.lookingUp && !d.sameContent(r, prev):
				// The content changed under the same date: two edits
				// within the date's resolution (the same second, or
				// minute), or a DST fold's second pass at the wall-clock
				// time of the first. Reported. (A record looked up at
				// item_url is not judged so: the API's item may show
				// fields its listing does not.)
				verb = verbUpdated
			case !r.Updated.After(prev.Updated):
				// The same version again (lookback overlap, a date equal
				// to the one held), or an older one whose compared
				// fields did not change: keep what the store has.
				next = prev
			case !d.onlyIgnored(r, prev):
				verb = verbUpdated
			}
		case known:
			if !d.sameContent(r, prev) {
				verb = verbUpdated
			}
		case d.silent:
		case hasUpdated && !found && !d.silentUntil.IsZero() && !r.Updated.After(d.silentUntil):
		default:
			verb = d.newVerb(r)
		}
		// A new record, or a change: its content is the next change's
		// previous. A version that moved only in ignored fields keeps the
		// content it had.
		fresh := !known || verb != ""
		if fresh {
			next.Content = d.content(r)
		}
		seen[r.ID] = next
		if known && next.Updated.Equal(prev.Updated) && next.Hash == prev.Hash {
			if d.snapshot {
				out.touch = append(out.touch, r.ID)
			}
			continue
		}
		out.records = append(out.records, stored(r.ID, next, fresh))
		if verb == "" {
			continue
		}
		if verb == verbCreated {
			out.created++
		} else {
			out.updated++
		}
		// Each event of a record is one more revision, committed with the
		// event: a content the record had before, or its return after a
		// delete, still gets an id of its own.
		next.Rev++
		seen[r.ID] = next
		out.records[len(out.records)-1] = stored(r.ID, next, fresh)
		var before time.Time // what the change cannot precede
		if known {
			before = prev.Updated
		}
		ev := d.event(verb, r.ID, version(next), d.occurred(verb, r, before), r.Data)
		if known {
			ev.Previous, ev.ChangedFields = d.previous(prev, r.Data)
		}
		out.events = append(out.events, ev)
	}
	return out
}

// newVerb says whether a never-seen record is created or updated.
//
// A zone-less date in a DST fold names two instants (datefmt.Readings),
// and the record's created date is judged by both: created after the
// watermark if its later reading is, and created with its first version
// if any reading of it is within created_tolerance of any reading of the
// updated date. A record created in the fold's second pass, read an hour
// early, is so still reported created; the price is that a record never
// seen, created in the fold's first pass before the watermark and edited
// since, is reported created rather than updated: an event of the right
// record with the wrong verb, rather than a creation never reported.
func (d *differ) newVerb(r *Record) string {
	if d.res.Dates.Created != nil && !r.Created.IsZero() {
		early, late := datefmt.Readings(r.Created)
		if late.After(d.watermark) || (d.watching && late.After(d.watchFrom)) {
			return verbCreated
		}
		if d.res.Dates.Updated != nil && !r.Updated.IsZero() {
			tol := d.res.CreatedTolerance.D()
			ue, ul := datefmt.Readings(r.Updated)
			for _, c := range [...]time.Time{early, late} {
				for _, u := range [...]time.Time{ue, ul} {
					if absDuration(u.Sub(c)) <= tol {
						return verbCreated
					}
				}
			}
		}
		return verbUpdated
	}
	if d.fullIDSet {
		return verbCreated
	}
	return verbUpdated
}

// occurred is when a change happened, as the record tells it. An update
// dated before the record's creation or its version before (before), as a
// zone-less date in a DST fold's second pass reads, is dated at the
// fold's later reading where that is not before them, so that receivers
// ordering by occurred_at see it after them.
func (d *differ) occurred(verb string, r *Record, before time.Time) time.Time {
	if verb == verbCreated && !r.Created.IsZero() {
		return r.Created
	}
	if r.Updated.IsZero() {
		return d.now
	}
	if r.Created.After(before) {
		before = r.Created
	}
	if r.Updated.Before(before) {
		if _, late := datefmt.Readings(r.Updated); !late.Before(before) {
			return late
		}
	}
	return r.Updated
}

// deleted builds the event of a record that a snapshot no longer lists:
// the record's next revision.
func (d *differ) deleted(id string, last cursor.Seen) cursor.Event {
	last.Rev++
	ev := d.event(verbDeleted, id, version(last), d.now, json.RawMessage("null"))
	if d.keep && last.Content != "" {
		ev.Previous = json.RawMessage(last.Content)
	}
	return ev
}

func (d *differ) event(verb, id, ver string, occurred time.Time, data json.RawMessage) cursor.Event {
	typ := d.res.EventType(verb)
	return cursor.Event{
		ID:         EventID(d.res.Name, id, typ, ver),
		Type:       typ,
		Resource:   d.res.Name,
		Source:     d.source,
		Object:     d.res.Object,
		ObjectID:   id,
		OccurredAt: occurred,
		DetectedAt: d.now,
		Data:       data,
	}
}

// version names a record's version: its updated date (or its content hash
// where the resource has no updated field) and its revision.
func version(s cursor.Seen) string {
	v := s.Hash
	if !s.Updated.IsZero() {
		v = s.Updated.UTC().Format(time.RFC3339Nano)
	}
	return v + "#" + strconv.FormatInt(s.Rev, 10)
}

// EventID is the deterministic id of a change: the same change detected
// twice, by any process, has the same id.
func EventID(resource, objectID, eventType, version string) string {
	h := sha256.New()
	for _, s := range []string{resource, objectID, eventType, version} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:16])
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
