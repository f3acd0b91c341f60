package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

func init() {
	register(&command{
		name:    "cursors",
		summary: "show each resource's watermark, or reset one",
		usage: `Usage: pollhook cursors [-c FILE | --state FILE] [--json]
       pollhook cursors reset RESOURCE [-c FILE | --state FILE] [--to TIME]

Without a subcommand, lists each resource the state file knows: its
watermark, cycles begun and completed, when the last one completed, how many
records it holds and how many deletes the delete guard holds back.

reset moves RESOURCE's watermark to TIME (RFC 3339), or forgets it when
--to is not given, so the next cycle asks the upstream for everything again.
The records the store knows are kept, so a re-read yields no duplicate
events: only what changed is reported.

Both read only the state file (see "pollhook help events").

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
	fs := c.flags(e)
	src := stateFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON line per resource")
	to := fs.String("to", "", "reset: the new watermark, an RFC 3339 `TIME`; without it the watermark is forgotten")
	pos, err := c.parse(fs, args, 2)
	if err != nil {
		return err
	}
	name, reset, err := c.subcommand(fs, pos, "reset", "resource", []string{"json"}, []string{"to"})
	if err != nil {
		return err
	}
	if reset {
		return runCursorsReset(ctx, e, src, name, *to)
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
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

func runCursorsReset(ctx context.Context, e *env, src *stateSource, name, to string) error {
	var wm time.Time
	if to != "" {
		var err error
		if wm, err = time.Parse(time.RFC3339Nano, to); err != nil {
			return &usageError{fmt.Sprintf("cursors reset: --to %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", to)}
		}
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	states, err := store.Resources(ctx)
	if err != nil {
		return err
	}
	known := make([]string, len(states))
	for i, s := range states {
		known[i] = s.Resource
	}
	if !slices.Contains(known, name) {
		return &usageError{fmt.Sprintf("cursors reset: the state file %s has no resource %q (it has: %s)", store.Location(), name, orNone(known))}
	}
	if err := store.ResetResource(ctx, name, wm); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: watermark set to %s\n", name, fmtTime(wm))
	return nil
}
