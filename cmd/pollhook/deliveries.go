package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/cursor"
)

func init() {
	register(&command{
		name:    "deliveries",
		summary: "list deliveries: pending, delivered or dead",
		usage: `Usage: pollhook deliveries [-c FILE | --state FILE] [--destination D] [--status pending|delivered|dead] [--event ID] [--limit N] [--json]

Lists each event's delivery to each destination, newest first: its status,
the attempts made (as "pollhook attempts" lists them), when it is next
due, and the last attempt's HTTP status and error. An attempt answered
410 Gone, or made before a replay, is an attempt made too, though it does
not count against the retry schedule (--json shows both counts).

It reads only the state file (see "pollhook help events").

Examples:
  pollhook deliveries --status dead
  pollhook deliveries --destination my-app --json | jq .last_error
`,
		run: runDeliveries,
	})
}

// deliveryRow is one delivery as --json writes it. Attempts are the
// attempts made, as the attempt log holds them; CountedAttempts, those
// counted against the retry schedule since the delivery was last made
// pending (by a replay): a 410 Gone counts for nothing.
type deliveryRow struct {
	Destination     string    `json:"destination"`
	EventID         string    `json:"event_id"`
	Seq             int64     `json:"seq"`
	Type            string    `json:"type"`
	Status          string    `json:"status"`
	Attempts        int       `json:"attempts"`
	CountedAttempts int       `json:"counted_attempts"`
	NextAt          time.Time `json:"next_at,omitzero"`
	LastStatus      int       `json:"last_status,omitempty"`
	LastError       string    `json:"last_error,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	DoneAt          time.Time `json:"done_at,omitzero"`
}

func runDeliveries(ctx context.Context, e *env, args []string) error {
	c := commands["deliveries"]
	fs := c.flags(e)
	src := stateFlags(fs)
	dest := fs.String("destination", "", "only the deliveries to destination `D`")
	status := fs.String("status", "", "only the deliveries in this `STATUS`: pending, delivered or dead")
	event := fs.String("event", "", "only the deliveries of the event `ID`")
	limit := fs.Int("limit", cursor.DefaultListLimit, "the newest `N`")
	asJSON := fs.Bool("json", false, "one JSON line per delivery")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	st := cursor.DeliveryStatus(*status)
	switch st {
	case "", cursor.StatusPending, cursor.StatusDelivered, cursor.StatusDead:
	default:
		return &usageError{fmt.Sprintf("deliveries: --status %q: want pending, delivered or dead", *status)}
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	ds, err := store.Deliveries(ctx, cursor.DeliveryFilter{Destination: *dest, Status: st, EventID: *event, Limit: *limit})
	if err != nil {
		return err
	}
	out := make([]deliveryRow, 0, len(ds))
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		// The attempt log has every attempt made; the delivery counts
		// only those against its retry schedule.
		made, err := store.Attempts(ctx, cursor.AttemptFilter{Destination: d.Destination, EventID: d.EventID, Limit: cursor.MaxListLimit})
		if err != nil {
			return err
		}
		out = append(out, deliveryRow{d.Destination, d.EventID, d.Seq, d.Type, string(d.Status), len(made), d.Attempts,
			d.NextAt, d.LastStatus, d.LastError, d.CreatedAt, d.DoneAt})
		next := "-"
		if d.Status == cursor.StatusPending {
			next = fmtTime(d.NextAt)
		}
		last := "-"
		switch {
		case d.LastStatus != 0:
			last = strconv.Itoa(d.LastStatus)
		case d.Status == cursor.StatusDelivered:
			last = "ok" // a destination without status codes: NATS, stdout, a file
		}
		rows = append(rows, []string{d.Destination, d.EventID, d.Type, string(d.Status), strconv.Itoa(len(made)), next, last, oneLine(d.LastError, 60)})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"DESTINATION", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "NEXT", "LAST", "ERROR"}, rows)
}
