package reliability

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollhook/pollhook/internal/natstest"
)

// natsStream reads what pollhook published to a JetStream stream as the
// Receiver records requests: each message a Delivery, its signature
// verified, its Nats-Msg-Id compared with its webhook-id and event id.
type natsStream struct {
	js   jetstream.JetStream
	name string
	wh   *standardwebhooks.Webhook

	mu          sync.Mutex
	next        uint64 // the next sequence number to read
	got         []Delivery
	held        map[string]int // messages per Nats-Msg-Id
	badSigs     int
	badBodies   int
	badMsgIDs   []string
	lastSubject string
}

func newNATSStream(t *testing.T, js jetstream.JetStream, name string) *natsStream {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return &natsStream{js: js, name: name, wh: wh, next: 1, held: map[string]int{}}
}

// Deliveries reads the messages published since the last call and
// returns every message so far, in stream order. What cannot be read now
// (no stream yet, the server restarting) is read by a later call.
func (s *natsStream) Deliveries(*testing.T) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.refresh()
	return slices.Clone(s.got)
}

// refresh reads the messages published since the last read. s.mu is held.
func (s *natsStream) refresh() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, s.name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.name, err)
	}
	for ; s.next <= info.State.LastSeq; s.next++ {
		m, err := st.GetMsg(ctx, s.next)
		if err != nil {
			return fmt.Errorf("stream %s, message %d: %w", s.name, s.next, err)
		}
		s.read(m)
	}
	return nil
}

// read checks and records one message. s.mu is held.
func (s *natsStream) read(m *jetstream.RawStreamMsg) {
	id := m.Header.Get(jetstream.MsgIDHeader)
	s.held[id]++
	s.lastSubject = m.Subject
	h := http.Header{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		h.Set(k, m.Header.Get(k))
	}
	if err := s.wh.Verify(m.Data, h); err != nil {
		s.badSigs++
		return
	}
	events, err := parseEvents(m.Data, h.Get("webhook-id"))
	if err != nil || len(events) != 1 {
		s.badBodies++
		return
	}
	if id != events[0].ID {
		s.badMsgIDs = append(s.badMsgIDs, fmt.Sprintf("message %d: Nats-Msg-Id %q, event %q", m.Sequence, id, events[0].ID))
	}
	s.got = append(s.got, Delivery{WebhookID: h.Get("webhook-id"), Body: m.Data, Events: events, At: m.Time})
}

// Bad counts the messages whose signature did not verify, and those
// whose body was not one pollhook event.
func (s *natsStream) Bad() (signatures, bodies int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badSigs, s.badBodies
}

// requireOnce fails t unless the stream holds every Nats-Msg-Id once,
// each the id of the event the message carries; it returns how many
// messages it holds.
func (s *natsStream) requireOnce(t *testing.T) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.refresh(); err != nil {
		t.Fatal(err)
	}
	var twice []string
	n := 0
	for id, c := range s.held {
		n += c
		if c != 1 {
			twice = append(twice, fmt.Sprintf("%s ×%d", id, c))
		}
	}
	slices.Sort(twice)
	if len(twice) > 0 {
		t.Errorf("the stream holds %d events more than once: %s", len(twice), strings.Join(twice[:min(10, len(twice))], ", "))
	}
	if len(s.badMsgIDs) > 0 {
		t.Errorf("messages whose Nats-Msg-Id is not their event's id: %s", strings.Join(s.badMsgIDs, "; "))
	}
	if s.lastSubject != "" && !strings.HasPrefix(s.lastSubject, "rel.") {
		t.Errorf("message on subject %q, want rel.{resource}.{type}", s.lastSubject)
	}
	return n
}

// natsDestination is the destination lines of a world delivering to
// stream EVENTS, batch events a publish.
func natsDestination(batch int) string {
	return fmt.Sprintf("    subject: rel.{resource}.{type}\n    stream: EVENTS\n    batch: { max_events: %d }\n", batch)
}

// TestNATSBrokerOutage stops the NATS server three times, for ten retry
// steps each, while the upstream changes: the attempts fail, and once the
// server is back everything arrives; the stream holds each event once.
func TestNATSBrokerOutage(t *testing.T) {
	t.Parallel()
	for i, batch := range []int{1, 20} {
		name := "one event a publish"
		if batch > 1 {
			name = fmt.Sprintf("batches of %d", batch)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fig := newFigures(t, "7. NATS broker stopped and restarted, "+name)
			fig.TrialsOf = "outages"
			w := newWorld(t, UpstreamOptions{Seed: uint64(20 + i), RealTime: true, Initial: 40})
			srv := natstest.Start(t)
			w.stream = newNATSStream(t, srv.JetStream(), "EVENTS")
			cfg := w.config(setup{DestURL: srv.URL, DestExtra: natsDestination(batch)})
			p := startReady(t, cfg)
			waitClean(t, w, 30*time.Second)

			stopServer := func() func() {
				srv.Stop()
				return srv.Start
			}
			failed := w.outages(t, p, fig, []func() func(){stopServer, stopServer, stopServer})
			w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
			n := w.stream.requireOnce(t)
			fig.Faults = int(failed)
			fig.Note = fmt.Sprintf("%s each; %g failed attempts; the stream holds %d messages, each event once", outage, failed, n)
		})
	}
}

