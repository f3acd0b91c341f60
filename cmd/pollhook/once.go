package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/runtime"
	"github.com/pollhook/pollhook/poller"
)

func init() {
	register(&command{
		name:    "once",
		summary: "run one poll cycle of each resource and print the new events",
		usage: `Usage: pollhook once [-c FILE] [--resource NAME] [--dry-run] [--no-deliver] [--quiet]

Runs one complete cycle of each resource (or only NAME): fetches every page,
works out what was created, updated and deleted since the last cycle, and
records it in the state file. New events are written to the outbox and
printed to stdout as JSON lines in the pollhook envelope (unless a
destination is stdout: it prints them, in its format); a summary per
resource goes to stderr, naming the first records skipped and why. A
resource whose cycle fails is named with the reason, its cursor stays where
it was, and the exit code is 1; so is a cycle that read records but had to
skip every one of them (a misspelt id_field, a date format that does not
fit), as nothing it read can ever be reported.

When the config has destinations, the events are delivered as the cycles
commit them, page by page, while the next pages are fetched; once every
resource is polled, what is left is delivered and the command exits.
Every delivery due when it started is sent (new events, and retries
whose time has come); what fails stays pending for the next run, and is
not tried again before it. This makes "pollhook once" from cron a
complete, if coarse, daemon. As in run, a destination the state file knows
but the config no longer names is dropped with its pending deliveries.

--dry-run runs against a scratch copy of the state file: it prints what
would be emitted, and commits and delivers nothing; it polls every
resource, those a running daemon holds too. --quiet is for cron,
which mails whatever a job prints: it prints no events, and only what needs
a person — failures, a cycle that skipped every record, deletes held back
by delete_guard, deliveries that died, destinations a 410 disabled.

Examples:
  pollhook once -c pollhook.yaml
  pollhook once -c pollhook.yaml --resource contacts --dry-run | jq .type
  pollhook once -c pollhook.yaml --quiet     # from cron
`,
		run: runOnce,
	})
}

func runOnce(ctx context.Context, e *env, args []string) error {
	c := commands["once"]
	fs := c.flags(e)
	path := configFlag(fs)
	only := fs.String("resource", "", "poll only the resource `NAME`")
	dry := fs.Bool("dry-run", false, "run against a scratch copy of the state file: commit nothing, deliver nothing")
	noDeliver := fs.Bool("no-deliver", false, "skip the delivery pass")
	quiet := fs.Bool("quiet", false, "print only what needs a person, and no events (for cron)")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	var resources []string
	for _, r := range cfg.Resources {
		resources = append(resources, r.Name)
	}
	if *only != "" {
		if cfg.Resource(*only) == nil {
			return &usageError{fmt.Sprintf("once: no resource %q in %s", *only, cfg.File)}
		}
		resources = []string{*only}
	}
	store, cleanup, err := openStore(ctx, cfg.State, *dry)
	if err != nil {
		return err
	}
	defer cleanup()

	level := slog.LevelWarn
	if *quiet {
		// Skipped records and the like are logged as warnings at every
		// run; the summary says what needs a person.
		level = slog.LevelError
	}
	log := newLogger(e.stderr, "text", level)
	rt, err := runtime.New(store, cfg, runtime.Options{Logger: log, Stdout: e.stdout, LeaseTTL: cfg.State.Lease.D()})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	deliver := !*dry && !*noDeliver
	// A stdout destination prints the events itself, in its format: they
	// are not printed twice.
	printEvents := !*quiet
	for _, d := range cfg.Destinations {
		if deliver && d.URL == emit.StdoutURL {
			printEvents = false
		}
	}
	var skippedAll []error
	res, err := rt.Once(ctx, runtime.OnceOptions{
		Resources: resources,
		// As run does: destinations removed from the config stop, and
		// stop holding back the pruning of the outbox.
		Deliver: deliver,
		OnCycle: func(res poller.CycleResult, events []cursor.Event, err error) {
			if printEvents {
				for _, ev := range events {
					b, _ := json.Marshal(emit.NewEnvelope(ev))
					out.Write(b)
					out.WriteByte('\n')
				}
				out.Flush()
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "%s: failed: %s\n", res.Resource, err.Error())
				return
			}
			allSkipped := res.Records == 0 && res.Skipped > 0
			if allSkipped {
				skippedAll = append(skippedAll, fmt.Errorf("%s: every record read was skipped (%d): check id_field and dates against a record of the API", res.Resource, res.Skipped))
			}
			if !*quiet || allSkipped || res.HeldBack > 0 {
				fmt.Fprintln(e.stderr, summaryLine(res, *dry))
			}
		},
	})
	if err != nil {
		return err
	}
	if !*quiet {
		for _, name := range resources {
			if holder, ok := res.Elsewhere[name]; ok {
				fmt.Fprintf(e.stderr, "%s: not polled: another pollhook process holds it (%s); it polls it, or it is still at work\n", name, holder)
			}
		}
	}
	failed := append(res.Failed, skippedAll...)
	if deliver && (len(cfg.Destinations) > 0 || res.Delivery.Requests > 0) {
		d := res.Delivery
		if !*quiet || d.Dead > 0 || d.Disabled > 0 {
			fmt.Fprintln(e.stderr, deliverySummary(d))
		}
		if res.DeliveryErr != nil {
			failed = append(failed, fmt.Errorf("deliver: %w", res.DeliveryErr))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: %w", plural(len(failed), "failure", "failures"), errors.Join(failed...))
	}
	return nil
}

