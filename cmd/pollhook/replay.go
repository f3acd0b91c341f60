package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func init() {
	register(&command{
		name:    "replay",
		summary: "deliver events again, with the same event ids",
		usage: `Usage: pollhook replay [-c FILE] --destination D (--event ID | --status dead | --since D)

Sets the matching deliveries of destination D back to pending, due now,
with a fresh retry schedule; a running daemon (or the next "pollhook once")
delivers them. Receivers see the same webhook-id as before. --event also
sends an event the destination never had (one detected before it was added).

Examples:
  pollhook replay --destination my-app --status dead
  pollhook replay --destination my-app --event evt_96330e568a4b293e73cf325c1a22e482
  pollhook replay --destination my-app --since 2026-11-22T00:00:00Z
`,
		run: runReplay,
	})
}

func runReplay(ctx context.Context, e *env, args []string) error {
	c := commands["replay"]
	fs := c.flags(e)
	path := configFlag(fs)
	dest := fs.String("destination", "", "the destination `D` (required)")
	event := fs.String("event", "", "the event `ID`, whether D had it or not")
	status := fs.String("status", "", "dead: every dead delivery of D (the only `STATUS` replayed)")
	sinceArg := fs.String("since", "", "every event detected since `D`: an RFC 3339 time or a duration before now")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	now := time.Now()
	since, err := parseSince("replay: --since", *sinceArg, now)
	if err != nil {
		return err
	}
	if *dest == "" {
		return &usageError{"replay: --destination is required"}
	}
	if *status != "" && *status != "dead" {
		return &usageError{fmt.Sprintf("replay: --status %q: only dead deliveries are replayed by status", *status)}
	}
	if *event == "" && *status == "" && since.IsZero() {
		return &usageError{"replay: say what to replay: --event ID, --status dead or --since D"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if cfg.Destination(*dest) == nil {
		names := make([]string, len(cfg.Destinations))
		for i, d := range cfg.Destinations {
			names[i] = d.Name
		}
		return &usageError{fmt.Sprintf("replay: no destination %q in %s (it has %s)", *dest, cfg.File, strings.Join(names, ", "))}
	}
	store, err := openState(ctx, cfg.State)
	if err != nil {
		return err
	}
	defer store.Close()
	n, err := store.Replay(ctx, cursor.ReplayFilter{Destination: *dest, EventID: *event, Dead: *status == "dead", Since: since, Now: now})
	if errors.Is(err, cursor.ErrUnknownEvent) {
		return &usageError{fmt.Sprintf("replay: no event %q in the outbox (pollhook events lists them)", *event)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d deliveries to %s are pending again\n", n, *dest)
	return nil
}
