package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/config/datefmt"
	"github.com/pollhook/pollhook/cursor"
)

// Store is what a Poller keeps between pages and cycles. *cursor.Store
// implements it.
type Store interface {
	ResourceState(ctx context.Context, resource string) (cursor.ResourceState, error)
	InitResource(ctx context.Context, resource string, watermark time.Time) error
	BeginCycle(ctx context.Context, resource string, lease cursor.Lease) (int64, error)
	Seen(ctx context.Context, resource string, ids []string) (map[string]cursor.Seen, error)
	Contents(ctx context.Context, resource string, ids []string) (map[string]string, error)
	CommitPage(ctx context.Context, p cursor.Page) error
	Missing(ctx context.Context, resource string, cycle int64, after string, limit int) (cursor.MissingRecords, error)
	FinishCycle(ctx context.Context, f cursor.Finish) (cursor.FinishResult, error)
	RecordCycle(ctx context.Context, lease cursor.Lease, c cursor.CycleRecord) error
}

// Options are a Poller's collaborators; the zero value is production's.
type Options struct {
	// Client fetches from the source. The resources of one source should
	// share one (see NewClient): its rate limit, its connections and its
	// OAuth2 token are the source's. Nil makes one for this Poller alone,
	// from Transport, Sleep and Logger.
	Client *Client
	// Transport carries the upstream requests; nil uses a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Sleep waits between fetch retries; nil waits on a real timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives the poller's logs; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, records every cycle.
	Metrics *Metrics
	// AfterPage, when set, runs after each page commits; an error from it
	// fails the cycle there, as a crash would.
	AfterPage func(page int) error
}

// Poller runs the cycles of one resource. A Poller runs one cycle at a
// time: Cycle must not be called concurrently on the same Poller.
type Poller struct {
	res     *config.Resource
	src     *config.Source
	store   Store
	fetcher *Fetcher
	now     func() time.Time
	log     *slog.Logger
	after   func(int) error
	metrics *Metrics
	// retired is set by Metrics.Forget, under its lock: the poller's
	// cycles record no metrics any more.
	retired bool
	hist    history
}

