package emit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/redact"
)

// HeaderContentType is the header of a NATS message that says what its
// body is, as Content-Type does for HTTP.
const HeaderContentType = "Content-Type"

// natsTransport publishes events to a NATS JetStream stream, one message
// per event, and counts a Send done when the stream has acknowledged
// every message.
//
// It connects at the first Send and keeps the connection, which the NATS
// client re-establishes in the background after a loss; while it is lost,
// a Send fails at once (nothing is buffered), and the engine retries the
// events on the destination's schedule. A stream named by the
// configuration is looked up (and created when missing) once per
// connection, and again after a publish found no stream.
type natsTransport struct {
	d       *Destination
	servers string // the server URLs, comma-separated, as nats.Connect takes them
	safe    string // servers as redact.URL shows them, for errors
	subject *config.Subject
	stream  string
	opts    []nats.Option
	pubOpts []jetstream.PublishOpt
	pending int // async publishes a connection may have unacknowledged

	// asyncErr is the last error the server reported out of band (a
	// permissions violation, say), which a publish left unanswered
	// because of it cannot carry.
	asyncErr atomic.Pointer[error]

	mu     sync.Mutex // guards the fields below; held while connecting
	nc     *nats.Conn
	js     jetstream.JetStream
	ready  bool // the stream is known to exist on this connection
	closed bool
}

// newNATS returns the transport of d, a NATS destination. It reads the
// files the configuration names (credentials, TLS) to check them, and
// connects to nothing.
func newNATS(d *Destination) (*natsTransport, error) {
	cfg := &d.cfg
	servers, err := config.NATSServers(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	subject, err := config.ParseSubject(cfg.Subject)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	n := &natsTransport{
		d:       d,
		servers: strings.Join(servers, ","),
		subject: subject,
		stream:  cfg.Stream,
		pending: max(cfg.Batch.MaxEvents, 1) * max(cfg.MaxInFlight, 1),
	}
	n.safe = redact.URL(n.servers)
	if n.stream != "" {
		n.pubOpts = append(n.pubOpts, jetstream.WithExpectStream(n.stream))
	}
	n.opts = []nats.Option{
		nats.Name("pollhook " + cfg.Name),
		nats.Timeout(d.timeout),
		// Reconnect for ever, in the background; while disconnected, a
		// publish fails at once instead of being buffered, so that the
		// attempt fails and is retried on the schedule.
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				d.log.Info("nats connection lost; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			d.log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			n.asyncErr.Store(&err)
		}),
	}
	auth := cfg.NATS
	switch {
	case auth.User != "":
		n.opts = append(n.opts, nats.UserInfo(auth.User, string(auth.Password)))
	case auth.Token != "":
		n.opts = append(n.opts, nats.Token(string(auth.Token)))
	case auth.Creds != "":
		if err := checkCreds(auth.Creds); err != nil {
			return nil, err
		}
		n.opts = append(n.opts, nats.UserCredentials(auth.Creds))
	}
	tc, err := tlsConfig(cfg.TLS, d.log)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		n.opts = append(n.opts, nats.Secure(tc))
	}
	return n, nil
}

// checkCreds reads a NATS credentials file to check that it is one; the
// client reads it again at each connection, so that a renewed file is
// taken up.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("nats.creds: %w", err)
	}
	if !bytes.Contains(b, []byte("BEGIN NATS USER JWT")) || !bytes.Contains(b, []byte("BEGIN USER NKEY SEED")) {
		return fmt.Errorf("nats.creds: %s is not a NATS credentials file (want the user JWT and nkey seed that nsc writes in a .creds file)", path)
	}
	return nil
}

