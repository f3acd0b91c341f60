package reliability

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CheckOptions says what Check expects of one pollhook resource.
type CheckOptions struct {
	// Resource is the pollhook resource whose events are checked; the
	// events of other resources are ignored.
	Resource string
	// Deletes says that the resource detects deletes (deletes: snapshot):
	// a deleted record that was reported must be reported deleted, and
	// the receiver's view must converge on the upstream's live set.
	Deletes bool
	// DateText writes a date as the upstream does, to compare with a
	// record's; nil is DateLayout in UTC.
	DateText func(time.Time) string
	// Created says that the resource watched from the beginning (start:
	// beginning), so every record was new to it: the first event of each
	// must be created.
	Created bool
}

// Result is what Check found for one resource.
//
// Definitions. pollhook reports the state of a record as of a poll, so
// several writes between two polls legitimately collapse into one event
// for the last of them; an event's version is the record's rev in its
// data. Then, of the records the ground truth holds (leaving out those
// given a malformed date, which pollhook skips by design):
//
//   - lost: a live record whose final version no event reports; or, with
//     Deletes, a deleted record that was reported but whose delete was not;
//     or, with Created, a record whose first event is not a created one
//     (a creation reported as an update);
//   - duplicate: two or more event ids reporting the same version of a
//     record (created and updated alike), two created events, or two
//     deleted events in a row, within one life of the record (a record
//     reported deleted and then back lives again: see duplicates);
//   - redelivery: an event received again under an id already received
//     (allowed: receivers de-duplicate on webhook-id);
//   - spurious: an event for a record or a version the upstream never had,
//     a deleted event for a live record, or one from a resource without
//     Deletes;
//   - not converged (Deletes only): a record whose state as a receiver
//     sees it — the event with the latest detected_at wins, and of one
//     cycle's (the same detected_at), the latest occurred_at — is not the
//     upstream's: live at its final version, or deleted;
//   - collapsed: a version of a reported record that no event reports,
//     superseded before a poll saw it (allowed);
//   - unobserved: a record created and deleted with no event at all
//     (allowed: it may have lived between two polls).
type Result struct {
	Resource string
	// Objects and Changes count the checkable ground truth.
	Objects, Changes int
	// Deliveries counts accepted requests that carried events of the
	// resource; Events the distinct event ids among them.
	Deliveries, Events int
	Redeliveries       int
	Collapsed          int
	Unobserved         int
	Lost               []string
	Duplicates         []string
	Spurious           []string
	NotConverged       []string
}

// OK reports whether nothing was lost, duplicated, spurious or left
// unconverged.
func (r Result) OK() bool {
	return len(r.Lost) == 0 && len(r.Duplicates) == 0 && len(r.Spurious) == 0 && len(r.NotConverged) == 0
}

// Summary is r's counts on one line.
func (r Result) Summary() string {
	return fmt.Sprintf("%s: %d objects, %d changes, %d deliveries, %d events, %d redeliveries, %d collapsed, %d unobserved; lost %d, duplicates %d, spurious %d, not converged %d",
		r.Resource, r.Objects, r.Changes, r.Deliveries, r.Events, r.Redeliveries, r.Collapsed, r.Unobserved,
		len(r.Lost), len(r.Duplicates), len(r.Spurious), len(r.NotConverged))
}

// String is r's Summary, then up to 10 of each problem, one a line.
func (r Result) String() string {
	var b strings.Builder
	b.WriteString(r.Summary())
	for _, l := range []struct {
		name string
		list []string
	}{{"lost", r.Lost}, {"duplicate", r.Duplicates}, {"spurious", r.Spurious}, {"not converged", r.NotConverged}} {
		for i, s := range l.list {
			if i == 10 {
				fmt.Fprintf(&b, "\n  %s: … %d more", l.name, len(l.list)-10)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.name, s)
		}
	}
	return b.String()
}

// eventData is what Check reads of an event's data: the record.
type eventData struct {
	Rev     int    `json:"rev"`
	Updated string `json:"updated"`
}

type versionKey struct {
	id, rev int
}

// verbOrder ranks events of one detection time: a delete comes last.
var verbOrder = map[string]int{Created: 0, Updated: 1, Deleted: 2}

func (o CheckOptions) dateText(t time.Time) string {
	if o.DateText != nil {
		return o.DateText(t)
	}
	return t.UTC().Format(DateLayout)
}

