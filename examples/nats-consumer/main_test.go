package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/internal/natstest"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// lines passes each write (the consumer writes a line at a time) to the
// test.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// TestConsumer reads what a pollhook destination published: each event
// verified once, a message published again under another Nats-Msg-Id
// recognised by its webhook-id, a forged one rejected.
func TestConsumer(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	d, err := emit.NewDestination(config.Destination{
		Name: "bus", URL: url, Subject: prefix + ".{resource}.{type}", Stream: stream,
		Format: config.FormatPollhook, Secret: testSecret, Timeout: config.Duration(5 * time.Second),
	}, emit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	var ids []string
	for i, typ := range []string{"contact.created", "contact.updated"} {
		ev := cursor.Event{ID: "evt_" + typ, Type: typ, Resource: "contacts", Source: "crm", Object: "contact",
			ObjectID: string(rune('1' + i)), Data: json.RawMessage(`{}`)}
		ids = append(ids, ev.ID)
		if a := d.Send(ctx, []cursor.Event{ev}); !a.OK() {
			t.Fatal(a.Err)
		}
	}
	// The first event again, past the duplicate window (another
	// Nats-Msg-Id), and a forgery.
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	again := &nats.Msg{Subject: first.Subject, Data: first.Data, Header: first.Header}
	again.Header.Set(jetstream.MsgIDHeader, "later")
	forged := &nats.Msg{Subject: first.Subject, Data: []byte(`{"type":"contact.deleted"}`), Header: nats.Header{}}
	for k, v := range first.Header {
		forged.Header[k] = v
	}
	forged.Header.Set(jetstream.MsgIDHeader, "forged")
	forged.Header.Set("webhook-id", "evt_forged")
	for _, m := range []*nats.Msg{again, forged} {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	out := make(lines, 10)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-url", url, "-stream", stream, "-durable", "test", "-secret", testSecret}, out)
	}()
	want := []string{
		"verified " + ids[0] + " contact.created object 1",
		"verified " + ids[1] + " contact.updated object 2",
		"again    " + ids[0] + " (already handled)",
		"REJECTED evt_forged on " + prefix + ".contacts.contact.created: ",
	}
	timeout := time.After(20 * time.Second)
	for i, w := range want {
		select {
		case line := <-out:
			if !strings.HasPrefix(line, w) {
				t.Errorf("line %d: %q, want %q…", i+1, line, w)
			}
		case <-timeout:
			t.Fatalf("after 20s, %d lines of %d", i, len(want))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-out:
		t.Errorf("one line too many: %q", line)
	default:
	}
	info, err := js.Consumer(ctx, stream, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ci := info.CachedInfo(); ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Errorf("consumer left %d unacknowledged, %d pending", ci.NumAckPending, ci.NumPending)
	}
}