// New returns the Poller of res, which polls src and records in store.
func New(res *config.Resource, src *config.Source, store Store, opts Options) (*Poller, error) {
	client := opts.Client
	if client == nil {
		var err error
		client, err = NewClient(*src, ClientOptions{Transport: opts.Transport, Sleep: opts.Sleep, Logger: opts.Logger})
		if err != nil {
			return nil, fmt.Errorf("create poller of %s: %w", res.Name, err)
		}
	}
	x, err := NewExtractor(res)
	if err != nil {
		return nil, fmt.Errorf("create poller of %s: %w", res.Name, err)
	}
	p := &Poller{
		res: res, src: src, store: store,
		fetcher: NewFetcher(res, client, x),
		now:     opts.Now, log: opts.Logger, after: opts.AfterPage, metrics: opts.Metrics,
		hist: history{
			keep:        res.KeepContent,
			fields:      len(res.IgnoreFields) > 0 || len(res.WatchFields) > 0,
			contentHash: x.ContentHash,
		},
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("resource", res.Name)
	return p, nil
}

// Resource returns the configuration of the polled resource.
func (p *Poller) Resource() *config.Resource { return p.res }

// CycleResult says what one cycle did.
type CycleResult struct {
	Resource string
	Cycle    int64
	// Silent is true for a first cycle that only records what exists.
	Silent  bool
	Pages   int
	Records int
	// Skipped counts records reported and skipped (no id, bad date);
	// FirstSkips are the first of them (up to MaxFirstSkips), with why.
	Skipped    int
	FirstSkips []Skip
	// Future counts records whose updated date is after the cycle began.
	Future int
	// Backwards counts records reported as updated although their
	// updated date is before the one the store held: their content
	// changed.
	Backwards int
	Created   int
	Updated   int
	Deleted   int64
	HeldBack  int64
	// Known is the number of records the store knows after a complete
	// cycle; 0 after a failed one.
	Known int64
	// Missing counts the known records a snapshot cycle did not see, and
	// Suspected those of them it did not delete either: each is deleted
	// when the next complete listing misses it too or, with item_url,
	// when a lookup finds it gone.
	Missing   int64
	Suspected int64
	// Lookups says what the item_url lookups of the missing records
	// found.
	Lookups Lookups
	// Watermark is the resource's watermark after the cycle.
	Watermark time.Time
	Duration  time.Duration
}

// SkippedAllError fails a first cycle (start: now) that skipped every
// record it read: it could record nothing of what exists.
type SkippedAllError struct {
	// Skipped is how many records were skipped; First, the first of them.
	Skipped int
	First   []Skip
}

func (e *SkippedAllError) Error() string {
	var reasons []string
	for _, s := range e.First {
		if !slices.Contains(reasons, s.Reason) {
			reasons = append(reasons, s.Reason)
		}
	}
	return fmt.Sprintf("the first cycle skipped every record it read (%d: %s), so it recorded nothing; it does not count, "+
		"and the next cycle is the first again: check id_field and dates against a record of the API", e.Skipped, strings.Join(reasons, "; "))
}

// Events is the number of events the cycle wrote.
func (r CycleResult) Events() int64 { return int64(r.Created+r.Updated) + r.Deleted }

// maxSkipLogs is how many skipped records a cycle logs one by one; the
// rest are counted in one line at its end.
const maxSkipLogs = 10

// MaxFirstSkips is how many skipped records a CycleResult names.
const MaxFirstSkips = 3

// Cycle fetches every page once, commits each page's record versions and
// events in one transaction, and, when every page was fetched, commits the
// advanced watermark and (in snapshot mode) the deletes. A cycle that
// fails part-way keeps the pages it committed and leaves the watermark
// where it was, so the next cycle fetches the rest again.
//
// lease is the resource's lease (cursor.ResourceLease), held by the
// caller: every commit of the cycle checks it, so a process that lost it
// meanwhile commits nothing more, and the cycle fails with an error
// wrapping cursor.ErrLeaseLost.
//
// A cycle that began (it has a number) is recorded in the store's history
// when it ends, complete, failed or stopped, under the same lease; a
// failure to record it is logged and does not fail the cycle.
func (p *Poller) Cycle(ctx context.Context, lease cursor.Lease) (CycleResult, error) {
	start := p.now()
	res, err := p.cycle(ctx, lease, start)
	if ctx.Err() == nil {
		p.metrics.Observe(p, res, err)
	}
	if res.Cycle > 0 {
		p.record(context.WithoutCancel(ctx), lease, start, res, err)
	}
	return res, err
}

// record writes the history of a cycle that began at start.
func (p *Poller) record(ctx context.Context, lease cursor.Lease, start time.Time, res CycleResult, err error) {
	c := cursor.CycleRecord{
		Resource: res.Resource, Cycle: res.Cycle, Started: start, Ended: start.Add(res.Duration),
		Pages: int64(res.Pages), Records: int64(res.Records), Skipped: int64(res.Skipped),
		Created: int64(res.Created), Updated: int64(res.Updated), Deleted: res.Deleted, HeldBack: res.HeldBack,
		Known: res.Known, Watermark: res.Watermark, Silent: res.Silent,
	}
	if err != nil {
		c.Known, c.Error = -1, err.Error()
	}
	if rerr := p.store.RecordCycle(ctx, lease, c); rerr != nil {
		level := slog.LevelWarn
		if errors.Is(rerr, cursor.ErrLeaseLost) {
			level = slog.LevelDebug // the cycle itself says so
		}
		p.log.Log(ctx, level, "record the cycle in the history", "cycle", res.Cycle, "error", rerr)
	}
}

// sinceOf is the time a cycle asks for the changes since: the watermark
// less the lookback, or the epoch for a resource without one. A since
// whose wall-clock time in loc falls in a DST fold is taken back to the
// fold's start: an API that compares zone-less dates as text lists the
// repeated hour's second pass only from its earliest wall-clock time.
// What that re-reads is the same versions again: nothing.
func sinceOf(watermark time.Time, lookback time.Duration, loc *time.Location) time.Time {
	since := watermark.Add(-lookback)
	if watermark.IsZero() || since.Before(time.Unix(0, 0)) {
		return time.Unix(0, 0)
	}
	return datefmt.FoldStart(since.In(loc))
}

func (p *Poller) cycle(ctx context.Context, lease cursor.Lease, start time.Time) (CycleResult, error) {
	res := CycleResult{Resource: p.res.Name}
	d, err := p.begin(ctx, &res, lease)
	if err != nil {
		return res, err
	}
	// Until the cycle completes, the watermark stays where it was.
	res.Watermark = d.watermark
	loc := time.UTC
	if p.res.Dates.Updated != nil {
		loc = p.res.Dates.Updated.Location
	}
	since := sinceOf(d.watermark, p.res.Lookback.D(), loc)
	watermark := d.watermark
	// Records dated after the cycle began (a clock ahead of ours, or a
	// bad date): counted, and the watermark stops at the cycle's start, so
	// that one far-future date cannot blind the resource to real changes.
	future, latest := 0, time.Time{}
	// The API's clock when the walk began (the first page's Date header):
	// a change made during the walk is dated after it, whatever the skew
	// between the clocks, so a watermark capped there re-reads it next
	// cycle.
	var apiStart time.Time
	// control is a record the walk listed: a lookup at item_url must find
	// it before a lookup that does not find another can confirm a delete.
	control := ""
	// A page fetched is a page committed: a stop signal cancels ctx, but
	// the page in hand still commits whole before the cycle ends.
	commitCtx := context.WithoutCancel(ctx)
	err = p.fetcher.Each(ctx, p.res.Template.Expand(since, loc), func(pg Page) error {
		ids := make([]string, len(pg.Records))
		for i, r := range pg.Records {
			ids[i] = r.ID
		}
		seen, err := p.store.Seen(commitCtx, p.res.Name, ids)
		if err != nil {
			return err
		}
		if err := p.readContents(commitCtx, d, pg.Records, seen); err != nil {
			return err
		}
		if pg.Number == 1 {
			apiStart = pg.Date
		}
		if len(pg.Records) > 0 {
			control = pg.Records[len(pg.Records)-1].ID
		}
		pd := d.page(pg.Records, seen)
		touch := pd.touch
		for _, s := range pg.Skips {
			if res.Skipped < maxSkipLogs {
				p.log.Warn("record skipped", "page", pg.Number, "index", s.Index, "object_id", s.ID, "reason", s.Reason)
			}
			if len(res.FirstSkips) < MaxFirstSkips {
				res.FirstSkips = append(res.FirstSkips, s)
			}
			res.Skipped++
			if s.ID != "" {
				touch = append(touch, s.ID)
			}
		}
		err = p.store.CommitPage(commitCtx, cursor.Page{
			Resource: p.res.Name, Cycle: res.Cycle, Lease: lease,
			Records: pd.records, Touch: touch, Events: pd.events,
		})
		if err != nil {
			return err
		}
		if pd.maxUpdated.After(watermark) {
			watermark = pd.maxUpdated
		}
		// A record changed during the walk is dated after the cycle began
		// but not after its page was served: only a date past that (with
		// a second for the Date header's resolution) is in the future.
		served := p.now()
		if pg.Date.After(served) {
			served = pg.Date
		}
		if horizon := served.Add(time.Second); pd.maxUpdated.After(horizon) {
			future += pd.future(horizon)
			if pd.maxUpdated.After(latest) {
				latest = pd.maxUpdated
			}
		}
		for _, b := range pd.backwards {
			if res.Backwards < maxSkipLogs {
				p.log.Warn("record's updated date went back while its content changed: reported as updated",
					"object_id", b.id, "updated", b.given, "stored_updated", b.held)
			}
			res.Backwards++
		}
		res.Pages++
		res.Records += len(pg.Records)
		res.Created += pd.created
		res.Updated += pd.updated
		if p.after != nil {
			return p.after(pg.Number)
		}
		return nil
	})
	if err != nil {
		res.Duration = p.now().Sub(start)
		return res, fmt.Errorf("poll %s: %w", p.res.Name, err)
	}
	if watermark.After(start) {
		watermark = start
	}
	if !apiStart.IsZero() && watermark.After(apiStart) {
		if watermark.Sub(apiStart) > p.res.Lookback.D() {
			// Changes dated after the walk began, by more than the
			// lookback: the next cycle re-reads from the API's Date.
			// Logged, as a Date far behind the records' dates (a cache,
			// a proxy) would hold the watermark back every cycle.
			p.log.Info("records dated after the walk began: the watermark stops at the first page's Date header",
				"latest", watermark, "api_date", apiStart)
		}
		watermark = apiStart
	}
	if d.silent && res.Records == 0 && res.Skipped > 0 {
		// A first cycle records what exists, so that only later changes
		// are reported. One that could use none of the records it read
		// (a misspelt id_field, a date format that does not fit) records
		// nothing, and does not count: the next cycle, once the config is
		// fixed, is the first again, not one that reports every record
		// as new.
		res.Duration = p.now().Sub(start)
		return res, fmt.Errorf("poll %s: %w", p.res.Name, &SkippedAllError{Skipped: res.Skipped, First: res.FirstSkips})
	}
	// Deletes are found now, at the cycle's end: their events say so.
	d.now = p.now().UTC()
	res.Future = future
	if future > 0 {
		p.log.Warn("records dated in the future: the watermark stops at the cycle's start",
			"records", future, "latest", latest, "cycle_start", start)
	}
	finish := cursor.Finish{
		Resource:    p.res.Name,
		Cycle:       res.Cycle,
		Lease:       lease,
		Watermark:   watermark,
		Snapshot:    p.res.Deletes == config.DeletesSnapshot,
		DeleteGuard: *p.res.DeleteGuard,
		Deleted:     d.deleted,
		WatchFrom:   p.watchFrom(watermark, start, apiStart),
	}
	if finish.Snapshot && p.res.ItemTemplate != nil {
		finish.LookedUp = true
		if finish.Gone, err = p.confirm(ctx, commitCtx, &res, lease, d, control); err != nil {
			res.Duration = p.now().Sub(start)
			return res, fmt.Errorf("poll %s: %w", p.res.Name, err)
		}
	}
	finish.DropContent = !p.res.KeepContent
	finish.Now = p.now()
	fin, err := p.store.FinishCycle(commitCtx, finish)
	res.Duration = p.now().Sub(start)
	if err != nil {
		return res, fmt.Errorf("poll %s: %w", p.res.Name, err)
	}
	if res.Skipped > maxSkipLogs {
		p.log.Warn("records skipped", "skipped", res.Skipped, "logged", maxSkipLogs)
	}
	if res.Backwards > maxSkipLogs {
		p.log.Warn("records whose updated date went back while their content changed, reported as updated",
			"records", res.Backwards, "logged", maxSkipLogs)
	}
	res.Deleted, res.HeldBack, res.Missing = fin.Deleted, fin.HeldBack, fin.Missing
	res.Known = fin.Known - fin.Deleted
	if fin.HeldBack == 0 {
		res.Suspected = fin.Missing - fin.Deleted
	}
	if res.Suspected > 0 && !finish.LookedUp {
		p.log.Info("records missing from the listing: each is deleted if the next complete listing misses it too",
			"missing", res.Suspected)
	}
	res.Watermark = watermark
	if d.watermark.After(watermark) { // the store never moves it back
		res.Watermark = d.watermark
	}
	if fin.HeldBack > 0 {
		p.log.Warn("deletes held back by the delete guard",
			"held_back", fin.HeldBack, "known", fin.Known, "delete_guard", *p.res.DeleteGuard)
	}
	return res, nil
}

// watchFrom is the moment the resource's watch begins, as the first
// complete cycle records it (later cycles pass it too; the store keeps
// the first): for start: now, the cycle's watermark (or, without one, the
// walk's start, the API's clock if its Date header gave it) less the
// lookback, since what is dated within the lookback may not have been
// listed yet; for a start time, that time; for start: beginning, the
// beginning. A record never seen whose created date is after it is new;
// one never seen whose updated date is not after it has not changed
// since the watch began (see differ).
func (p *Poller) watchFrom(watermark, start, apiStart time.Time) time.Time {
	switch p.res.Start {
	case config.StartBeginning:
		return time.Time{}
	case config.StartNow:
	default:
		return p.res.StartTime
	}
	moment := watermark
	if moment.IsZero() {
		moment = start
		if !apiStart.IsZero() && apiStart.Before(moment) {
			moment = apiStart
		}
	}
	from := moment.Add(-p.res.Lookback.D())
	if !from.After(time.Unix(0, 0)) {
		return time.Time{}
	}
	return from
}

// readContents adds to seen the stored contents of the records of a page
// that changed, which their events report as previous. Unchanged records,
// a steady cycle's all, read none.
func (p *Poller) readContents(ctx context.Context, d *differ, recs []Record, seen map[string]cursor.Seen) error {
	ids := d.wantsContent(recs, seen)
	if len(ids) == 0 {
		return nil
	}
	contents, err := p.store.Contents(ctx, p.res.Name, ids)
	if err != nil {
		return err
	}
	for id, c := range contents {
		v := seen[id]
		v.Content = c
		seen[id] = v
	}
	return nil
}

// begin reads the resource's state, starts a cycle and sets up its differ.
func (p *Poller) begin(ctx context.Context, res *CycleResult, lease cursor.Lease) (*differ, error) {
	st, err := p.store.ResourceState(ctx, p.res.Name)
	if err != nil {
		return nil, fmt.Errorf("poll %s: %w", p.res.Name, err)
	}
	d := &differ{
		res:       p.res,
		source:    p.src.Name,
		watermark: st.Watermark,
		fullIDSet: p.res.Deletes == config.DeletesSnapshot || p.res.Start == config.StartBeginning,
		snapshot:  p.res.Deletes == config.DeletesSnapshot,
		now:       p.now().UTC(),
		history:   p.hist,
	}
	if st.Watching {
		d.watchFrom, d.watching = st.WatchFrom, true
		if !st.WatchFrom.IsZero() {
			d.silentUntil = st.WatchFrom
		}
	}
	if st.Completed == 0 {
		switch p.res.Start {
		case config.StartNow:
			d.silent = true
		case config.StartBeginning:
			d.watermark = time.Time{}
		default:
			d.watermark, d.silentUntil = p.res.StartTime, p.res.StartTime
			if err := p.store.InitResource(ctx, p.res.Name, p.res.StartTime); err != nil {
				return nil, fmt.Errorf("poll %s: %w", p.res.Name, err)
			}
		}
	}
	res.Silent = d.silent
	if res.Cycle, err = p.store.BeginCycle(ctx, p.res.Name, lease); err != nil {
		return nil, fmt.Errorf("poll %s: %w", p.res.Name, err)
	}
	return d, nil
}
