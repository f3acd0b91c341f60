package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pollhook/pollhook/poller"
)

// DateLayout is the Go layout of the dates an Upstream writes (UTC,
// milliseconds); DateFormat is the same as a pollhook date pattern.
const (
	DateLayout = "2006-01-02T15:04:05.000Z"
	DateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
)

// Defaults of an Upstream.
const (
	// DefaultPageSize is the page size of a listing that asks for none.
	DefaultPageSize = 50
	// MaxPageSize caps the limit parameter.
	MaxPageSize = 1000
	// DefaultStep is how far the logical clock moves at each write.
	DefaultStep = time.Second
	// DefaultSlowFor is how long a slow response waits before answering.
	DefaultSlowFor = 3 * time.Second
	// MinLive is the fewest live records Step and Mutate leave: below it
	// they create instead of deleting.
	MinLive = 10
)

// DefaultStart is the clock's first value when UpstreamOptions.Start is
// zero.
var DefaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// The kinds of a Change.
const (
	Created = "created"
	Updated = "updated"
	Deleted = "deleted"
	// Touched is a write to the views counter only, with a new updated
	// date and the same rev: a change a resource that ignores views must
	// not report.
	Touched = "touched"
)

// Change is one entry of the ground-truth log: a write to the dataset.
type Change struct {
	// Seq numbers the changes from 1.
	Seq  int
	Kind string
	ID   int
	// Rev is the record's version after the change (for Deleted, the last
	// live one; for Touched, the one it had and keeps).
	Rev int
	// Name is the record's name after the change.
	Name string
	// Updated is the updated date the change wrote (for Deleted, the
	// tombstone's).
	Updated time.Time
	// At is the wall-clock time of the change.
	At time.Time
}

// Fault is a kind of upstream misbehaviour.
type Fault string

// The faults an Upstream injects.
const (
	// Fault5xx answers 500 or 503 (alternately) with a JSON error body.
	Fault5xx Fault = "5xx"
	// Fault429 answers 429 Too Many Requests with Retry-After: 1.
	Fault429 Fault = "429"
	// FaultSlow answers after UpstreamOptions.SlowFor, past a short
	// source timeout, or when the client gives up.
	FaultSlow Fault = "slow"
	// FaultTruncated answers 200 with the first half of the JSON body.
	FaultTruncated Fault = "truncated-json"
	// FaultHTML answers 200 with an HTML error page.
	FaultHTML Fault = "html-200"
	// FaultEmpty answers the first page with an empty list, as if the
	// resource held nothing (it applies to first pages only).
	FaultEmpty Fault = "empty-list"
	// FaultRepeat answers a cursor page with the cursor it was asked for
	// as the next one: a pagination loop (it applies to cursor requests
	// after the first page only).
	FaultRepeat Fault = "repeating-cursor"
	// FaultGarbage answers 200 with FaultSpec.Body.
	FaultGarbage Fault = "garbage"
	// FaultHuge streams a JSON body of FaultSpec.Size bytes, never holding
	// more than a small buffer of it.
	FaultHuge Fault = "huge-body"
	// FaultHide leaves the records FaultSpec.IDs out of the listing, as an
	// eventually consistent index or a replica that lags does.
	FaultHide Fault = "hide-records"
)

// MixFaults are the faults SetFaultRate mixes by default: every fault a
// healthy pollhook must ride out without losing a change.
var MixFaults = []Fault{Fault5xx, Fault429, FaultSlow, FaultTruncated, FaultHTML, FaultEmpty, FaultRepeat}

// FaultSpec says which requests a fault hits.
type FaultSpec struct {
	Kind Fault
	// Path limits the fault to requests whose path starts with it; ""
	// means every listing.
	Path string
	// FromPage limits the fault to pages at or after it (1 is the first
	// page; a cursor request counts as page 2); 0 means any page.
	FromPage int
	// Count is how many requests the fault hits; 0 means until cleared.
	Count int
	// Body is what FaultGarbage answers.
	Body []byte
	// Size is how many bytes FaultHuge streams; it announces them in
	// Content-Length unless Chunked.
	Size    int64
	Chunked bool
	// IDs are the records FaultHide leaves out.
	IDs []int
}