// Check compares the ground truth with the deliveries a receiver accepted,
// for one resource. See Result for what it counts.
func Check(truth map[int]*Object, deliveries []Delivery, opts CheckOptions) Result {
	res := Result{Resource: opts.Resource}
	first := map[string]Event{}
	for _, d := range deliveries {
		carried := false
		for _, ev := range d.Events {
			if ev.Resource != opts.Resource {
				continue
			}
			carried = true
			if _, ok := first[ev.ID]; ok {
				res.Redeliveries++
				continue
			}
			first[ev.ID] = ev
		}
		if carried {
			res.Deliveries++
		}
	}
	res.Events = len(first)

	versions := map[versionKey][]string{}
	deletes := map[int][]string{}
	perObject := map[int][]revEvent{}
	reported := map[int]bool{}
	winner := map[int]Event{}
	winnerRev := map[int]int{}
	ids := make([]string, 0, len(first))
	for id := range first {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, eid := range ids {
		ev := first[eid]
		verb := ev.Type[strings.LastIndexByte(ev.Type, '.')+1:]
		oid, err := strconv.Atoi(ev.ObjectID)
		o := truth[oid]
		if err != nil || o == nil {
			res.Spurious = append(res.Spurious, fmt.Sprintf("%s %s for object %q, which never existed", eid, ev.Type, ev.ObjectID))
			continue
		}
		if o.Excluded {
			continue
		}
		rev := 0
		switch verb {
		case Created, Updated:
			var data eventData
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				res.Spurious = append(res.Spurious, fmt.Sprintf("%s %s of object %d: data is not a record: %v", eid, ev.Type, oid, err))
				continue
			}
			if !o.had(data.Rev, data.Updated, opts.dateText) {
				res.Spurious = append(res.Spurious, fmt.Sprintf("%s %s of object %d rev %d @%s: no such version", eid, ev.Type, oid, data.Rev, data.Updated))
				continue
			}
			rev = data.Rev
			versions[versionKey{oid, rev}] = append(versions[versionKey{oid, rev}], eid)
		case Deleted:
			switch {
			case !opts.Deletes:
				res.Spurious = append(res.Spurious, fmt.Sprintf("%s deleted object %d in a resource without deletes", eid, oid))
				continue
			case !o.Deleted:
				res.Spurious = append(res.Spurious, fmt.Sprintf("%s deleted object %d, which is live", eid, oid))
			}
			deletes[oid] = append(deletes[oid], eid)
		default:
			res.Spurious = append(res.Spurious, fmt.Sprintf("%s has unknown type %s", eid, ev.Type))
			continue
		}
		reported[oid] = true
		perObject[oid] = append(perObject[oid], revEvent{ev, verb, rev})
		if w, ok := winner[oid]; !ok || later(ev, w) {
			winner[oid], winnerRev[oid] = ev, rev
		}
	}

	for oid, evs := range perObject {
		res.Duplicates = append(res.Duplicates, duplicates(oid, evs)...)
		if first := evs[0]; opts.Created && first.verb != Created {
			res.Lost = append(res.Lost, fmt.Sprintf("object %d: first reported as %s (rev %d by %s), never as created", oid, first.verb, first.rev, first.ID))
		}
	}

	oids := make([]int, 0, len(truth))
	for oid := range truth {
		oids = append(oids, oid)
	}
	sort.Ints(oids)
	for _, oid := range oids {
		o := truth[oid]
		if o.Excluded {
			continue
		}
		res.Objects++
		res.Changes += len(o.Versions)
		if o.Deleted {
			res.Changes++
		}
		for _, v := range o.Versions {
			if reported[oid] && len(versions[versionKey{oid, v.Rev}]) == 0 && (o.Deleted || v.Rev != o.Final().Rev) {
				res.Collapsed++
			}
		}
		switch {
		case !o.Deleted:
			if f := o.Final(); len(versions[versionKey{oid, f.Rev}]) == 0 {
				res.Lost = append(res.Lost, fmt.Sprintf("object %d: final rev %d @%s never reported (last reported rev %d)",
					oid, f.Rev, f.Updated.Format(DateLayout), lastReported(versions, oid, f.Rev)))
			}
		case !reported[oid]:
			res.Unobserved++
		case opts.Deletes && len(deletes[oid]) == 0:
			res.Lost = append(res.Lost, fmt.Sprintf("object %d: deleted, reported, but its delete never was", oid))
		}
		if !opts.Deletes {
			continue
		}
		w, seen := winner[oid]
		believedLive := seen && !strings.HasSuffix(w.Type, "."+Deleted)
		switch {
		case believedLive && o.Deleted:
			res.NotConverged = append(res.NotConverged, fmt.Sprintf("object %d: deleted upstream, live at rev %d for the receiver", oid, winnerRev[oid]))
		case !believedLive && !o.Deleted:
			state := "never reported"
			if seen {
				state = "deleted"
			}
			res.NotConverged = append(res.NotConverged, fmt.Sprintf("object %d: live upstream at rev %d, %s for the receiver", oid, o.Final().Rev, state))
		case believedLive && winnerRev[oid] != o.Final().Rev:
			res.NotConverged = append(res.NotConverged, fmt.Sprintf("object %d: at rev %d upstream, rev %d for the receiver", oid, o.Final().Rev, winnerRev[oid]))
		}
	}
	sort.Strings(res.Duplicates)
	sort.Strings(res.Spurious)
	sort.Strings(res.Lost)
	return res
}

