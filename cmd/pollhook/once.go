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
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/runtime"
	"github.com/pollhook/pollhook/poller"
)

func init() {
	register(&command{
		name:    "once",
		summary: "run one poll cycle of each resource and print the new events",
		usage: `Usage: pollhook once [-c FILE] [--resource NAME] [--dry-run] [--no-deliver]

Runs one complete cycle of each resource (or only NAME): fetches every page,
works out what was created, updated and deleted since the last cycle, and
records it in the state file. New events are written to the outbox and
printed to stdout as JSON lines in the pollhook envelope; a summary per
resource goes to stderr. A resource whose cycle fails is named with the
reason, its cursor stays where it was, and the exit code is 1.

Then, when the config has destinations, one delivery pass: every delivery
due now is sent (new events, and retries whose time has come); what fails
stays pending for the next run. This makes "pollhook once" from cron a
complete, if coarse, daemon. As in run, a destination the state file knows
but the config no longer names is dropped with its pending deliveries.

  --dry-run      run against a scratch copy of the state file: print what
                 would be emitted, commit nothing, deliver nothing
  --no-deliver   skip the delivery pass

Examples:
  pollhook once -c pollhook.yaml
  pollhook once -c pollhook.yaml --resource contacts --dry-run | jq .type
`,
		run: runOnce,
	})
}

func runOnce(ctx context.Context, e *env, args []string) error {
	c := commands["once"]
	fs := c.flags(e)
	path := configFlag(fs)
	only := fs.String("resource", "", "poll only this resource")
	dry := fs.Bool("dry-run", false, "commit nothing")
	noDeliver := fs.Bool("no-deliver", false, "skip the delivery pass")
	if err := c.parse(fs, args, 0); err != nil {
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
	store, cleanup, err := openStore(ctx, cfg.State.Path, *dry)
	if err != nil {
		return err
	}
	defer cleanup()

	log := newLogger(e.stderr, "text", slog.LevelWarn)
	rt, err := runtime.New(store, cfg, runtime.Options{Logger: log})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	deliver := !*dry && !*noDeliver
	res, err := rt.Once(ctx, runtime.OnceOptions{
		Resources: resources,
		// As run does: destinations removed from the config stop, and
		// stop holding back the pruning of the outbox.
		Deliver: deliver,
		OnCycle: func(res poller.CycleResult, events []cursor.Event, err error) {
			for _, ev := range events {
				b, _ := json.Marshal(emit.NewEnvelope(ev))
				out.Write(b)
				out.WriteByte('\n')
			}
			out.Flush()
			if err != nil {
				fmt.Fprintf(e.stderr, "%s: failed: %s\n", res.Resource, err.Error())
				return
			}
			fmt.Fprintln(e.stderr, summaryLine(res, *dry))
		},
	})
	if err != nil {
		return err
	}
	for _, name := range resources {
		if holder, ok := res.Elsewhere[name]; ok {
			fmt.Fprintf(e.stderr, "%s: not polled: another pollhook process holds it (%s); it polls it, or it is still at work\n", name, holder)
		}
	}
	failed := res.Failed
	if deliver && (len(cfg.Destinations) > 0 || res.Delivery.Requests > 0) {
		fmt.Fprintln(e.stderr, deliverySummary(res.Delivery))
		if res.DeliveryErr != nil {
			failed = append(failed, fmt.Errorf("deliver: %w", res.DeliveryErr))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d failures: %w", len(failed), errors.Join(failed...))
	}
	return nil
}

func deliverySummary(r emit.StepResult) string {
	s := fmt.Sprintf("delivery: %d delivered in %d requests, %d failed, %d dead", r.Delivered, r.Requests, r.Failed, r.Dead)
	if r.Filtered > 0 {
		s += fmt.Sprintf("; %d kept from destinations by their filter", r.Filtered)
	}
	if !r.Next.IsZero() {
		s += "; next due " + r.Next.UTC().Format(time.RFC3339)
	}
	if r.Disabled > 0 {
		s += fmt.Sprintf("; %d destinations disabled by a 410 (pollhook destinations enable NAME)", r.Disabled)
	}
	if r.Elsewhere > 0 {
		s += fmt.Sprintf("; %d destinations delivered by another pollhook process", r.Elsewhere)
	}
	return s
}

func summaryLine(r poller.CycleResult, dry bool) string {
	prefix := r.Resource + ":"
	if dry {
		prefix += " (dry run)"
	}
	d := r.Duration.Round(time.Millisecond)
	if r.Silent {
		return fmt.Sprintf("%s first cycle recorded %d records in %d pages (%s); no events: start is now, so only later changes are reported",
			prefix, r.Records, r.Pages, d)
	}
	s := fmt.Sprintf("%s cycle %d: %d pages, %d records, %d created, %d updated, %d deleted in %s",
		prefix, r.Cycle, r.Pages, r.Records, r.Created, r.Updated, r.Deleted, d)
	if r.Skipped > 0 {
		s += fmt.Sprintf("; %d records skipped (see warnings)", r.Skipped)
	}
	if r.HeldBack > 0 {
		s += fmt.Sprintf("; %d deletes HELD BACK by delete_guard", r.HeldBack)
	}
	if !r.Watermark.IsZero() {
		s += "; watermark " + r.Watermark.UTC().Format(time.RFC3339Nano)
	}
	return s
}

// openStore opens the state file, or for a dry run a scratch copy of it
// (a fresh one when there is no state file yet); cleanup closes and, for a
// dry run, removes the copy.
func openStore(ctx context.Context, path string, dry bool) (cursor.Store, func(), error) {
	if !dry {
		s, err := cursor.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	}
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
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("open dry-run copy of %s: %w", path, err)
	}
	return s, func() { s.Close(); os.RemoveAll(dir) }, nil
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