// UpstreamOptions configures an Upstream. The zero value is usable.
type UpstreamOptions struct {
	// Seed makes names and random choices repeatable.
	Seed uint64
	// RealTime dates each write at the wall clock (UTC, milliseconds), as
	// a real API does, moved on a millisecond past the last write's date
	// when the clock has not passed it: dates never repeat or go back.
	// Otherwise the clock is logical: Start, then Step more at each write.
	RealTime bool
	// Start is the logical clock's first value; zero means DefaultStart.
	Start time.Time
	// Step is how far the logical clock moves at each write; zero means
	// DefaultStep.
	Step time.Duration
	// Initial is how many records exist at start; they are logged as
	// Created changes.
	Initial int
	// PageDelay is added to every listing response.
	PageDelay time.Duration
	// SlowFor is how long FaultSlow waits; zero means DefaultSlowFor.
	SlowFor time.Duration
	// Pad is how many bytes of filler each record carries.
	Pad int
	// Zone, when set, makes the dates local times in it written without
	// a zone or offset (LocalLayout), as some APIs do: in a DST fold the
	// repeated hour's two passes read the same.
	Zone *time.Location
}

// LocalLayout is the Go layout of the dates an Upstream with a Zone
// writes; LocalFormat is the same as a pollhook date pattern.
const (
	LocalLayout = "2006-01-02T15:04:05.000"
	LocalFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS"
)

// ListRequest describes a listing request, for UpstreamOptions hooks.
type ListRequest struct {
	Path   string
	Page   int
	Offset int
	Cursor string
}

// UpstreamStats counts what an Upstream served.
type UpstreamStats struct {
	// Requests counts listing requests.
	Requests int
	// Lookups counts requests for one record (GET …/items/{id}).
	Lookups int
	// Faults counts the requests each fault hit.
	Faults map[Fault]int
}

// FaultsInjected is the total of s.Faults.
func (s UpstreamStats) FaultsInjected() int {
	n := 0
	for _, v := range s.Faults {
		n += v
	}
	return n
}

// Upstream is a paginated JSON API over a dataset of records that the test
// mutates. It keeps the ground-truth log of every change and injects
// faults on command. It is an http.Handler and is safe for concurrent use.
//
// # HTTP API
//
//	GET <any path ending in /items>?since=D&offset=N&page=P&limit=M&cursor=ID&order=updated&include_deleted=true
//
// lists the records in id order (a stable order), or with order=updated
// by updated date (then id), as an API listing "oldest change first" does:
// an edit moves a record to the end. It lists those updated at or after
// since (DateLayout, optional; or since_local, a date as DateText writes
// it, compared with the records' as text, as an API keeping zone-less
// local dates as text does), from offset N (offset paging), from page P
// (page paging: offset (P-1)·M) or after id ID (keyset paging, the
// cursor), at most M (default DefaultPageSize). Deleted records are left
// out unless include_deleted=true, which lists them as tombstones
// ("deleted": true, updated at the delete). The body is
//
//	{"items":[{"id":7,"rev":2,"name":"…","created":"2026-01-01T00:00:01.000Z",
//	           "updated":"2026-01-01T00:00:09.000Z","views":3}, …],
//	 "total":120, "next":"57", "next_url":"/x/items?limit=50&page=3"}
//
// where next is the cursor of the next page, null on the last one. A page
// request (page=P) names the next page as the same URL with page=P+1, in
// next_url and in a Link header (rel="next"), both positional, as many
// APIs' are: a record deleted or moved to the end ahead of the walk
// shifts the later ones back, and one of them onto a page already read.
//
//	GET <any path ending in /items/ID>
//
// is record ID alone, the same JSON as in a listing; 404 when it is
// deleted or never was.
type Upstream struct {
	opts     UpstreamOptions
	inFlight atomic.Int64

	mu       sync.Mutex
	rng      *rand.Rand
	clock    time.Time
	recs     map[int]*record
	ids      []int // every id ever created, ascending
	nextID   int
	log      []Change
	faults   []*FaultSpec
	rate     float64
	mix      []Fault
	stats    UpstreamStats
	hook     func(ListRequest)
	flip     bool
	excluded map[int]bool
}