func deliverySummary(r emit.StepResult) string {
	s := fmt.Sprintf("delivery: %d delivered in %s, %d failed, %d dead", r.Delivered, plural(r.Requests, "request", "requests"), r.Failed, r.Dead)
	if r.Filtered > 0 {
		s += fmt.Sprintf("; %d kept from destinations by their filter", r.Filtered)
	}
	if !r.Next.IsZero() {
		s += "; next due " + r.Next.UTC().Format(time.RFC3339)
	}
	if r.Disabled > 0 {
		s += fmt.Sprintf("; %s disabled by a 410 (pollhook destinations enable NAME)", plural(r.Disabled, "destination", "destinations"))
	}
	if r.Elsewhere > 0 {
		s += fmt.Sprintf("; %s delivered by another pollhook process", plural(r.Elsewhere, "destination", "destinations"))
	}
	return s
}

func summaryLine(r poller.CycleResult, dry bool) string {
	prefix := r.Resource + ":"
	if dry {
		prefix += " (dry run)"
	}
	d := r.Duration.Round(time.Millisecond)
	var s string
	switch {
	case r.Records == 0 && r.Skipped > 0:
		which := fmt.Sprintf("cycle %d", r.Cycle)
		if r.Silent {
			which = "first cycle"
		}
		s = fmt.Sprintf("%s %s: %s in %s, nothing recorded (%s): %s",
			prefix, which, plural(r.Skipped, "record", "records"), plural(r.Pages, "page", "pages"), d, skipSummary(r))
	case r.Silent:
		s = fmt.Sprintf("%s first cycle recorded %s in %s (%s); no events: start is now, so only later changes are reported",
			prefix, plural(r.Records, "record", "records"), plural(r.Pages, "page", "pages"), d)
	default:
		s = fmt.Sprintf("%s cycle %d: %s, %s, %d created, %d updated, %d deleted in %s",
			prefix, r.Cycle, plural(r.Pages, "page", "pages"), plural(r.Records, "record", "records"), r.Created, r.Updated, r.Deleted, d)
	}
	if r.Skipped > 0 && r.Records > 0 {
		s += "; " + skipSummary(r)
	}
	if r.HeldBack > 0 {
		s += fmt.Sprintf("; %s HELD BACK by delete_guard", plural(r.HeldBack, "delete", "deletes"))
	}
	if l := r.Lookups; l != (poller.Lookups{}) {
		s += fmt.Sprintf("; looked up the records missing from the listing: %d gone, %d found, %d failed", l.Gone, l.Found, l.Failed)
	} else if r.Suspected > 0 {
		s += fmt.Sprintf("; %d records missing from the listing, deleted if the next cycle misses them too", r.Suspected)
	}
	if !r.Silent && !r.Watermark.IsZero() {
		s += "; watermark " + r.Watermark.UTC().Format(time.RFC3339Nano)
	}
	return s
}

