package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// HistoryOptions says what CheckHistory expects of one resource's events.
type HistoryOptions struct {
	Resource string
	// Ignored are the top-level fields whose changes the resource does not
	// report (its ignore_fields, and its updated date field that moves
	// with them): an update that changed only these is spurious.
	Ignored []string
	// Record, when set, checks a record an event carries (its data or
	// previous) against the version of the ground truth it claims to be:
	// what the resource's transform must have made of it. It returns why
	// the record is wrong, or "".
	Record func(o *Object, rev int, rec map[string]json.RawMessage) string
}

// HistoryResult is what CheckHistory found.
type HistoryResult struct {
	Resource string
	// Updates and Deletes count the distinct events whose history was
	// checked; Touches the writes to ignored fields only, which no event
	// must report.
	Updates, Deletes, Touches int
	Problems                  []string
}

// OK reports whether no event's history was wrong.
func (r HistoryResult) OK() bool { return len(r.Problems) == 0 }

// Summary is r's counts on one line.
func (r HistoryResult) Summary() string {
	return fmt.Sprintf("%s history: %d updates and %d deletes checked against %d touches of ignored fields; %d wrong",
		r.Resource, r.Updates, r.Deletes, r.Touches, len(r.Problems))
}

// CheckHistory checks the history each event of a resource carries
// against the ground truth and the events before it:
//
//   - a created event has no previous;
//   - an updated or deleted event's previous is the data of the record's
//     event before it (in the order a receiver applies them: detected_at,
//     then created, updated, deleted), which is what pollhook last saw of
//     it; a version of the ground truth, older than the update's;
//   - an update's changed_fields are the top-level keys whose values
//     differ between its previous and its data, sorted, and are not only
//     ignored fields (a change only there is no event);
//   - with opts.Record, every record carried (data and previous) is what
//     the resource makes of the truth's version.
//
// Records given a malformed date are left out, as Check leaves them.
func CheckHistory(truth map[int]*Object, deliveries []Delivery, opts HistoryOptions) HistoryResult {
	res := HistoryResult{Resource: opts.Resource}
	first := map[string]Event{}
	for _, d := range deliveries {
		for _, ev := range d.Events {
			if _, ok := first[ev.ID]; !ok && ev.Resource == opts.Resource {
				first[ev.ID] = ev
			}
		}
	}
	perObject := map[string][]Event{}
	for _, ev := range first {
		perObject[ev.ObjectID] = append(perObject[ev.ObjectID], ev)
	}
	oids := make([]string, 0, len(perObject))
	for oid := range perObject {
		oids = append(oids, oid)
	}
	sort.Strings(oids)
	bad := func(ev Event, format string, args ...any) {
		res.Problems = append(res.Problems, fmt.Sprintf("%s %s of object %s: ", ev.ID, ev.Type, ev.ObjectID)+fmt.Sprintf(format, args...))
	}
	for _, oid := range oids {
		evs := perObject[oid]
		sort.Slice(evs, func(i, j int) bool {
			if later(evs[i], evs[j]) != later(evs[j], evs[i]) {
				return later(evs[j], evs[i])
			}
			return evs[i].ID < evs[j].ID
		})
		n, _ := strconv.Atoi(oid)
		o := truth[n]
		if o == nil || o.Excluded {
			continue
		}
		var last json.RawMessage // the data of the event before, in this life
		for _, ev := range evs {
			verb := ev.Type[strings.LastIndexByte(ev.Type, '.')+1:]
			switch verb {
			case Created:
				if ev.Previous != nil {
					bad(ev, "has a previous (%s)", ev.Previous)
				}
			case Updated, Deleted:
				if verb == Updated {
					res.Updates++
				} else {
					res.Deletes++
				}
				switch {
				case last == nil:
					bad(ev, "follows no event of the record, yet carries history %s", ev.Previous)
				case !sameJSON(ev.Previous, last):
					bad(ev, "previous %s is not the record's last data %s", ev.Previous, last)
				}
				if verb == Deleted {
					break
				}
				want := diffKeys(ev.Previous, ev.Data)
				if !slices.Equal(ev.ChangedFields, want) || ev.ChangedFields == nil {
					bad(ev, "changed_fields %q, want %q", ev.ChangedFields, want)
				}
				if !slices.ContainsFunc(want, func(k string) bool { return !slices.Contains(opts.Ignored, k) }) {
					bad(ev, "reports a change in ignored fields only (%q)", want)
				}
				if rev(ev.Previous) >= rev(ev.Data) {
					bad(ev, "previous rev %d is not older than rev %d", rev(ev.Previous), rev(ev.Data))
				}
			}
			for _, rec := range []json.RawMessage{ev.Data, ev.Previous} {
				if isNull(rec) {
					continue
				}
				if why := checkRecord(o, rec, opts.Record); why != "" {
					bad(ev, "%s", why)
				}
			}
			last = ev.Data
			if verb == Deleted {
				last = nil
			}
		}
	}
	for _, o := range truth {
		if !o.Excluded {
			for _, ts := range o.Touched {
				res.Touches += len(ts)
			}
		}
	}
	sort.Strings(res.Problems)
	return res
}

// checkRecord checks a record an event carries against the truth.
func checkRecord(o *Object, rec json.RawMessage, check func(*Object, int, map[string]json.RawMessage) string) string {
	var fields map[string]json.RawMessage
	var meta eventData
	if err := json.Unmarshal(rec, &fields); err != nil {
		return fmt.Sprintf("record %s is not an object: %v", rec, err)
	}
	if err := json.Unmarshal(rec, &meta); err != nil || !o.had(meta.Rev, meta.Updated, CheckOptions{}.dateText) {
		return fmt.Sprintf("record %s: object %d never had rev %d at %s", rec, o.ID, meta.Rev, meta.Updated)
	}
	if check == nil {
		return ""
	}
	return check(o, meta.Rev, fields)
}

// diffKeys returns the top-level keys whose values differ between two
// JSON objects, sorted; nil when either is not one. It compares decoded
// values, not pollhook's canonical bytes: the check does not lean on the
// code it checks.
func diffKeys(a, b json.RawMessage) []string {
	var x, y map[string]json.RawMessage
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil || x == nil || y == nil {
		return nil
	}
	out := []string{}
	for k, v := range x {
		if w, ok := y[k]; !ok || !sameJSON(v, w) {
			out = append(out, k)
		}
	}
	for k := range y {
		if _, ok := x[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sameJSON reports whether a and b are the same JSON value, whatever
// their spacing and key order.
func sameJSON(a, b json.RawMessage) bool {
	if isNull(a) || isNull(b) {
		return isNull(a) && isNull(b)
	}
	var x, y any
	dec := func(b json.RawMessage, v *any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		return d.Decode(v)
	}
	if dec(a, &x) != nil || dec(b, &y) != nil {
		return false
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

func isNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) == 0 || string(b) == "null"
}

// rev is the rev a record carries, 0 for none.
func rev(rec json.RawMessage) int {
	var m eventData
	json.Unmarshal(rec, &m)
	return m.Rev
}
