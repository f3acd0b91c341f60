// Command nats-consumer reads pollhook's events from a NATS JetStream
// stream, as an application would: through a durable consumer (which
// remembers, on the server, how far it got), verifying each message's
// Standard Webhooks signature, skipping an event id it has already
// handled, and acknowledging each message once it is handled.
//
//	go run ./examples/nats-consumer -url nats://127.0.0.1:4222 -stream POLLHOOK \
//	    -durable my-app -secret "$WEBHOOK_SECRET"
//
// It prints one line per event and runs until interrupted. A message
// whose signature does not verify is terminated (never redelivered) and
// reported; without -secret, signatures are not checked.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nats-consumer:", err)
		os.Exit(1)
	}
}

// run consumes until ctx is done.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("nats-consumer", flag.ContinueOnError)
	url := fs.String("url", nats.DefaultURL, "NATS server URL(s), comma-separated")
	stream := fs.String("stream", "POLLHOOK", "the stream pollhook publishes to")
	durable := fs.String("durable", "pollhook-consumer", "the durable consumer's name: where this reader stopped is kept under it")
	filter := fs.String("subject", "", "only the subjects this filter matches, such as pollhook.contacts.>; empty: all")
	secret := fs.String("secret", "", "the destination's whsec_ secret, to verify signatures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var wh *standardwebhooks.Webhook
	if *secret != "" {
		var err error
		if wh, err = standardwebhooks.NewWebhook(*secret); err != nil {
			return fmt.Errorf("secret: %w", err)
		}
	}
	nc, err := nats.Connect(*url, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, *stream, jetstream.ConsumerConfig{
		Durable:       *durable,
		FilterSubject: *filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s on stream %s: %w", *durable, *stream, err)
	}
	h := &handler{wh: wh, out: out, seen: map[string]bool{}}
	cc, err := cons.Consume(h.handle)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cc.Stop()
	// Ack and Term are sent without waiting for the server: a round trip
	// makes sure those of the messages handled reached it before the
	// connection closes (else they come again to the next run).
	return nc.Flush()
}

// handler handles one message at a time.
type handler struct {
	wh  *standardwebhooks.Webhook
	out io.Writer

	mu sync.Mutex
	// seen holds the event ids handled. pollhook may publish an event
	// again (after a crash, or a retry later than the stream's duplicate
	// window): the id says it is the same event. A real application
	// keeps this where it keeps its own state.
	seen map[string]bool
}

func (h *handler) handle(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hdr := m.Headers()
	id := hdr.Get("webhook-id")
	if h.wh != nil {
		sig := http.Header{}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			sig.Set(k, hdr.Get(k))
		}
		if err := h.wh.Verify(m.Data(), sig); err != nil {
			m.Term()
			fmt.Fprintf(h.out, "REJECTED %s on %s: %v\n", id, m.Subject(), err)
			return
		}
	}
	if h.seen[id] {
		m.Ack()
		fmt.Fprintf(h.out, "again    %s (already handled)\n", id)
		return
	}
	var ev struct {
		Type     string `json:"type"`
		ObjectID string `json:"object_id"`
	}
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		// Another format than pollhook's: show the subject only.
		ev.Type = m.Subject()
	}
	fmt.Fprintf(h.out, "%-8s %s %s object %s\n", verified(h.wh), id, ev.Type, ev.ObjectID)
	h.seen[id] = true
	if err := m.DoubleAck(context.Background()); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		fmt.Fprintf(h.out, "ack %s: %v\n", id, err)
	}
}

func verified(wh *standardwebhooks.Webhook) string {
	if wh == nil {
		return "event"
	}
	return "verified"
}
