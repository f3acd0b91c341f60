package poller

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
)

var (
	t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
	t3 = t0.Add(3 * time.Minute)
)

func diffResource(updated, created bool) *config.Resource {
	guard := 0.5
	r := &config.Resource{Name: "contacts", Object: "contact", Source: "crm", DeleteGuard: &guard,
		CreatedTolerance: config.Duration(time.Second), EventNames: "pollhook"}
	if updated {
		r.Dates.Updated = &config.DateField{Field: "updated", Location: time.UTC}
	}
	if created {
		r.Dates.Created = &config.DateField{Field: "created", Location: time.UTC}
	}
	return r
}

// nyFold is hh:mm UTC on 2026-11-01 in New York's zone, as a zone-less
// date in its fold reads: 05:mm and 06:mm UTC are both 01:mm local.
func nyFold(hh, mm int) time.Time {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return time.Date(2026, 11, 1, hh, mm, 0, 0, time.UTC).In(ny)
}

func rec(id string, updated, created time.Time, content string) Record {
	data := json.RawMessage(fmt.Sprintf(`{"id":%q,"v":%q}`, id, content))
	return Record{ID: id, Updated: updated, Created: created, Data: data, Hash: "h-" + content}
}

func TestDiffRules(t *testing.T) {
	type want struct{ typ, id string }
	tests := []struct {
		name       string
		updated    bool // the resource has an updated field
		created    bool // and a created field
		watermark  time.Time
		silent     bool
		until      time.Time
		fullIDSet  bool
		seen       map[string]cursor.Seen
		records    []Record
		want       []want
		wantStored map[string]cursor.Seen
		backwards  int // records whose date went back, reported
		lookingUp  bool
	}{{
		name: "seen id whose updated date advanced is updated", updated: true, created: true, watermark: t1,
		seen:    map[string]cursor.Seen{"1": {Updated: t0, Hash: "h-a"}},
		records: []Record{rec("1", t2, t0, "b")},
		want:    []want{{"contact.updated", "1"}},
	}, {
		name: "record re-read in the lookback window is nothing", updated: true, created: true, watermark: t1,
		seen:    map[string]cursor.Seen{"1": {Updated: t1, Hash: "h-a"}},
		records: []Record{rec("1", t1, t0, "a")},
	}, {
		name: "a changed record whose date went back is updated, and its date stored", updated: true, watermark: t2,
		seen:       map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
		records:    []Record{rec("1", t1, time.Time{}, "b")},
		want:       []want{{"contact.updated", "1"}},
		wantStored: map[string]cursor.Seen{"1": {Updated: t1, Hash: "h-b", Rev: 1}},
		backwards:  1,
	}, {
		name: "a date once in the future, put right with new content, is updated", updated: true, watermark: t2,
		seen:       map[string]cursor.Seen{"1": {Updated: t3.AddDate(4, 0, 0), Hash: "h-a", Rev: 3}},
		records:    []Record{rec("1", t2, time.Time{}, "b"), rec("2", t2, time.Time{}, "c")},
		want:       []want{{"contact.updated", "1"}, {"contact.updated", "2"}},
		wantStored: map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-b", Rev: 4}},
		backwards:  1,
	}, {
		name: "an earlier date with the same content is nothing", updated: true, watermark: t2,
		seen:       map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
		records:    []Record{rec("1", t1, time.Time{}, "a")},
		wantStored: map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
	}, {
		name: "the same date with other content is updated (two edits in the date's resolution)", updated: true, watermark: t2,
		seen:       map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
		records:    []Record{rec("1", t2, time.Time{}, "b")},
		want:       []want{{"contact.updated", "1"}},
		wantStored: map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-b", Rev: 1}},
	}, {
		name: "looked up at item_url, the same date with other content is the same version: nothing", updated: true, watermark: t2,
		lookingUp:  true,
		seen:       map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
		records:    []Record{rec("1", t2, time.Time{}, "b")},
		wantStored: map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a"}},
	}, {
		name: "the same date and content again is nothing", updated: true, watermark: t2,
		seen:       map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a", Rev: 2}},
		records:    []Record{rec("1", t2, time.Time{}, "a")},
		wantStored: map[string]cursor.Seen{"1": {Updated: t2, Hash: "h-a", Rev: 2}},
	}, {
		name: "new id created after the watermark is created", updated: true, created: true, watermark: t1,
		records: []Record{rec("2", t2, t2, "a")},
		want:    []want{{"contact.created", "2"}},
	}, {
		name: "old record never seen that changed is updated, not created", updated: true, created: true, watermark: t1,
		records: []Record{rec("3", t2, t0, "a")},
		want:    []want{{"contact.updated", "3"}},
	}, {
		name: "late record created before the watermark with created = updated is created", updated: true, created: true, watermark: t2,
		records: []Record{rec("4", t1, t1.Add(-500*time.Millisecond), "a")},
		want:    []want{{"contact.created", "4"}},
	}, {
		// New York's fold, 2026-11-01: 01:00–01:59 local is EDT (05:00Z)
		// then EST (06:00Z). Record 6 was created at 01:10 EST and edited
		// at 01:20 EST; zone-less, both read as EDT, before the
		// watermark of 01:50 EDT.
		name: "created in a fold's second pass, read an hour early, is created", updated: true, created: true,
		watermark: time.Date(2026, 11, 1, 5, 50, 0, 0, time.UTC),
		records:   []Record{rec("6", nyFold(5, 20), nyFold(5, 10), "a")},
		want:      []want{{"contact.created", "6"}},
	}, {
		// Created at 01:59:59.5 EST (read as EDT), first version dated
		// 02:00 EST, after the fold: half a second apart, not an hour.
		name: "created with its first version across a fold's end is created", updated: true, created: true,
		watermark: time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC),
		records:   []Record{rec("7", nyFold(7, 0), nyFold(5, 59).Add(59500*time.Millisecond), "a")},
		want:      []want{{"contact.created", "7"}},
	}, {
		name: "created and edited in a fold long before the watermark is updated", updated: true, created: true,
		watermark: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC),
		records:   []Record{rec("8", nyFold(5, 40), nyFold(5, 10), "a")},
		want:      []want{{"contact.updated", "8"}},
	}, {
		name: "no created date and a partial id set: updated", updated: true, watermark: t1,
		records: []Record{rec("5", t2, time.Time{}, "a")},
		want:    []want{{"contact.updated", "5"}},
	}, {
		name: "no created date and the full id set: created", updated: true, watermark: t1, fullIDSet: true,
		records: []Record{rec("5", t2, time.Time{}, "a")},
		want:    []want{{"contact.created", "5"}},
	}, {
		name: "first cycle of start now records and emits nothing", updated: true, created: true, silent: true,
		records:    []Record{rec("1", t1, t0, "a"), rec("2", t2, t2, "b")},
		wantStored: map[string]cursor.Seen{"1": {Updated: t1, Hash: "h-a"}, "2": {Updated: t2, Hash: "h-b"}},
	}, {
		name: "first cycle of start <time> emits only what changed after it", updated: true, created: true, watermark: t1, until: t1,
		records: []Record{rec("1", t0, t0, "a"), rec("2", t1, t0, "b"), rec("3", t2, t2, "c"), rec("4", t3, t0, "d")},
		want:    []want{{"contact.created", "3"}, {"contact.updated", "4"}},
	}, {
		name:    "no updated field: a changed hash is updated",
		seen:    map[string]cursor.Seen{"1": {Hash: "h-a"}, "2": {Hash: "h-b"}},
		records: []Record{rec("1", time.Time{}, time.Time{}, "a"), rec("2", time.Time{}, time.Time{}, "changed")},
		want:    []want{{"contact.updated", "2"}},
	}, {
		name: "one id twice in a page with one version yields one event", updated: true, watermark: t1, fullIDSet: true,
		records: []Record{rec("1", t2, time.Time{}, "a"), rec("1", t2, time.Time{}, "a")},
		want:    []want{{"contact.created", "1"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &differ{res: diffResource(tt.updated, tt.created), source: "crm", watermark: tt.watermark,
				silent: tt.silent, silentUntil: tt.until, fullIDSet: tt.fullIDSet, now: t3, lookingUp: tt.lookingUp}
			seen := map[string]cursor.Seen{}
			for k, v := range tt.seen {
				seen[k] = v
			}
			pd := d.page(tt.records, seen)
			var got []want
			for _, e := range pd.events {
				got = append(got, want{e.Type, e.ObjectID})
				if e.Resource != "contacts" || e.Source != "crm" || e.Object != "contact" || !e.DetectedAt.Equal(t3) {
					t.Errorf("event %+v: wrong envelope fields", e)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events = %v, want %v", got, tt.want)
			}
			for id, w := range tt.wantStored {
				if s := seen[id]; !s.Updated.Equal(w.Updated) || s.Hash != w.Hash || s.Rev != w.Rev {
					t.Errorf("stored %s = %+v, want %+v", id, s, w)
				}
			}
			if len(pd.backwards) != tt.backwards {
				t.Errorf("%d records with a date gone back, want %d: %+v", len(pd.backwards), tt.backwards, pd.backwards)
			}
		})
	}
}