// TestNATSKillBetweenPublishAndAck holds the stream's acknowledgements
// back (a proxy between pollhook and the server stops passing the
// server's replies) until pollhook has published, then kills pollhook
// with SIGKILL: the events are in the stream but not recorded as
// delivered. The next run takes over the killed process's lease on the
// destination at once and publishes them again under the same
// Nats-Msg-Id, and the stream keeps each once.
func TestNATSKillBetweenPublishAndAck(t *testing.T) {
	t.Parallel()
	fig := newFigures(t, "7. NATS: SIGKILL between publish and acknowledgement")
	fig.TrialsOf = "kills"
	w := newWorld(t, UpstreamOptions{Seed: 22, RealTime: true, Initial: 40})
	srv := natstest.Start(t)
	js := srv.JetStream()
	px := newReplyGate(t, strings.TrimPrefix(srv.URL, "nats://"))
	w.stream = newNATSStream(t, js, "EVENTS")
	cfg := w.config(setup{DestURL: "nats://" + px.Addr(), DestExtra: natsDestination(20)})
	p := startReady(t, cfg)
	waitClean(t, w, 30*time.Second)

	caught := 0
	for range trials(2, 10) {
		before := len(w.stream.Deliveries(t))
		px.Hold()
		for range 10 {
			w.up.Step()
		}
		published := func() bool { return len(w.stream.Deliveries(t)) > before }
		for end := time.Now().Add(20 * time.Second); !published(); pause(50 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("waited 20s for pollhook to publish while the acknowledgements are held; its log:\n%s", p.tail())
			}
		}
		p.kill()
		px.Cut()
		fig.Trials++

		// Published, in the stream, and not recorded as delivered.
		inStream := map[string]bool{}
		for _, d := range w.stream.Deliveries(t) {
			inStream[d.WebhookID] = true
		}
		for _, id := range pendingDeliveries(t, cfg) {
			if inStream[id] {
				caught++
			}
		}
		p = startReady(t, cfg)
		waitClean(t, w, 30*time.Second)
		// The stream held the events before the restart, so waitClean
		// may pass before the new process has published them again:
		// wait until it has (and so is connected), or the next hold
		// would stall its connection's handshake instead.
		waitUntil(t, 30*time.Second, "the events published again and recorded", func() bool {
			return len(pendingDeliveries(t, cfg)) == 0
		})
	}
	if caught == 0 {
		t.Error("no kill left an event in the stream unrecorded: the scenario tested nothing")
	}
	w.finish(t, p, cfg, fig, 30*time.Second, "inc", "snap")
	n := w.stream.requireOnce(t)
	fig.Faults = caught
	fig.Note = fmt.Sprintf("%d events were in the stream but not recorded as delivered at a kill, and were published again; the stream holds %d messages, each event once", caught, n)
}

// pendingDeliveries returns the ids of the events cfg's state file holds
// as pending for destination app.
func pendingDeliveries(t *testing.T, cfg string) []string {
	t.Helper()
	return cliField(t, "event_id", "deliveries", "-c", cfg, "--destination", "app", "--status", "pending", "--json", "--limit", "10000")
}

// replyGate is a TCP proxy to a NATS server that can hold back what the
// server sends (its acknowledgements among it) while passing on what the
// client sends, and cut every connection.
type replyGate struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	open  chan struct{} // closed while replies pass
	conns []net.Conn
}

func newReplyGate(t *testing.T, target string) *replyGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &replyGate{t: t, ln: ln, target: target, open: make(chan struct{})}
	close(g.open)
	go g.accept()
	t.Cleanup(func() {
		ln.Close()
		g.Cut()
	})
	return g
}

// Addr is the proxy's host:port.
func (g *replyGate) Addr() string { return g.ln.Addr().String() }

// Hold stops passing the server's bytes on; they wait in the proxy.
func (g *replyGate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

// Cut closes every connection, dropping what was held, and lets replies
// pass again.
func (g *replyGate) Cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *replyGate) accept() {
	for {
		client, err := g.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", g.target)
		if err != nil {
			client.Close()
			continue
		}
		g.mu.Lock()
		g.conns = append(g.conns, client, server)
		g.mu.Unlock()
		go func() {
			io.Copy(server, client)
			server.Close()
		}()
		go g.replies(client, server)
	}
}

// replies passes the server's bytes to the client while the gate is
// open.
func (g *replyGate) replies(client, server net.Conn) {
	defer client.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			g.mu.Lock()
			open := g.open
			g.mu.Unlock()
			<-open
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
