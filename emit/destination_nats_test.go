package emit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/natstest"
)

// natsDest is a destination publishing to url on subject, a stream of the
// test's own unless edit says otherwise.
func natsDest(name, url, subject, stream string, edit ...func(*config.Destination)) config.Destination {
	return destConfig(name, url, append([]func(*config.Destination){func(d *config.Destination) {
		d.Subject, d.Stream = subject, stream
	}}, edit...)...)
}

// streamInfo returns the stream's configuration and state.
func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestNATSPublishes publishes one event: the stream pollhook creates
// captures the template, and the message carries the body in the
// destination's format, Nats-Msg-Id = the event id, and the Standard
// Webhooks headers, whose signature verifies.
func TestNATSPublishes(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	d := newDest(t, natsDest("bus", url, prefix+".{resource}.{type}", stream, func(d *config.Destination) {
		d.Secret = testSecret
		d.Headers = map[string]string{"X-Tenant": "acme", "Nats-Msg-Id": "not-this"}
	}), Options{})
	ev := event("42", "updated")
	a := d.Send(context.Background(), []cursor.Event{ev})
	if !a.OK() || a.BodyID != ev.ID || a.Response != "stream "+stream+" seq 1" {
		t.Fatalf("attempt = %+v", a)
	}

	info := streamInfo(t, js, stream)
	if want := []string{prefix + ".*.*.*"}; !slices.Equal(info.Config.Subjects, want) || info.Config.Storage != jetstream.FileStorage {
		t.Errorf("created stream: subjects %v, storage %v; want %v on file storage", info.Config.Subjects, info.Config.Storage, want)
	}
	msgs := natstest.Messages(t, js, stream)
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if want := prefix + ".contacts.contact.updated"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Errorf("Nats-Msg-Id %q, want the event id %q", got, ev.ID)
	}
	if m.Header.Get("X-Tenant") != "acme" || m.Header.Get(HeaderContentType) != ContentTypeJSON {
		t.Errorf("headers %v", m.Header)
	}
	var env Envelope
	if err := json.Unmarshal(m.Data, &env); err != nil || env.ID != ev.ID || env.ObjectID != "42" {
		t.Errorf("body %s: %v", m.Data, err)
	}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	for _, k := range []string{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature} {
		h.Set(k, m.Header.Get(k))
	}
	if err := wh.Verify(m.Data, h); err != nil || h.Get(HeaderWebhookID) != ev.ID {
		t.Errorf("signature of the message: %v (headers %v)", err, m.Header)
	}
}

// TestNATSBatchPublishesEachEvent publishes a batch asynchronously: one
// message per event, in order, each in the format's single-event shape
// under its own id; publishing it again (a retry, or a restart before
// the outcome was recorded) adds nothing to the stream.
func TestNATSBatchPublishesEachEvent(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	d := newDest(t, natsDest("bus", url, prefix+".{source}.{object}.{verb}", stream, func(d *config.Destination) {
		d.Format = config.FormatCloudEvents
		d.Batch.MaxEvents = 100
	}), Options{})
	var events []cursor.Event
	for i := range 50 {
		events = append(events, event(fmt.Sprint(i), []string{"created", "updated", "deleted"}[i%3]))
	}
	a := d.Send(context.Background(), events)
	if !a.OK() || a.BodyID != "" || a.Response != "stream "+stream+" seq 1-50" {
		t.Fatalf("attempt = %+v", a)
	}
	a = d.Send(context.Background(), events)
	if !a.OK() || a.Response != "stream "+stream+" seq 1-50 (50 duplicate)" {
		t.Fatalf("second attempt = %+v", a)
	}
	msgs := natstest.Messages(t, js, stream)
	if len(msgs) != len(events) {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), len(events))
	}
	for i, m := range msgs {
		ev := events[i]
		var ce struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if err := json.Unmarshal(m.Data, &ce); err != nil || ce.ID != ev.ID || ce.Type != ev.Type {
			t.Fatalf("message %d: body %s (%v), want the CloudEvent of %s", i, m.Data, err, ev.ID)
		}
		_, verb, _ := strings.Cut(ev.Type, ".")
		if want := prefix + ".keap.contact." + verb; m.Subject != want {
			t.Errorf("message %d: subject %q, want %q", i, m.Subject, want)
		}
		if m.Header.Get(jetstream.MsgIDHeader) != ev.ID || m.Header.Get(HeaderWebhookID) != ev.ID || m.Header.Get(HeaderContentType) != ContentTypeCloudEvent {
			t.Errorf("message %d: headers %v", i, m.Header)
		}
	}
}

