package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
)

func init() {
	register(&command{
		name:    "events",
		summary: "list events in the outbox",
		usage: `Usage: pollhook events [-c FILE | --state FILE] [--resource R] [--type T] [--since D] [--limit N] [--json]

Lists the newest events in the outbox (the last --limit of those that
match), oldest first: their sequence number, when they were detected, their
type, object id and event id. --type takes a glob over noun.verb
(contact.*, *.deleted); --since an RFC 3339 time or a duration before now
(2h). --json prints each event as one JSON line in the pollhook envelope.

It reads only the state file: of the config, only state.path is read, so
the API tokens and receiver secrets need not be set; --state names the
file itself.

Examples:
  pollhook events --type '*.deleted' --since 24h
  pollhook events --resource contacts --json | jq .data.email
  pollhook events --state pollhook-data/keap-contacts.db --limit 10
`,
		run: runEvents,
	})
}

func runEvents(ctx context.Context, e *env, args []string) error {
	c := commands["events"]
	fs := c.flags(e)
	src := stateFlags(fs)
	resource := fs.String("resource", "", "only the events of this resource `R`")
	typ := fs.String("type", "", "only these types: a `GLOB` over noun.verb")
	sinceArg := fs.String("since", "", "only events detected since `D`: an RFC 3339 time or a duration before now")
	limit := fs.Int("limit", 1000, "the newest `N` events that match (0 = all)")
	asJSON := fs.Bool("json", false, "one JSON line per event, in the pollhook envelope")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	since, err := parseSince("--since", *sinceArg, time.Now())
	if err != nil {
		return err
	}
	if *limit < 0 {
		return &usageError{fmt.Sprintf("events: --limit %d: want 0 (all) or more", *limit)}
	}
	store, err := src.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	// The newest N: every match is read in outbox order, and the last N
	// kept.
	last := newTail[cursor.Event](*limit)
	err = store.EachEvent(ctx, cursor.EventFilter{Resource: *resource, Type: *typ, Since: since}, func(ev cursor.Event) error {
		last.add(ev)
		return nil
	})
	if err != nil {
		return err
	}
	events := last.items()
	if *asJSON {
		envs := make([]emit.Envelope, len(events))
		for i, ev := range events {
			envs[i] = emit.NewEnvelope(ev)
		}
		return jsonLines(e.stdout, envs)
	}
	rows := make([][]string, len(events))
	for i, ev := range events {
		rows[i] = []string{strconv.FormatInt(ev.Seq, 10), fmtTime(ev.DetectedAt), ev.Type, ev.ObjectID, ev.ID}
	}
	return table(e.stdout, []string{"SEQ", "DETECTED", "TYPE", "OBJECT_ID", "ID"}, rows)
}

// tail keeps the last n values added (all of them when n is 0).
type tail[T any] struct {
	n    int
	buf  []T
	next int // where the next value goes once buf is full
}

func newTail[T any](n int) *tail[T] { return &tail[T]{n: n} }

func (t *tail[T]) add(v T) {
	if t.n == 0 || len(t.buf) < t.n {
		t.buf = append(t.buf, v)
		return
	}
	t.buf[t.next] = v
	t.next = (t.next + 1) % t.n
}

// items returns the values kept, in the order they were added.
func (t *tail[T]) items() []T {
	return append(t.buf[t.next:len(t.buf):len(t.buf)], t.buf[:t.next]...)
}