// skipSummary says how many records a cycle skipped and why, from the
// reasons of the first ones: `3 records skipped: no id at "idd"`.
func skipSummary(r poller.CycleResult) string {
	what := plural(r.Skipped, "record", "records") + " skipped"
	if r.Records == 0 {
		what = "every one skipped"
	}
	var reasons []string
	for _, sk := range r.FirstSkips {
		if !slices.Contains(reasons, sk.Reason) {
			reasons = append(reasons, sk.Reason)
		}
	}
	if len(reasons) == 0 {
		return what
	}
	more := ""
	if r.Skipped > len(r.FirstSkips) {
		more = "; …"
	}
	return what + ": " + strings.Join(reasons, "; ") + more
}

// openStore opens the state, or for a dry run a scratch copy of it (of a
// SQLite file, a fresh one when there is no file yet; of a PostgreSQL
// database, a schema holding what the resources' cycles read); cleanup
// closes and, for a dry run, removes the copy.
func openStore(ctx context.Context, st config.State, dry bool) (cursor.Store, func(), error) {
	if !dry {
		s, err := openState(ctx, st)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
	if st.DSN != "" {
		return cursor.OpenPostgresScratch(ctx, string(st.DSN))
	}
	path := st.Path
	dir, err := os.MkdirTemp("", "pollhook-dry-run-")
	if err != nil {
		return nil, nil, fmt.Errorf("create dry-run state: %w", err)
	}
	scratch := filepath.Join(dir, "state.db")
	if _, err := os.Stat(path); err == nil {
		if err := copyState(ctx, path, scratch); err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
	}
	// Only the copy is brought up to this pollhook's schema.
	s, err := cursor.Open(ctx, scratch)
	if err == nil {
		err = releaseAll(ctx, s)
		if err != nil {
			s.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("open dry-run copy of %s: %w", path, err)
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
}

// releaseAll gives up every lease of a dry run's copy of the state: no
// other process writes the copy, so the resources a running daemon holds
// are polled there as any other (a PostgreSQL scratch copy has no leases
// either).
func releaseAll(ctx context.Context, s cursor.Store) error {
	leases, err := s.Leases(ctx)
	if err != nil {
		return err
	}
	byHolder := map[string][]string{}
	for _, l := range leases {
		byHolder[l.Holder] = append(byHolder[l.Holder], l.Name)
	}
	for holder, names := range byHolder {
		if err := s.ReleaseLeases(ctx, holder, names); err != nil {
			return err
		}
	}
	return nil
}

// copyState writes a consistent copy of the state file at path to scratch
// without changing path: a plain connection, with neither the migrations
// nor the journal mode of cursor.Open, runs VACUUM INTO, which reads the
// file in one transaction while a daemon may go on writing it. The file
// stays as an older pollhook can still open it. (A read-only connection
// would leave -wal and -shm files beside a WAL-mode file; this one removes
// them on close, as the last connection does.)
func copyState(ctx context.Context, path, scratch string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("copy state file %s for a dry run: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter
	}
	dsn := fmt.Sprintf("file:%s?mode=rw&_pragma=busy_timeout(%d)", (&url.URL{Path: p}).EscapedPath(), cursor.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("copy state file %s for a dry run: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", scratch); err != nil {
		return fmt.Errorf("copy state file %s for a dry run: %w", path, err)
	}
	return nil
}