type record struct {
	id               int
	rev              int
	views            int // moved by Touch only
	name             string
	created, updated time.Time
	deleted          bool
	badDate          string // written instead of the updated date when set
}

// NewUpstream returns an Upstream holding opts.Initial records.
func NewUpstream(opts UpstreamOptions) *Upstream {
	if opts.Start.IsZero() {
		opts.Start = DefaultStart
	}
	if opts.Step <= 0 {
		opts.Step = DefaultStep
	}
	if opts.SlowFor <= 0 {
		opts.SlowFor = DefaultSlowFor
	}
	clock := opts.Start
	if opts.RealTime {
		clock = time.Time{}
	}
	u := &Upstream{
		opts:     opts,
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		clock:    clock,
		recs:     map[int]*record{},
		nextID:   1,
		stats:    UpstreamStats{Faults: map[Fault]int{}},
		excluded: map[int]bool{},
	}
	for range opts.Initial {
		u.mu.Lock()
		u.create(u.tick())
		u.mu.Unlock()
	}
	return u
}

// tick advances the clock and returns it. The caller holds u.mu.
func (u *Upstream) tick() time.Time {
	if !u.opts.RealTime {
		u.clock = u.clock.Add(u.opts.Step)
		return u.clock
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if !now.After(u.clock) {
		now = u.clock.Add(time.Millisecond)
	}
	u.clock = now
	return now
}

// logChange appends a change to the log. The caller holds u.mu.
func (u *Upstream) logChange(kind string, r *record) Change {
	c := Change{Seq: len(u.log) + 1, Kind: kind, ID: r.id, Rev: r.rev, Name: r.name, Updated: r.updated, At: time.Now()}
	u.log = append(u.log, c)
	return c
}

func (u *Upstream) create(at time.Time) Change {
	r := &record{id: u.nextID, rev: 1, name: names[u.rng.IntN(len(names))], created: at, updated: at}
	u.nextID++
	u.recs[r.id] = r
	u.ids = append(u.ids, r.id)
	return u.logChange(Created, r)
}

func (u *Upstream) update(r *record, at time.Time) Change {
	r.rev++
	r.updated = at
	r.name = names[u.rng.IntN(len(names))]
	return u.logChange(Updated, r)
}

func (u *Upstream) delete(r *record, at time.Time) Change {
	r.deleted = true
	c := u.logChange(Deleted, r)
	r.updated = at // the tombstone's date, for include_deleted listings
	c.Updated = at
	u.log[len(u.log)-1] = c
	return c
}

// live returns the ids of live records, ascending. The caller holds u.mu.
func (u *Upstream) live() []int {
	out := make([]int, 0, len(u.recs))
	for _, id := range u.ids {
		if !u.recs[id].deleted {
			out = append(out, id)
		}
	}
	return out
}

// pick returns a random live record, or nil. The caller holds u.mu.
func (u *Upstream) pick() *record {
	live := u.live()
	if len(live) == 0 {
		return nil
	}
	return u.recs[live[u.rng.IntN(len(live))]]
}

// Create adds a record.
func (u *Upstream) Create() Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.create(u.tick())
}

// Update edits record id, which must be live; ok is false when it is not.
func (u *Upstream) Update(id int) (c Change, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.recs[id]
	if r == nil || r.deleted {
		return Change{}, false
	}
	return u.update(r, u.tick()), true
}

// UpdateMany edits the live records of ids at once (no listing sees some
// of the edits without the others), each at the next tick of the clock.
func (u *Upstream) UpdateMany(ids []int) []Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []Change
	for _, id := range ids {
		if r := u.recs[id]; r != nil && !r.deleted {
			out = append(out, u.update(r, u.tick()))
		}
	}
	return out
}

// UpdateAt edits record id, which must be live, giving it the updated
// date at rather than the clock's: a date in the future, or behind the
// record's last. ok is false when the record is not live.
func (u *Upstream) UpdateAt(id int, at time.Time) (c Change, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.recs[id]
	if r == nil || r.deleted {
		return Change{}, false
	}
	return u.update(r, at.Truncate(time.Millisecond)), true
}

