package poller

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pollhook/pollhook/config"
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
	FinishCycle(ctx context.Context, f cursor.Finish) (cursor.FinishResult, error)
}

// Options are a Poller's collaborators; the zero value is production's.
type Options struct {
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
	hist    history
}

// New returns the Poller of res, which polls src and records in store.
func New(res *config.Resource, src *config.Source, store Store, opts Options) (*Poller, error) {
	client, err := NewClient(*src, ClientOptions{Transport: opts.Transport, Sleep: opts.Sleep, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("create poller of %s: %w", res.Name, err)
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
	// Skipped counts records reported and skipped (no id, bad date).
	Skipped int
	// Future counts records whose updated date is after the cycle began.
	Future   int
	Created  int
	Updated  int
	Deleted  int64
	HeldBack int64
	// Watermark is the resource's watermark after the cycle.
	Watermark time.Time
	Duration  time.Duration
}

// Events is the number of events the cycle wrote.
func (r CycleResult) Events() int64 { return int64(r.Created+r.Updated) + r.Deleted }

// maxSkipLogs is how many skipped records a cycle logs one by one; the
// rest are counted in one line at its end.
const maxSkipLogs = 10

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
func (p *Poller) Cycle(ctx context.Context, lease cursor.Lease) (CycleResult, error) {
	res, err := p.cycle(ctx, lease)
	if ctx.Err() == nil {
		p.metrics.Observe(p, res, err)
	}
	return res, err
}

func (p *Poller) cycle(ctx context.Context, lease cursor.Lease) (CycleResult, error) {
	start := p.now()
	res := CycleResult{Resource: p.res.Name}
	d, err := p.begin(ctx, &res, lease)
	if err != nil {
		return res, err
	}
	since := d.watermark.Add(-p.res.Lookback.D())
	if d.watermark.IsZero() || since.Before(time.Unix(0, 0)) {
		since = time.Unix(0, 0)
	}
	loc := time.UTC
	if p.res.Dates.Updated != nil {
		loc = p.res.Dates.Updated.Location
	}
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
		pd := d.page(pg.Records, seen)
		touch := pd.touch
		for _, s := range pg.Skips {
			if res.Skipped < maxSkipLogs {
				p.log.Warn("record skipped", "page", pg.Number, "index", s.Index, "object_id", s.ID, "reason", s.Reason)
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
		if pd.maxUpdated.After(start) {
			future += pd.future(start)
			if pd.maxUpdated.After(latest) {
				latest = pd.maxUpdated
			}
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
	res.Future = future
	if future > 0 {
		p.log.Warn("records dated in the future: the watermark stops at the cycle's start",
			"records", future, "latest", latest, "cycle_start", start)
	}
	fin, err := p.store.FinishCycle(commitCtx, cursor.Finish{
		Resource:    p.res.Name,
		Cycle:       res.Cycle,
		Lease:       lease,
		Watermark:   watermark,
		Snapshot:    p.res.Deletes == config.DeletesSnapshot,
		DeleteGuard: *p.res.DeleteGuard,
		Deleted:     d.deleted,
		DropContent: !p.res.KeepContent,
		Now:         p.now(),
	})
	res.Duration = p.now().Sub(start)
	if err != nil {
		return res, fmt.Errorf("poll %s: %w", p.res.Name, err)
	}
	if res.Skipped > maxSkipLogs {
		p.log.Warn("records skipped", "skipped", res.Skipped, "logged", maxSkipLogs)
	}
	res.Deleted, res.HeldBack = fin.Deleted, fin.HeldBack
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