// TestNATSConcurrentSends publishes from several goroutines at once, as
// an engine with max_in_flight above 1 does, over one connection.
func TestNATSConcurrentSends(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	d := newDest(t, natsDest("bus", url, prefix+".{type}", stream, func(d *config.Destination) { d.Batch.MaxEvents = 10 }), Options{})
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Go(func() {
			var evs []cursor.Event
			for i := range 10 {
				evs = append(evs, event(fmt.Sprintf("%d-%d", s, i), "created"))
			}
			if a := d.Send(context.Background(), evs); !a.OK() {
				t.Error(a.Err)
			}
		})
	}
	wg.Wait()
	if n := streamInfo(t, js, stream).State.Msgs; n != 80 {
		t.Errorf("stream holds %d messages, want 80", n)
	}
}

// TestNATSExistingStreamUsedAsItIs leaves a stream the operator made
// alone: its subjects and limits stay as they were.
func TestNATSExistingStreamUsedAsItIs(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage, MaxMsgs: 1000}); err != nil {
		t.Fatal(err)
	}
	d := newDest(t, natsDest("bus", url, prefix+".{resource}.{type}", stream), Options{})
	if a := d.Send(ctx, []cursor.Event{event("1", "created")}); !a.OK() {
		t.Fatal(a.Err)
	}
	info := streamInfo(t, js, stream)
	if !slices.Equal(info.Config.Subjects, []string{prefix + ".>"}) || info.Config.MaxMsgs != 1000 || info.Config.Storage != jetstream.MemoryStorage || info.State.Msgs != 1 {
		t.Errorf("stream after the send: %+v, %d messages", info.Config, info.State.Msgs)
	}
}

// TestNATSRefusals fails the attempt, with an error that says why, when
// no stream takes the message.
func TestNATSRefusals(t *testing.T) {
	url, js := natstest.Shared(t)
	ctx := context.Background()
	t.Run("no stream captures the subject", func(t *testing.T) {
		_, prefix := natstest.Names(t, js)
		d := newDest(t, natsDest("bus", url, prefix+".{type}", ""), Options{})
		a := d.Send(ctx, []cursor.Event{event("1", "created")})
		if a.OK() || !strings.Contains(a.Err.Error(), "no stream captures the subject; set stream: NAME") || !strings.Contains(a.Err.Error(), prefix+".contact.created") {
			t.Errorf("attempt = %+v", a)
		}
	})
	t.Run("the subject belongs to another stream", func(t *testing.T) {
		other, prefix := natstest.Names(t, js)
		stream, _ := natstest.Names(t, js)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: other, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		d := newDest(t, natsDest("bus", url, prefix+".{type}", stream), Options{})
		a := d.Send(ctx, []cursor.Event{event("1", "created")})
		if a.OK() || !strings.Contains(a.Err.Error(), "create stream "+stream+" for subject "+prefix+".*.*") || !strings.Contains(a.Err.Error(), "overlap") {
			t.Errorf("attempt = %+v", a)
		}
	})
	t.Run("the stream is full", func(t *testing.T) {
		stream, prefix := natstest.Names(t, js)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage,
			MaxMsgs: 1, Discard: jetstream.DiscardNew}); err != nil {
			t.Fatal(err)
		}
		d := newDest(t, natsDest("bus", url, prefix+".{type}", stream, func(d *config.Destination) { d.Batch.MaxEvents = 10 }), Options{})
		a := d.Send(ctx, []cursor.Event{event("1", "created"), event("2", "created"), event("3", "created")})
		if a.OK() || !strings.Contains(a.Err.Error(), "2 of 3 messages not acknowledged") || !strings.Contains(a.Err.Error(), "maximum messages exceeded") {
			t.Errorf("attempt = %+v", a)
		}
	})
	// The shared server takes messages up to its default 1 MB: a record
	// of 600 KB goes, its update with the record before it does not, and
	// the attempt says why and what to do.
	t.Run("a message over the server's max_payload", func(t *testing.T) {
		stream, prefix := natstest.Names(t, js)
		d := newDest(t, natsDest("bus", url, prefix+".{type}", stream), Options{})
		ev := event("1", "updated")
		ev.Data = json.RawMessage(`{"id":"1","notes":"` + strings.Repeat("x", 600_000) + `"}`)
		if a := d.Send(ctx, []cursor.Event{ev}); !a.OK() {
			t.Fatalf("600 KB record: %v", a.Err)
		}
		ev.ID, ev.Previous = "evt_with_previous", ev.Data
		a := d.Send(ctx, []cursor.Event{ev})
		if a.OK() || !strings.Contains(a.Err.Error(), "maximum payload exceeded") ||
			!strings.Contains(a.Err.Error(), "at most 1048576 bytes on this server (its max_payload)") ||
			!strings.Contains(a.Err.Error(), "raise the server's max_payload") {
			t.Errorf("attempt = %+v", a)
		}
	})
}