// Touch moves the views counter of record id and its updated date, and
// nothing else: the record keeps its rev. ok is false when it is not
// live.
func (u *Upstream) Touch(id int) (c Change, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.recs[id]
	if r == nil || r.deleted {
		return Change{}, false
	}
	r.views++
	r.updated = u.tick()
	return u.logChange(Touched, r), true
}

// TouchAny touches a random live record; ok is false when none is live.
func (u *Upstream) TouchAny() (c Change, ok bool) {
	u.mu.Lock()
	r := u.pick()
	u.mu.Unlock()
	if r == nil {
		return Change{}, false
	}
	return u.Touch(r.id)
}

// Delete removes record id; ok is false when it is not live.
func (u *Upstream) Delete(id int) (c Change, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	r := u.recs[id]
	if r == nil || r.deleted {
		return Change{}, false
	}
	return u.delete(r, u.tick()), true
}

// Step applies one random write: a create (40%), an update (48%) or a
// delete (12%; a create when fewer than MinLive records are live).
func (u *Upstream) Step() Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.step(u.tick())
}

func (u *Upstream) step(at time.Time) Change {
	n := u.rng.IntN(100)
	switch {
	case n < 40:
		return u.create(at)
	case n < 88:
		if r := u.pick(); r != nil {
			return u.update(r, at)
		}
		return u.create(at)
	default:
		if len(u.live()) <= MinLive {
			return u.create(at)
		}
		return u.delete(u.pick(), at)
	}
}

// Burst applies n writes (creates and updates of distinct records) that
// all share one updated date, as a bulk import does.
func (u *Upstream) Burst(n int) []Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	at := u.tick()
	touched := map[int]bool{}
	var out []Change
	for range n {
		if u.rng.IntN(3) == 0 {
			out = append(out, u.create(at))
			continue
		}
		r := u.pick()
		if r == nil || touched[r.id] {
			out = append(out, u.create(at))
			continue
		}
		touched[r.id] = true
		out = append(out, u.update(r, at))
	}
	return out
}

// Late applies a write whose updated date is behind the clock by up to
// behind: a record that becomes visible after later ones, as a long
// transaction makes it. An update stays after the record's own previous
// date; a create is used when no record allows that.
func (u *Upstream) Late(behind time.Duration) Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	at := u.tick().Add(-time.Duration(1 + u.rng.Int64N(int64(behind)))).Truncate(time.Millisecond)
	if u.rng.IntN(2) == 0 {
		if r := u.pick(); r != nil && r.updated.Before(at) {
			return u.update(r, at)
		}
	}
	return u.create(at)
}

// Mutate applies a random mix of writes: usually one Step, sometimes a
// Burst of up to 80 writes sharing a date (4%), sometimes a Late write up
// to lateBy behind the clock (10%; none when lateBy is 0).
func (u *Upstream) Mutate(lateBy time.Duration) []Change {
	u.mu.Lock()
	n := u.rng.IntN(100)
	burst := 5 + u.rng.IntN(76)
	u.mu.Unlock()
	switch {
	case n < 4:
		return u.Burst(burst)
	case n < 14 && lateBy > 0:
		return []Change{u.Late(lateBy)}
	default:
		return []Change{u.Step()}
	}
}

// DeleteMany deletes the given share (0..1) of the live records, chosen at
// random, at one date.
func (u *Upstream) DeleteMany(share float64) []Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	live := u.live()
	u.rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	at := u.tick()
	var out []Change
	for _, id := range live[:int(share*float64(len(live)))] {
		out = append(out, u.delete(u.recs[id], at))
	}
	return out
}

// SetBadDate makes record id write text instead of its updated date.
// While it does, the record is left out of Truth's expectations: pollhook
// skips it by design. An empty text restores the date.
func (u *Upstream) SetBadDate(id int, text string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if r := u.recs[id]; r != nil {
		r.badDate = text
		u.excluded[id] = text != ""
	}
}

// Live returns the ids of the live records, ascending.
func (u *Upstream) Live() []int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.live()
}

// Log returns every change so far, oldest first.
func (u *Upstream) Log() []Change {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.log)
}

// Version is one version of a record.
type Version struct {
	Rev     int
	Updated time.Time
}

