package main

import (
	"context"
	"strconv"
	"time"

	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
)

func init() {
	register(&command{
		name:    "events",
		summary: "list events in the outbox",
		usage: `Usage: pollhook events [-c FILE] [--resource R] [--type T] [--since D] [--limit N] [--json]

Lists the events in the outbox, oldest first: their id, type, object id and
when they were detected. --type takes a glob over noun.verb (contact.*,
*.deleted); --since an RFC 3339 time or a duration before now (2h). --json
prints each event as one JSON line in the pollhook envelope.

Examples:
  pollhook events --type '*.deleted' --since 24h
  pollhook events --resource contacts --json | jq .data.email
`,
		run: runEvents,
	})
}

func runEvents(ctx context.Context, e *env, args []string) error {
	c := commands["events"]
	fs := c.flags(e)
	path := configFlag(fs)
	resource := fs.String("resource", "", "only this resource")
	typ := fs.String("type", "", "only these types (a glob over noun.verb)")
	sinceArg := fs.String("since", "", "only events detected since (RFC 3339 or a duration before now)")
	limit := fs.Int("limit", 1000, "at most this many events (0 = all)")
	asJSON := fs.Bool("json", false, "JSON lines")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	since, err := parseSince("--since", *sinceArg, time.Now())
	if err != nil {
		return err
	}
	store, done, err := openConfigured(ctx, *path)
	if err != nil {
		return err
	}
	defer done()
	var envs []emit.Envelope
	var rows [][]string
	err = store.EachEvent(ctx, cursor.EventFilter{Resource: *resource, Type: *typ, Since: since, Limit: *limit}, func(ev cursor.Event) error {
		if *asJSON {
			envs = append(envs, emit.NewEnvelope(ev))
		} else {
			rows = append(rows, []string{strconv.FormatInt(ev.Seq, 10), fmtTime(ev.DetectedAt), ev.Type, ev.ObjectID, ev.ID})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return jsonLines(e.stdout, envs)
	}
	return table(e.stdout, []string{"SEQ", "DETECTED", "TYPE", "OBJECT_ID", "ID"}, rows)
}

// openConfigured opens the state store named by the config at path.
func openConfigured(ctx context.Context, path string) (cursor.Store, func(), error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	s, err := openState(ctx, cfg.State)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.Close() }, nil
}