func TestEventIDDeterministic(t *testing.T) {
	d := &differ{res: diffResource(true, false), source: "crm", watermark: t0, fullIDSet: true, now: t3}
	a := d.page([]Record{rec("1", t1, time.Time{}, "a")}, map[string]cursor.Seen{})
	d.now = t3.Add(time.Hour) // detected again, later, by another cycle
	b := d.page([]Record{rec("1", t1, time.Time{}, "a")}, map[string]cursor.Seen{})
	if a.events[0].ID != b.events[0].ID {
		t.Errorf("the same change detected twice has ids %s and %s", a.events[0].ID, b.events[0].ID)
	}
	c := d.page([]Record{rec("1", t2, time.Time{}, "b")}, map[string]cursor.Seen{"1": {Updated: t1}})
	if c.events[0].ID == a.events[0].ID {
		t.Errorf("a later version reuses id %s", a.events[0].ID)
	}
	del1 := d.deleted("1", cursor.Seen{Updated: t2})
	del2 := d.deleted("1", cursor.Seen{Updated: t2})
	if del1.ID != del2.ID || del1.Type != "contact.deleted" || string(del1.Data) != "null" {
		t.Errorf("deleted events %+v and %+v", del1, del2)
	}
}

func TestDiffWritesOnlyWhatChanged(t *testing.T) {
	for _, snapshot := range []bool{false, true} {
		d := &differ{res: diffResource(true, false), watermark: t1, snapshot: snapshot, now: t3}
		seen := map[string]cursor.Seen{"1": {Updated: t1, Hash: "h-a"}, "2": {Updated: t1, Hash: "h-b"}}
		pd := d.page([]Record{rec("1", t1, time.Time{}, "a"), rec("2", t2, time.Time{}, "b2"), rec("3", t2, time.Time{}, "c")}, seen)
		var written []string
		for _, r := range pd.records {
			written = append(written, r.ID)
		}
		if fmt.Sprint(written) != "[2 3]" {
			t.Errorf("snapshot=%v: wrote %v, want the changed and the new: [2 3]", snapshot, written)
		}
		wantTouch := "[]"
		if snapshot {
			wantTouch = "[1]"
		}
		if fmt.Sprint(pd.touch) != wantTouch {
			t.Errorf("snapshot=%v: touched %v, want %s", snapshot, pd.touch, wantTouch)
		}
	}
}

