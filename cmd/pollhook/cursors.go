package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

func init() {
	register(&command{
		name:    "cursors",
		summary: "show each resource's watermark, or reset one",
		usage: `Usage: pollhook cursors [-c FILE] [--json]
       pollhook cursors reset RESOURCE [-c FILE] [--to TIME]

Without a subcommand, lists each resource the state file knows: its
watermark, cycles begun and completed, when the last one completed, how many
records it holds and how many deletes the delete guard holds back.

reset moves RESOURCE's watermark to TIME (RFC 3339), or forgets it when
--to is not given, so the next cycle asks the upstream for everything again.
The records the store knows are kept, so a re-read yields no duplicate
events: only what changed is reported.

Examples:
  pollhook cursors
  pollhook cursors reset contacts --to 2026-11-01T00:00:00Z
`,
		run: runCursors,
	})
}

type cursorRow struct {
	Resource     string    `json:"resource"`
	Watermark    time.Time `json:"watermark"`
	Cycles       int64     `json:"cycles"`
	Completed    int64     `json:"completed"`
	LastComplete time.Time `json:"last_complete"`
	Known        int64     `json:"known"`
	HeldDeletes  int64     `json:"held_deletes"`
}

func runCursors(ctx context.Context, e *env, args []string) error {
	c := commands["cursors"]
	if len(args) > 0 && args[0] == "reset" {
		return runCursorsReset(ctx, e, c, args[1:])
	}
	fs := c.flags(e)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "JSON lines")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	store, done, err := openConfigured(ctx, *path)
	if err != nil {
		return err
	}
	defer done()
	states, err := store.Resources(ctx)
	if err != nil {
		return err
	}
	out := make([]cursorRow, 0, len(states))
	rows := make([][]string, 0, len(states))
	for _, s := range states {
		out = append(out, cursorRow{s.Resource, s.Watermark, s.Cycle, s.Completed, s.LastComplete, s.Known, s.HeldDeletes})
		rows = append(rows, []string{s.Resource, fmtTime(s.Watermark), strconv.FormatInt(s.Cycle, 10),
			strconv.FormatInt(s.Completed, 10), fmtTime(s.LastComplete), strconv.FormatInt(s.Known, 10), strconv.FormatInt(s.HeldDeletes, 10)})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"RESOURCE", "WATERMARK", "CYCLES", "COMPLETED", "LAST_COMPLETE", "KNOWN", "HELD_DELETES"}, rows)
}

func runCursorsReset(ctx context.Context, e *env, c *command, args []string) error {
	// The resource name may come before or after the flags.
	var name string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	fs := c.flags(e)
	path := configFlag(fs)
	to := fs.String("to", "", "the new watermark (RFC 3339); empty forgets it")
	if err := c.parse(fs, args, 1); err != nil {
		return err
	}
	if name == "" {
		name = fs.Arg(0)
	}
	if name == "" {
		return &usageError{"cursors reset: name the resource to reset"}
	}
	var wm time.Time
	if *to != "" {
		var err error
		if wm, err = time.Parse(time.RFC3339Nano, *to); err != nil {
			return &usageError{fmt.Sprintf("cursors reset: --to %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", *to)}
		}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if cfg.Resource(name) == nil {
		return &usageError{fmt.Sprintf("cursors reset: no resource %q in %s", name, cfg.File)}
	}
	store, err := openState(ctx, cfg.State)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.ResetResource(ctx, name, wm); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: watermark set to %s\n", name, fmtTime(wm))
	return nil
}