// TestNATSStreamDeletedIsCreatedAgain: a stream pollhook created and an
// operator deleted fails one attempt, and the next creates it again.
func TestNATSStreamDeletedIsCreatedAgain(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	ctx := context.Background()
	d := newDest(t, natsDest("bus", url, prefix+".{type}", stream), Options{})
	if a := d.Send(ctx, []cursor.Event{event("1", "created")}); !a.OK() {
		t.Fatal(a.Err)
	}
	if err := js.DeleteStream(ctx, stream); err != nil {
		t.Fatal(err)
	}
	if a := d.Send(ctx, []cursor.Event{event("2", "created")}); a.OK() || !strings.Contains(a.Err.Error(), "stream "+stream+" is missing or does not capture it") {
		t.Fatalf("attempt after the stream was deleted = %+v", a)
	}
	if a := d.Send(ctx, []cursor.Event{event("2", "created")}); !a.OK() {
		t.Fatalf("attempt after that: %v", a.Err)
	}
	if n := streamInfo(t, js, stream).State.Msgs; n != 1 {
		t.Errorf("the stream made again holds %d messages, want 1", n)
	}
}

// TestNATSServerDown fails at once, saying where it could not connect,
// and never shows the password of the URL.
func TestNATSServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := newDest(t, natsDest("bus", "nats://u:hunter2@"+addr, "a.{type}", "S"), Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "created")})
	if a.OK() || !strings.Contains(a.Err.Error(), "connect to nats://"+addr) || strings.Contains(a.Err.Error(), "hunter2") {
		t.Errorf("attempt = %+v", a)
	}
	d.Close()
	if a := d.Send(context.Background(), []cursor.Event{event("1", "created")}); a.OK() || !strings.Contains(a.Err.Error(), "closed") {
		t.Errorf("send after Close: %+v", a)
	}
}

// TestNATSServerSilent: a server that takes the connection but never
// answers holds an attempt no longer than the destination's timeout, and
// a stop of the engine (its context) no longer at all.
func TestNATSServerSilent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	url := "nats://" + l.Addr().String()

	d := newDest(t, natsDest("bus", url, "a.{type}", "S", func(d *config.Destination) { d.Timeout = config.Duration(300 * time.Millisecond) }), Options{})
	begin := time.Now()
	a := d.Send(context.Background(), []cursor.Event{event("1", "created")})
	if a.OK() || !strings.Contains(a.Err.Error(), "no answer within 300ms") || time.Since(begin) > 5*time.Second {
		t.Errorf("attempt = %+v after %s", a, time.Since(begin))
	}

	d = newDest(t, natsDest("bus", url, "a.{type}", "S"), Options{}) // 5s timeout
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	begin = time.Now()
	a = d.Send(ctx, []cursor.Event{event("1", "created")})
	if a.OK() || !errors.Is(a.Err, context.Canceled) || time.Since(begin) > 2*time.Second {
		t.Errorf("attempt cancelled after 100ms = %+v, returned after %s", a, time.Since(begin))
	}
}

