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
		usage: `Usage: pollhook deliveries [-c FILE] [--destination D] [--status pending|delivered|dead] [--event ID] [--limit N] [--json]

Lists each event's delivery to each destination, newest first: its status,
attempts, when it is next due, and the last attempt's HTTP status and error.

Examples:
  pollhook deliveries --status dead
  pollhook deliveries --destination my-app --json | jq .last_error
`,
		run: runDeliveries,
	})
}

type deliveryRow struct {
	Destination string    `json:"destination"`
	EventID     string    `json:"event_id"`
	Seq         int64     `json:"seq"`
	Type        string    `json:"type"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	NextAt      time.Time `json:"next_at,omitzero"`
	LastStatus  int       `json:"last_status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	DoneAt      time.Time `json:"done_at,omitzero"`
}

func runDeliveries(ctx context.Context, e *env, args []string) error {
	c := commands["deliveries"]
	fs := c.flags(e)
	path := configFlag(fs)
	dest := fs.String("destination", "", "only this destination")
	status := fs.String("status", "", "pending, delivered or dead")
	event := fs.String("event", "", "only this event id")
	limit := fs.Int("limit", 100, "at most this many")
	asJSON := fs.Bool("json", false, "JSON lines")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	st := cursor.DeliveryStatus(*status)
	switch st {
	case "", cursor.StatusPending, cursor.StatusDelivered, cursor.StatusDead:
	default:
		return &usageError{fmt.Sprintf("deliveries: --status %q: want pending, delivered or dead", *status)}
	}
	store, done, err := openConfigured(ctx, *path)
	if err != nil {
		return err
	}
	defer done()
	ds, err := store.Deliveries(ctx, cursor.DeliveryFilter{Destination: *dest, Status: st, EventID: *event, Limit: *limit})
	if err != nil {
		return err
	}
	out := make([]deliveryRow, 0, len(ds))
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryRow{d.Destination, d.EventID, d.Seq, d.Type, string(d.Status), d.Attempts, d.NextAt, d.LastStatus, d.LastError, d.CreatedAt, d.DoneAt})
		next := "-"
		if d.Status == cursor.StatusPending {
			next = fmtTime(d.NextAt)
		}
		last := "-"
		if d.LastStatus != 0 {
			last = strconv.Itoa(d.LastStatus)
		}
		rows = append(rows, []string{d.Destination, d.EventID, d.Type, string(d.Status), strconv.Itoa(d.Attempts), next, last, oneLine(d.LastError, 60)})
	}
	if *asJSON {
		return jsonLines(e.stdout, out)
	}
	return table(e.stdout, []string{"DESTINATION", "EVENT", "TYPE", "STATUS", "ATTEMPTS", "NEXT", "LAST", "ERROR"}, rows)
}