// revEvent is an event with its verb and the rev its data reports.
type revEvent struct {
	Event
	verb string
	rev  int
}

// duplicates lists the duplicates among the events of one object. A
// record's life runs from a created or updated event to a deleted one;
// a record deleted and back (a listing that left it out for a while) lives
// again, and may be reported again at the same version under a new id.
// Within one life, a version reported twice, two created events or two
// deleted events in a row are duplicates.
func duplicates(oid int, evs []revEvent) []string {
	sort.Slice(evs, func(i, j int) bool {
		if later(evs[j].Event, evs[i].Event) != later(evs[i].Event, evs[j].Event) {
			return later(evs[j].Event, evs[i].Event)
		}
		return evs[i].ID < evs[j].ID
	})
	var out []string
	revs := map[int]string{}
	created, deleted := "", ""
	for _, e := range evs {
		switch e.verb {
		case Deleted:
			if deleted != "" {
				out = append(out, fmt.Sprintf("object %d deleted by %s and %s", oid, deleted, e.ID))
			}
			deleted, created, revs = e.ID, "", map[int]string{}
		default:
			deleted = ""
			if first, ok := revs[e.rev]; ok {
				out = append(out, fmt.Sprintf("object %d rev %d reported by %s and %s", oid, e.rev, first, e.ID))
			} else {
				revs[e.rev] = e.ID
			}
			if e.verb == Created {
				if created != "" {
					out = append(out, fmt.Sprintf("object %d created by %s and %s", oid, created, e.ID))
				}
				created = e.ID
			}
		}
	}
	return out
}

// later says whether a is a later event than b for a receiver: detected
// later; or by the same cycle (a walk that read the record twice, edited
// between two pages), of a later version (occurred later); or at the same
// time and further in created → updated → deleted.
func later(a, b Event) bool {
	if !a.DetectedAt.Equal(b.DetectedAt) {
		return a.DetectedAt.After(b.DetectedAt)
	}
	if !a.OccurredAt.Equal(b.OccurredAt) {
		return a.OccurredAt.After(b.OccurredAt)
	}
	va := verbOrder[a.Type[strings.LastIndexByte(a.Type, '.')+1:]]
	vb := verbOrder[b.Type[strings.LastIndexByte(b.Type, '.')+1:]]
	return va > vb
}

// lastReported is the greatest rev below below that an event reports, 0
// for none.
func lastReported(versions map[versionKey][]string, oid, below int) int {
	for rev := below - 1; rev > 0; rev-- {
		if len(versions[versionKey{oid, rev}]) > 0 {
			return rev
		}
	}
	return 0
}

// version returns the version rev of o.
func (o *Object) version(rev int) (Version, bool) {
	for _, v := range o.Versions {
		if v.Rev == rev {
			return v, true
		}
	}
	return Version{}, false
}

// had reports whether o was ever at rev with updated date updated, as
// text writes dates: the version's own date, or one a Touch gave it.
func (o *Object) had(rev int, updated string, text func(time.Time) string) bool {
	v, ok := o.version(rev)
	if !ok {
		return false
	}
	if text(v.Updated) == updated {
		return true
	}
	for _, t := range o.Touched[rev] {
		if text(t) == updated {
			return true
		}
	}
	return false
}

// Sum adds up the results of several resources into one line of figures.
type Sum struct {
	Changes, Events, Deliveries, Redeliveries int
	Lost, Duplicates, Spurious, NotConverged  int
}

// Add adds r to s.
func (s *Sum) Add(r Result) {
	s.Changes += r.Changes
	s.Events += r.Events
	s.Deliveries += r.Deliveries
	s.Redeliveries += r.Redeliveries
	s.Lost += len(r.Lost)
	s.Duplicates += len(r.Duplicates)
	s.Spurious += len(r.Spurious)
	s.NotConverged += len(r.NotConverged)
}