// TestNATSBrokerRestart stops the server under a connected destination:
// attempts fail while it is down, and succeed once it is back, on the
// same connection (the client reconnects by itself).
func TestNATSBrokerRestart(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream()
	ctx := context.Background()
	d := newDest(t, natsDest("bus", srv.URL, "p.{type}", "RESTART", func(d *config.Destination) { d.Timeout = config.Duration(2 * time.Second) }), Options{})
	if a := d.Send(ctx, []cursor.Event{event("1", "created")}); !a.OK() {
		t.Fatal(a.Err)
	}
	srv.Stop()
	a := d.Send(ctx, []cursor.Event{event("2", "created")})
	if a.OK() || !strings.Contains(a.Err.Error(), "not connected") {
		t.Fatalf("attempt while the server is down = %+v", a)
	}
	srv.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a = d.Send(ctx, []cursor.Event{event("2", "created")})
		if a.OK() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 20s after the server came back: %v", a.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := streamInfo(t, js, "RESTART").State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

// TestNATSCredentials logs in with a user and password, and with a
// token; wrong credentials fail the attempt.
func TestNATSCredentials(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		args     []string
		good     config.NATS
		bad      config.NATS
		inURL    string
		badInURL string
	}{
		{"user and password", []string{"--user", "pollhook", "--pass", "s3cret"},
			config.NATS{User: "pollhook", Password: "s3cret"}, config.NATS{User: "pollhook", Password: "wrong"}, "pollhook:s3cret@", "pollhook:nope@"},
		{"token", []string{"--auth", "t0ken"},
			config.NATS{Token: "t0ken"}, config.NATS{Token: "wrong"}, "t0ken@", "nope@"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Start(t, tc.args...)
			host := strings.TrimPrefix(srv.URL, "nats://")
			for _, c := range []struct {
				what string
				url  string
				auth config.NATS
				ok   bool
			}{
				{"config keys", srv.URL, tc.good, true},
				{"url", "nats://" + tc.inURL + host, config.NATS{}, true},
				{"wrong keys", srv.URL, tc.bad, false},
				{"wrong url", "nats://" + tc.badInURL + host, config.NATS{}, false},
				{"none", srv.URL, config.NATS{}, false},
			} {
				d := newDest(t, natsDest("bus", c.url, "p.{type}", "CREDS", func(d *config.Destination) { d.NATS = c.auth }), Options{})
				a := d.Send(ctx, []cursor.Event{event("1", "created")})
				if a.OK() != c.ok {
					t.Errorf("%s: attempt = %+v, want OK %v", c.what, a, c.ok)
				}
				if !a.OK() && !strings.Contains(strings.ToLower(a.Err.Error()), "authorization") {
					t.Errorf("%s: error %v does not say the login was refused", c.what, a.Err)
				}
			}
		})
	}
}