func TestDiffContentTogglingBackGetsNewIDs(t *testing.T) {
	// No updated field: versions are content hashes, and a record may
	// return to a content it had before. Each change is its own event.
	d := &differ{res: diffResource(false, false), source: "crm", now: t3}
	seen := map[string]cursor.Seen{"1": {Hash: "h-A"}}
	ids := map[string]bool{}
	for _, content := range []string{"B", "A", "B", "A"} {
		pd := d.page([]Record{rec("1", time.Time{}, time.Time{}, content)}, seen)
		if len(pd.events) != 1 {
			t.Fatalf("change to %s gave %d events, want 1", content, len(pd.events))
		}
		if ids[pd.events[0].ID] {
			t.Fatalf("change to %s reuses event id %s: the outbox would drop it", content, pd.events[0].ID)
		}
		ids[pd.events[0].ID] = true
	}
}

// TestSinceInFold: a since in New York's repeated hour is taken back to
// the hour's start, 01:00 EDT, from either pass: an API comparing the
// zone-less text lists the second pass's changes (01:xx again) only so.
func TestSinceInFold(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	foldStart := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		watermark, want time.Time
	}{
		{nyFold(5, 59), foldStart},                                    // 01:58 EDT, first pass
		{nyFold(6, 30), foldStart},                                    // 01:29 EST, second pass
		{nyFold(5, 0), time.Date(2026, 11, 1, 4, 59, 0, 0, time.UTC)}, // 00:59 EDT: before the fold
		{nyFold(7, 1), nyFold(7, 0)},                                  // 02:00 EST: after it
		{t1, t0},
		{time.Time{}, time.Unix(0, 0)},
	} {
		if got := sinceOf(tc.watermark, time.Minute, ny); !got.Equal(tc.want) {
			t.Errorf("since of watermark %s = %s, want %s", tc.watermark.UTC(), got.UTC(), tc.want.UTC())
		}
	}
}

// TestOccurredInFold: record 9 was created at 01:39 EDT (05:39Z) and
// edited at 01:08 and 01:11 EST (06:08Z, 06:11Z), which read as 05:08Z and
// 05:11Z: the update is dated at its later reading, after the creation,
// not half an hour before it.
func TestOccurredInFold(t *testing.T) {
	d := &differ{res: diffResource(true, true), source: "crm", watermark: time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), now: t3}
	pd := d.page([]Record{rec("9", nyFold(5, 8), nyFold(5, 39), "a"), rec("9", nyFold(5, 11), nyFold(5, 39), "b")}, map[string]cursor.Seen{})
	if len(pd.events) != 2 {
		t.Fatalf("events %+v, want created and updated", pd.events)
	}
	c, u := pd.events[0], pd.events[1]
	if c.Type != "contact.created" || !c.OccurredAt.Equal(nyFold(5, 39)) {
		t.Errorf("first event %s occurred %s, want contact.created at 05:39Z", c.Type, c.OccurredAt.UTC())
	}
	if u.Type != "contact.updated" || !u.OccurredAt.Equal(nyFold(6, 11)) {
		t.Errorf("second event %s occurred %s, want contact.updated at 06:11Z", u.Type, u.OccurredAt.UTC())
	}
}
