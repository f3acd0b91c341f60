package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/redact"
)

func init() {
	register(&command{
		name:    "destinations",
		summary: "list destinations with their backlog, or re-enable one",
		usage: `Usage: pollhook destinations [-c FILE] [--json]
       pollhook destinations enable NAME [-c FILE]

Lists the configured destinations with their pending and dead deliveries,
the oldest pending one, and whether a 410 Gone disabled them. A disabled
destination keeps its deliveries pending; enable sends them again.

Examples:
  pollhook destinations
  pollhook destinations enable my-app
`,
		run: runDestinations,
	})
}

type destinationRow struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	Pending        int64  `json:"pending"`
	Dead           int64  `json:"dead"`
	OldestPending  string `json:"oldest_pending,omitempty"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
}

func runDestinations(ctx context.Context, e *env, args []string) error {
	c := commands["destinations"]
	enable := len(args) > 0 && args[0] == "enable"
	var name string
	if enable {
		args = args[1:]
		if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
			name, args = args[0], args[1:]
		}
	}
	fs := c.flags(e)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "JSON lines")
	if err := c.parse(fs, args, 1); err != nil {
		return err
	}
	if name == "" {
		name = fs.Arg(0)
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	store, err := openState(ctx, cfg.State)
	if err != nil {
		return err
	}
	defer store.Close()
	if enable {
		if name == "" {
			return &usageError{"destinations enable: name the destination"}
		}
		if cfg.Destination(name) == nil {
			return &usageError{fmt.Sprintf("destinations enable: no destination %q in %s", name, cfg.File)}
		}
		err := store.EnableDestination(ctx, name)
		if errors.Is(err, cursor.ErrUnknownDestination) {
			fmt.Fprintf(e.stdout, "%s has not delivered anything yet: nothing to enable\n", name)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s enabled: its pending deliveries go out with the next delivery pass\n", name)
		return nil
	}
	var out []destinationRow
	var rows [][]string
	for _, d := range cfg.Destinations {
		b, err := store.Backlog(ctx, d.Name)
		if err != nil {
			return err
		}
		st, err := store.Destination(ctx, d.Name)
		if err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
			return err
		}
		row := destinationRow{Name: d.Name, URL: redact.URL(d.URL), Pending: b.Pending, Dead: b.Dead,
			Disabled: st.Disabled(), DisabledReason: st.DisabledReason}
		if !b.OldestPending.IsZero() {
			row.OldestPending = fmtTime(b.OldestPending)
		}
		out = append(out, row)
		state := "enabled"
		if row.Disabled {
			state = "DISABLED: " + oneLine(row.DisabledReason, 50)
		}
		rows = append(rows, []string{d.Name, row.URL, strconv.FormatInt(b.Pending, 10), strconv.FormatInt(b.Dead, 10), fmtTime(b.OldestPending), state})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"NAME", "URL", "PENDING", "DEAD", "OLDEST_PENDING", "STATE"}, rows)
}