// conn returns the connection, connecting first when there is none (or
// the last one was closed), and makes sure the configured stream exists.
func (n *natsTransport) conn(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, errors.New("publish events: destination closed")
	}
	if n.nc == nil || n.nc.IsClosed() {
		nc, err := n.connect(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("connect to %s: %w", n.safe, n.timedOut(ctx, err))
		}
		js, err := jetstream.New(nc,
			jetstream.WithPublishAsyncMaxPending(n.pending),
			jetstream.WithPublishAsyncTimeout(n.d.timeout))
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("connect to %s: %w", n.safe, n.timedOut(ctx, err))
		}
		n.nc, n.js, n.ready = nc, js, false
	}
	if !n.ready && n.stream != "" {
		if err := n.ensureStream(ctx); err != nil {
			return nil, nil, err
		}
	}
	n.ready = true
	return n.nc, n.js, nil
}

// connect connects to the servers, or gives up when ctx is done (a
// stop of the engine does not wait for a server that does not answer);
// a connection made after that is closed.
func (n *natsTransport) connect(ctx context.Context) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(n.servers, n.opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		return r.nc, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// ensureStream looks the configured stream up and creates it when it is
// missing, capturing the subject template with its placeholders as
// wildcards; a stream that exists is used as it is. n.mu is held.
func (n *natsTransport) ensureStream(ctx context.Context) error {
	_, err := n.js.Stream(ctx, n.stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("look up stream %s on %s: %w", n.stream, n.safe, n.explain(err))
	}
	subjects := []string{n.subject.Wildcard()}
	_, err = n.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        n.stream,
		Description: "events of pollhook destination " + n.d.cfg.Name,
		Subjects:    subjects,
		Storage:     jetstream.FileStorage,
	})
	switch {
	case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		// Made meanwhile by another process: use it as it is.
		return nil
	case err != nil:
		return fmt.Errorf("create stream %s for subject %s on %s: %w", n.stream, subjects[0], n.safe, n.explain(err))
	}
	n.d.log.Info("nats stream created", "stream", n.stream, "subjects", subjects[0])
	return nil
}

// message is one event ready to publish.
type message struct {
	id  string
	msg *nats.Msg
}

func (n *natsTransport) send(ctx context.Context, events []cursor.Event, a *Attempt) {
	d := n.d
	msgs := make([]message, len(events))
	for i, e := range events {
		m, err := n.message(e, a)
		if err != nil {
			a.Err = err
			return
		}
		msgs[i] = message{id: e.ID, msg: m}
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	nc, js, err := n.conn(ctx)
	if err != nil {
		a.Err = n.timedOut(ctx, err)
		return
	}
	if !nc.IsConnected() {
		a.Err = fmt.Errorf("publish to %s: not connected (%s); the client reconnects in the background", n.safe, strings.ToLower(nc.Status().String()))
		if last := nc.LastError(); last != nil {
			a.Err = fmt.Errorf("%w: last error: %w", a.Err, last)
		}
		return
	}
	acks := make([]*jetstream.PubAck, len(msgs))
	errs := make([]error, len(msgs))
	if len(msgs) == 1 {
		acks[0], errs[0] = js.PublishMsg(ctx, msgs[0].msg, n.pubOpts...)
	} else {
		n.publishAsync(ctx, js, msgs, acks, errs)
	}
	n.outcome(ctx, msgs, acks, errs, a)
	if errors.Is(a.Err, nats.ErrMaxPayload) {
		a.Err = fmt.Errorf("%w: a message takes at most %d bytes on this server (its max_payload), and an event's body here has %d; "+
			"an update carries its record twice (data and previous): raise the server's max_payload, or make the records smaller "+
			"(transform, or keep_content: false on the resource)", a.Err, nc.MaxPayload(), largest(msgs))
	}
}

// largest is the size of the largest body of msgs.
func largest(msgs []message) int {
	n := 0
	for _, m := range msgs {
		n = max(n, len(m.msg.Data))
	}
	return n
}

// message returns the message of event e: its body in the destination's
// format, Nats-Msg-Id (the stream's de-duplication key) and the headers
// an HTTP delivery carries.
func (n *natsTransport) message(e cursor.Event, a *Attempt) (*nats.Msg, error) {
	d := n.d
	subj, err := n.subject.Expand(config.SubjectValues{Resource: e.Resource, Object: e.Object, Type: e.Type, Source: e.Source})
	if err != nil {
		return nil, fmt.Errorf("publish event %s: %w", e.ID, err)
	}
	body, err := d.single(e)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subj)
	m.Data = body.Bytes
	for k, v := range d.cfg.Headers {
		m.Header.Set(k, v)
	}
	// Set last: configured headers cannot replace them.
	m.Header.Set(HeaderContentType, body.ContentType)
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	d.sign.headers(e.ID, a.At, body.Bytes, m.Header.Set)
	return m, nil
}

