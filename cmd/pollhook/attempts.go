package main

import (
	"context"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func init() {
	register(&command{
		name:    "attempts",
		summary: "list the delivery log: every attempt with status, latency and error",
		usage: `Usage: pollhook attempts [-c FILE | --state FILE] [--destination D] [--event ID] [--limit N] [--json]

Lists delivery attempts, newest first: when, the HTTP status (or none),
the latency, the error and (with --json) the start of the response body.

It reads only the state file (see "pollhook help events").

Examples:
  pollhook attempts --destination my-app
  pollhook attempts --event evt_96330e568a4b293e73cf325c1a22e482 --json
`,
		run: runAttempts,
	})
}

type attemptRow struct {
	Destination string    `json:"destination"`
	EventID     string    `json:"event_id"`
	BodyID      string    `json:"webhook_id"`
	At          time.Time `json:"at"`
	Status      int       `json:"status,omitempty"`
	LatencyMS   float64   `json:"latency_ms"`
	Error       string    `json:"error,omitempty"`
	Response    string    `json:"response,omitempty"`
}

func runAttempts(ctx context.Context, e *env, args []string) error {
	c := commands["attempts"]
	fs := c.flags(e)
	src := stateFlags(fs)
	dest := fs.String("destination", "", "only the attempts to destination `D`")
	event := fs.String("event", "", "only the attempts of the event `ID`")
	limit := fs.Int("limit", cursor.DefaultListLimit, "the newest `N`")
	asJSON := fs.Bool("json", false, "one JSON line per attempt")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	as, err := store.Attempts(ctx, cursor.AttemptFilter{Destination: *dest, EventID: *event, Limit: *limit})
	if err != nil {
		return err
	}
	out := make([]attemptRow, 0, len(as))
	rows := make([][]string, 0, len(as))
	for _, a := range as {
		ms := float64(a.Latency.Microseconds()) / 1000
		out = append(out, attemptRow{a.Destination, a.EventID, a.BodyID, a.At, a.Status, ms, a.Error, a.Response})
		status := "-"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		rows = append(rows, []string{fmtTime(a.At), a.Destination, a.EventID, status, a.Latency.Round(time.Millisecond).String(), oneLine(a.Error, 70)})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"AT", "DESTINATION", "EVENT", "STATUS", "LATENCY", "ERROR"}, rows)
}