// Object is the ground truth of one record: every version it had and
// whether it is deleted now.
type Object struct {
	ID       int
	Versions []Version
	Deleted  bool
	// Names is the name of each version, by rev.
	Names map[int]string
	// Touched are the updated dates each version took later, by rev: a
	// Touch moved its views and its date, and kept its rev.
	Touched map[int][]time.Time
	// Excluded marks a record that was given a malformed date: pollhook
	// skips it by design, so nothing is expected of it.
	Excluded bool
}

// Final returns the last version.
func (o *Object) Final() Version { return o.Versions[len(o.Versions)-1] }

// Truth returns the ground truth of every record ever created, by id.
func (u *Upstream) Truth() map[int]*Object {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make(map[int]*Object, len(u.recs))
	for _, c := range u.log {
		o := out[c.ID]
		if o == nil {
			o = &Object{ID: c.ID, Excluded: u.excluded[c.ID], Names: map[int]string{}, Touched: map[int][]time.Time{}}
			out[c.ID] = o
		}
		switch c.Kind {
		case Deleted:
			o.Deleted = true
		case Touched:
			o.Touched[c.Rev] = append(o.Touched[c.Rev], c.Updated)
		default:
			o.Versions = append(o.Versions, Version{Rev: c.Rev, Updated: c.Updated})
			o.Names[c.Rev] = c.Name
		}
	}
	return out
}

// SetFault adds a fault; the first fault that matches a request hits it.
func (u *Upstream) SetFault(f FaultSpec) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.faults = append(u.faults, &f)
}

// SetFaultRate makes each listing request hit, with probability rate, one
// of kinds drawn at random (MixFaults when none is given) among those that
// apply to it (FaultEmpty hits first pages only, FaultRepeat cursor pages
// after the first).
func (u *Upstream) SetFaultRate(rate float64, kinds ...Fault) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(kinds) == 0 {
		kinds = MixFaults
	}
	u.rate, u.mix = rate, slices.Clone(kinds)
}

// ClearFaults removes every fault and the fault rate.
func (u *Upstream) ClearFaults() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.faults, u.rate, u.mix = nil, 0, nil
}

// SetHook sets a function called with each listing request before it is
// served, outside the Upstream's lock (so it may mutate the dataset); nil
// removes it.
func (u *Upstream) SetHook(fn func(ListRequest)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.hook = fn
}

// Stats returns what the Upstream served so far.
func (u *Upstream) Stats() UpstreamStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.Faults = map[Fault]int{}
	for k, v := range u.stats.Faults {
		s.Faults[k] = v
	}
	return s
}

// InFlight is the number of listing requests being served.
func (u *Upstream) InFlight() int { return int(u.inFlight.Load()) }

type wireRecord struct {
	ID      int    `json:"id"`
	Rev     int    `json:"rev"`
	Name    string `json:"name"`
	Created string `json:"created"`
	Updated string `json:"updated"`
	Deleted bool   `json:"deleted,omitempty"`
	Pad     string `json:"pad,omitempty"`
	Views   int    `json:"views"`
}

type wirePage struct {
	Items   []wireRecord `json:"items"`
	Total   int          `json:"total"`
	Next    *string      `json:"next"`
	NextURL *string      `json:"next_url,omitempty"`
}

// DateText is t as the Upstream writes dates.
func (u *Upstream) DateText(t time.Time) string {
	if u.opts.Zone != nil {
		return t.In(u.opts.Zone).Format(LocalLayout)
	}
	return t.UTC().Format(DateLayout)
}