// publishAsync publishes msgs without waiting for each acknowledgement,
// then waits for all of them (or ctx), filling in acks and errs.
func (n *natsTransport) publishAsync(ctx context.Context, js jetstream.JetStream, msgs []message, acks []*jetstream.PubAck, errs []error) {
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := js.PublishMsgAsync(m.msg, n.pubOpts...)
		if err != nil {
			// The rest is not published: this attempt fails anyway.
			for j := i; j < len(msgs); j++ {
				errs[j] = err
			}
			break
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			break
		}
		select {
		case acks[i] = <-f.Ok():
		case errs[i] = <-f.Err():
		case <-ctx.Done():
			for j := i; j < len(futures); j++ {
				if errs[j] == nil {
					errs[j] = ctx.Err()
				}
			}
			return
		}
	}
}

// outcome fills in a from the acknowledgements of msgs: a success when
// every message was acknowledged (a duplicate too: the stream has it
// already), with the stream and sequence numbers as the Response; else
// the first error and how many failed.
func (n *natsTransport) outcome(ctx context.Context, msgs []message, acks []*jetstream.PubAck, errs []error, a *Attempt) {
	failed, first := 0, -1
	dups := 0
	var lo, hi uint64
	stream := ""
	for i := range msgs {
		if errs[i] != nil || acks[i] == nil {
			failed++
			if first < 0 {
				first = i
			}
			continue
		}
		ack := acks[i]
		stream = ack.Stream
		if ack.Duplicate {
			dups++
		}
		if lo == 0 || ack.Sequence < lo {
			lo = ack.Sequence
		}
		hi = max(hi, ack.Sequence)
	}
	if stream != "" {
		a.Response = fmt.Sprintf("stream %s seq %d", stream, lo)
		if hi != lo {
			a.Response += fmt.Sprintf("-%d", hi)
		}
		if dups > 0 {
			a.Response += fmt.Sprintf(" (%d duplicate)", dups)
		}
	}
	if failed == 0 {
		return
	}
	err := errs[first]
	if err == nil {
		err = jetstream.ErrInvalidJSAck
	}
	subj := msgs[first].msg.Subject
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		n.mu.Lock()
		n.ready = false // look the stream up again: it may have been deleted
		n.mu.Unlock()
		if n.stream != "" {
			err = fmt.Errorf("no stream captures the subject (stream %s is missing or does not capture it): %w", n.stream, err)
		} else {
			err = fmt.Errorf("no stream captures the subject; set stream: NAME to have pollhook create one, or add the subject to a stream: %w", err)
		}
	}
	err = fmt.Errorf("publish to %s on %s: %w", subj, n.safe, n.timedOut(ctx, n.explain(err)))
	if len(msgs) > 1 {
		err = fmt.Errorf("%d of %d messages not acknowledged; first: %w", failed, len(msgs), err)
	}
	a.Err = err
}

// timedOut says "no answer within" the timeout when ctx's deadline
// passed, or the client's own timer (the same timeout) ran out first.
func (n *natsTransport) timedOut(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, jetstream.ErrAsyncPublishTimeout) ||
		errors.Is(err, nats.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("no answer within %s: %w", n.d.timeout, err)
	}
	return err
}

// explain adds to err what the server last reported out of band (once:
// the report is taken), which is often why a request went unanswered.
func (n *natsTransport) explain(err error) error {
	if p := n.asyncErr.Swap(nil); p != nil {
		return fmt.Errorf("%w (the server said: %w)", err, *p)
	}
	return err
}

func (n *natsTransport) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	if n.nc != nil {
		n.nc.Close()
		n.nc, n.js = nil, nil
	}
	return nil
}