// TestNATSPermissionRefused: a publish the server's permissions refuse
// gets no acknowledgement; the attempt fails within the timeout and says
// what the server said.
func TestNATSPermissionRefused(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(`authorization {
  users = [ { user: pollhook, password: s3cret, permissions: { publish: { deny: ["forbidden.>"] } } } ]
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Start(t, "-c", conf)
	d := newDest(t, natsDest("bus", srv.URL, "forbidden.{type}", "", func(d *config.Destination) {
		d.NATS = config.NATS{User: "pollhook", Password: "s3cret"}
		d.Timeout = config.Duration(time.Second)
	}), Options{})
	a := d.Send(context.Background(), []cursor.Event{event("1", "created")})
	if a.OK() || !strings.Contains(a.Err.Error(), "no answer within 1s") || !strings.Contains(strings.ToLower(a.Err.Error()), "permissions violation for publish") {
		t.Errorf("attempt = %+v", a)
	}
}

// TestNATSCredsFile refuses a file that is not a NATS credentials file
// when the destination is made, not at the first delivery.
func TestNATSCredsFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "user.creds")
	if err := os.WriteFile(bad, []byte("not credentials"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		bad:                           "is not a NATS credentials file",
		filepath.Join(dir, "missing"): "no such file",
	} {
		_, err := NewDestination(natsDest("bus", natstest.DefaultURL, "p.{type}", "", func(d *config.Destination) { d.NATS.Creds = path }), Options{})
		if err == nil || !strings.Contains(err.Error(), "destination bus: nats.creds: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("creds %s: %v, want an error with %q", path, err, want)
		}
	}
}

// TestNATSTLS connects to a server that requires TLS and a client
// certificate: with tls.ca_file, cert_file and key_file it publishes;
// without the CA, or without the client certificate, it fails.
func TestNATSTLS(t *testing.T) {
	c := newCerts(t)
	srv := natstest.Start(t, "--tlsverify", "--tlscert", c.serverCert, "--tlskey", c.serverKey, "--tlscacert", c.ca)
	requireClientTLS(t, c, func(tls config.TLS) config.Destination {
		return natsDest("bus", srv.URL, "p.{type}", "TLS", func(d *config.Destination) { d.TLS = tls })
	})
}

// TestNATSEngineRetriesRefusal runs a NATS destination in the engine: a
// stream that refuses leaves the event pending with the attempt and its
// error in the delivery log, retried on the schedule; once the stream
// takes it, it is delivered.
func TestNATSEngineRetriesRefusal(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	ctx := context.Background()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage,
		MaxMsgs: 1, Discard: jetstream.DiscardNew})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	e := h.engine(EngineOptions{}, natsDest("bus", url, prefix+".{type}", stream))
	evs := h.addN(2)
	res := h.step(e)
	if res.Delivered != 1 || res.Failed != 1 {
		t.Fatalf("first step: %+v, want 1 delivered and 1 failed (the stream holds 1 message)", res)
	}
	var refused cursor.Event
	for _, ev := range evs {
		if dl := h.delivery("bus", ev.ID); dl.Status == cursor.StatusPending {
			refused = ev
			if dl.Attempts != 1 || !strings.Contains(dl.LastError, "maximum messages exceeded") {
				t.Errorf("refused delivery = %+v", dl)
			}
		}
	}
	if refused.ID == "" {
		t.Fatal("no delivery left pending")
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs = 10
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(30 * time.Second)
	if res := h.step(e); res.Delivered != 0 {
		t.Fatalf("retried before the schedule's 1m: %+v", res)
	}
	h.clock.Advance(31 * time.Second)
	if res := h.step(e); res.Delivered != 1 {
		t.Fatalf("retry step: %+v", res)
	}
	if dl := h.delivery("bus", refused.ID); dl.Status != cursor.StatusDelivered || dl.Attempts != 2 {
		t.Errorf("delivery after the retry = %+v", dl)
	}
	msgs := natstest.Messages(t, js, stream)
	var ids []string
	for _, m := range msgs {
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	slices.Sort(ids)
	if want := []string{evs[0].ID, evs[1].ID}; !slices.Equal(ids, want) {
		t.Errorf("stream holds %v, want %v once each", ids, want)
	}
}

// TestNATSBatchAttemptsNameEachEvent: a batch published as one message
// an event logs each event's attempt under the id its message carried,
// not a batch id no message had.
func TestNATSBatchAttemptsNameEachEvent(t *testing.T) {
	url, js := natstest.Shared(t)
	stream, prefix := natstest.Names(t, js)
	h := newHarness(t)
	e := h.engine(EngineOptions{}, natsDest("bus", url, prefix+".{type}", stream, func(d *config.Destination) { d.Batch.MaxEvents = 10 }))
	evs := h.addN(3)
	if res := h.step(e); res.Delivered != 3 || res.Requests != 1 {
		t.Fatalf("step: %+v, want 3 delivered in 1 request", res)
	}
	for _, ev := range evs {
		log, err := h.store.Attempts(context.Background(), cursor.AttemptFilter{Destination: "bus", EventID: ev.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != 1 || log[0].BodyID != ev.ID {
			t.Errorf("attempts of %s: %+v, want one under the event's own id", ev.ID, log)
		}
	}
}
