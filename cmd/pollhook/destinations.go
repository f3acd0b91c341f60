package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pollhook/pollhook/cursor"
)

func init() {
	register(&command{
		name:    "destinations",
		summary: "list destinations with their backlog, or re-enable one",
		usage: `Usage: pollhook destinations [-c FILE | --state FILE] [--json]
       pollhook destinations enable NAME [-c FILE | --state FILE]

Lists the destinations the state file delivers to — those of the config
and the REST Hooks subscribers, as of the last run — with their pending
and dead deliveries, the oldest pending one, and whether a 410 Gone
disabled them. A disabled destination keeps its deliveries pending; enable
sends them again (with the next delivery pass of "pollhook run" or
"pollhook once").

Both read only the state file (see "pollhook help events"); "pollhook
check" shows where each destination of the config delivers.

Examples:
  pollhook destinations
  pollhook destinations enable my-app
`,
		run: runDestinations,
	})
}

type destinationRow struct {
	Name           string `json:"name"`
	Pending        int64  `json:"pending"`
	Dead           int64  `json:"dead"`
	OldestPending  string `json:"oldest_pending,omitempty"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
}

func runDestinations(ctx context.Context, e *env, args []string) error {
	c := commands["destinations"]
	fs := c.flags(e)
	src := stateFlags(fs)
	asJSON := fs.Bool("json", false, "one JSON line per destination")
	pos, err := c.parse(fs, args, 2)
	if err != nil {
		return err
	}
	name, enable, err := c.subcommand(fs, pos, "enable", "destination", []string{"json"}, nil)
	if err != nil {
		return err
	}
	if enable {
		return runDestinationsEnable(ctx, e, src, name)
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	dests, err := store.Destinations(ctx)
	if err != nil {
		return err
	}
	out := make([]destinationRow, 0, len(dests))
	rows := make([][]string, 0, len(dests))
	for _, d := range dests {
		b, err := store.Backlog(ctx, d.Name)
		if err != nil {
			return err
		}
		row := destinationRow{Name: d.Name, Pending: b.Pending, Dead: b.Dead, Disabled: d.Disabled(), DisabledReason: d.DisabledReason}
		if !b.OldestPending.IsZero() {
			row.OldestPending = fmtTime(b.OldestPending)
		}
		out = append(out, row)
		state := "enabled"
		if row.Disabled {
			state = "DISABLED: " + oneLine(row.DisabledReason, 50)
		}
		rows = append(rows, []string{d.Name, strconv.FormatInt(b.Pending, 10), strconv.FormatInt(b.Dead, 10), fmtTime(b.OldestPending), state})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"NAME", "PENDING", "DEAD", "OLDEST_PENDING", "STATE"}, rows)
}

func runDestinationsEnable(ctx context.Context, e *env, src *stateSource, name string) error {
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	err = store.EnableDestination(ctx, name)
	if errors.Is(err, cursor.ErrUnknownDestination) {
		return &usageError{fmt.Sprintf("destinations enable: the state file %s has no destination %q (pollhook destinations lists them)", store.Location(), name)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s enabled: its pending deliveries go out with the next delivery pass\n", name)
	return nil
}