// ServeHTTP serves the listing described on Upstream.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.inFlight.Add(1)
	defer u.inFlight.Add(-1)
	if dir, id, ok := strings.Cut(path.Base(path.Dir(r.URL.Path))+"/"+path.Base(r.URL.Path), "/"); r.Method == http.MethodGet && ok && dir == "items" {
		u.serveItem(w, r, id)
		return
	}
	if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/items") {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	lr := ListRequest{Path: r.URL.Path, Cursor: q.Get("cursor")}
	pageNo := 0
	limit := DefaultPageSize
	var err error
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			http.Error(w, `{"error":"bad limit"}`, http.StatusBadRequest)
			return
		}
		limit = min(limit, MaxPageSize)
	}
	if v := q.Get("offset"); v != "" {
		if lr.Offset, err = strconv.Atoi(v); err != nil || lr.Offset < 0 {
			http.Error(w, `{"error":"bad offset"}`, http.StatusBadRequest)
			return
		}
	}
	// pollhook starts each offset page poller.Overlap(limit) records
	// before the end of the one before: offsets 0, step, 2·step … are
	// pages 1, 2, 3 ….
	lr.Page = lr.Offset/max(limit-poller.Overlap(limit), 1) + 1
	if lr.Cursor != "" {
		lr.Page = 2
	}
	if v := q.Get("page"); v != "" {
		if pageNo, err = strconv.Atoi(v); err != nil || pageNo < 1 {
			http.Error(w, `{"error":"bad page"}`, http.StatusBadRequest)
			return
		}
		lr.Page, lr.Offset = pageNo, (pageNo-1)*limit
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(DateLayout, v); err != nil {
			http.Error(w, `{"error":"bad since"}`, http.StatusBadRequest)
			return
		}
	}
	sinceText := q.Get("since_local")
	after := 0
	if lr.Cursor != "" {
		if after, err = strconv.Atoi(lr.Cursor); err != nil {
			http.Error(w, `{"error":"bad cursor"}`, http.StatusBadRequest)
			return
		}
	}

	if d := u.opts.PageDelay; d > 0 && !wait(r.Context(), d) {
		return
	}
	u.mu.Lock()
	hook := u.hook
	u.mu.Unlock()
	if hook != nil {
		hook(lr)
	}

	u.mu.Lock()
	u.stats.Requests++
	fault := u.fault(lr)
	var hide []int
	if fault.Kind == FaultHide {
		hide = fault.IDs
	}
	page := u.page(since, sinceText, lr.Offset, after, limit, q.Get("include_deleted") == "true", q.Get("order") == "updated", hide)
	if pageNo > 0 && page.Next != nil {
		next := *r.URL
		nq := next.Query()
		nq.Set("page", strconv.Itoa(pageNo+1))
		next.RawQuery = nq.Encode()
		link := next.RequestURI()
		page.NextURL = &link
		w.Header().Set("Link", "<"+link+`>; rel="next"`)
	}
	// A logical clock is the API's: its Date header says so, as a real
	// API's does (the HTTP server sets the wall clock's otherwise).
	if !u.opts.RealTime {
		w.Header().Set("Date", u.clock.UTC().Format(http.TimeFormat))
	}
	u.mu.Unlock()

	switch fault.Kind {
	case Fault5xx:
		u.mu.Lock()
		u.flip = !u.flip
		code := http.StatusInternalServerError
		if u.flip {
			code = http.StatusServiceUnavailable
		}
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(`{"error":"internal error, please retry"}`))
		return
	case Fault429:
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"rate limited"}`, http.StatusTooManyRequests)
		return
	case FaultSlow:
		if !wait(r.Context(), u.opts.SlowFor) {
			return
		}
	case FaultHTML:
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1><p>The upstream server is temporarily unavailable.</p></body></html>\n"))
		return
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.Write(fault.Body)
		return
	case FaultHuge:
		streamHuge(w, fault.Size, fault.Chunked)
		return
	case FaultEmpty:
		page.Items, page.Next = []wireRecord{}, nil
	case FaultRepeat:
		c := lr.Cursor
		page.Next = &c
	}
	body, err := json.Marshal(page)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if fault.Kind == FaultTruncated {
		body = body[:len(body)/2]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// fault returns the fault that hits request lr (Kind "" for none) and
// counts it. The caller holds u.mu.
func (u *Upstream) fault(lr ListRequest) FaultSpec {
	for i, f := range u.faults {
		if !strings.HasPrefix(lr.Path, f.Path) || lr.Page < f.FromPage || !applies(f.Kind, lr) {
			continue
		}
		if f.Count > 0 {
			if f.Count--; f.Count == 0 {
				u.faults = slices.Delete(u.faults, i, i+1)
			}
		}
		u.stats.Faults[f.Kind]++
		return *f
	}
	if u.rate > 0 && u.rng.Float64() < u.rate {
		var fit []Fault
		for _, k := range u.mix {
			if applies(k, lr) {
				fit = append(fit, k)
			}
		}
		if len(fit) > 0 {
			k := fit[u.rng.IntN(len(fit))]
			u.stats.Faults[k]++
			return FaultSpec{Kind: k}
		}
	}
	return FaultSpec{}
}

// applies says whether fault k can hit request lr.
func applies(k Fault, lr ListRequest) bool {
	switch k {
	case FaultEmpty:
		return lr.Page == 1
	case FaultRepeat:
		return lr.Cursor != ""
	}
	return true
}

// page builds a listing page. The caller holds u.mu.
func (u *Upstream) page(since time.Time, sinceText string, offset, after, limit int, tombstones, byUpdated bool, hide []int) wirePage {
	var match []*record
	for _, id := range u.ids {
		r := u.recs[id]
		if (r.deleted && !tombstones) || r.updated.Before(since) || (sinceText != "" && u.DateText(r.updated) < sinceText) || slices.Contains(hide, id) {
			continue
		}
		match = append(match, r)
	}
	if byUpdated {
		slices.SortStableFunc(match, func(a, b *record) int { return a.updated.Compare(b.updated) })
	}
	p := wirePage{Items: []wireRecord{}, Total: len(match)}
	start := offset
	if after > 0 {
		start, _ = slices.BinarySearchFunc(match, after+1, func(r *record, id int) int { return r.id - id })
	}
	if start > len(match) {
		start = len(match)
	}
	end := min(start+limit, len(match))
	pad := ""
	if u.opts.Pad > 0 {
		pad = strings.Repeat("x", u.opts.Pad)
	}
	for _, r := range match[start:end] {
		p.Items = append(p.Items, u.wire(r, pad))
	}
	if end < len(match) && end > start {
		next := strconv.Itoa(match[end-1].id)
		p.Next = &next
	}
	return p
}

// wire is r as the API writes it. The caller holds u.mu.
func (u *Upstream) wire(r *record, pad string) wireRecord {
	wr := wireRecord{ID: r.id, Rev: r.rev, Name: r.name, Created: u.DateText(r.created),
		Updated: u.DateText(r.updated), Deleted: r.deleted, Pad: pad, Views: r.views}
	if r.badDate != "" {
		wr.Updated = r.badDate
	}
	return wr
}

// serveItem answers GET …/items/{id}: the record, or 404.
func (u *Upstream) serveItem(w http.ResponseWriter, r *http.Request, id string) {
	if d := u.opts.PageDelay; d > 0 && !wait(r.Context(), d/4) {
		return
	}
	n, err := strconv.Atoi(id)
	u.mu.Lock()
	u.stats.Lookups++
	rec := u.recs[n]
	var body []byte
	if err == nil && rec != nil && !rec.deleted {
		body, err = json.Marshal(u.wire(rec, ""))
	}
	u.mu.Unlock()
	if body == nil || err != nil {
		http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

// streamHuge writes a JSON listing of size bytes a chunk at a time, with
// a Content-Length unless chunked.
func streamHuge(w http.ResponseWriter, size int64, chunked bool) {
	w.Header().Set("Content-Type", "application/json")
	if !chunked {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	}
	head, tail := []byte(`{"items":[`), []byte(`{"id":0}]}`)
	item := []byte(`{"id":1,"rev":1,"name":"` + strings.Repeat("y", 200) + `","created":"2026-01-01T00:00:00.000Z","updated":"2026-01-01T00:00:00.000Z"},`)
	chunk := bytes.Repeat(item, (64<<10)/len(item))
	left := size - int64(len(head)) - int64(len(tail))
	if _, err := w.Write(head); err != nil {
		return
	}
	for left > 0 {
		b := chunk
		if int64(len(b)) > left {
			b = bytes.Repeat([]byte(" "), int(left)) // whitespace keeps it JSON
		}
		if _, err := w.Write(b); err != nil {
			return
		}
		left -= int64(len(b))
	}
	w.Write(tail)
}

// wait waits d or until ctx is done, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

var names = []string{
	"Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov",
	"Donald Knuth", "Frances Allen", "Ken Thompson", "Radia Perlman", "John Backus",
	"Margaret Hamilton", "Leslie Lamport", "Niklaus Wirth", "Karen Spärck Jones", "Tony Hoare",
}
