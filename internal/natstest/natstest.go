// Package natstest gives tests a real NATS server with JetStream: the
// machine's shared one, on which each test gets a stream of its own,
// deleted when the test ends; or a private nats-server process, which a
// test may stop and start again. Without a server (or its binary) the
// tests skip and say why.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is where the shared server listens unless $POLLHOOK_TEST_NATS
// says otherwise.
const DefaultURL = "nats://127.0.0.1:4222"

// SharedURL returns the URL of the shared server: $POLLHOOK_TEST_NATS, or
// DefaultURL.
func SharedURL() string {
	if u := os.Getenv("POLLHOOK_TEST_NATS"); u != "" {
		return u
	}
	return DefaultURL
}

// Shared connects to the shared server and returns its URL and a
// JetStream client, closed when t ends; it skips t when no server with
// JetStream answers there.
func Shared(t testing.TB) (string, jetstream.JetStream) {
	t.Helper()
	url := SharedURL()
	js, err := connect(t, url)
	if err != nil {
		t.Skipf("no NATS server with JetStream at %s (%v): start one with nats-server -js, or set POLLHOOK_TEST_NATS", url, err)
	}
	return url, js
}

// connect returns a JetStream client on url, closed when t ends, once
// the server answers a JetStream request.
func connect(t testing.TB, url string) (jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(-1))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.Cleanup(nc.Close)
	return js, nil
}

// Names returns a stream name and a subject prefix no other test uses,
// and deletes the stream of that name when t ends.
func Names(t testing.TB, js jetstream.JetStream) (stream, prefix string) {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	id := hex.EncodeToString(b)
	stream, prefix = "POLLHOOK_TEST_"+strings.ToUpper(id), "pollhooktest_"+id
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete stream %s: %v", stream, err)
		}
	})
	return stream, prefix
}

// Messages returns every message stream holds, in sequence order.
func Messages(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("stream %s, message %d: %v", stream, seq, err)
		}
		out = append(out, m)
	}
	return out
}

// Binary returns the path of the nats-server binary: on the PATH, or the
// Debian package's /usr/sbin/nats-server.
func Binary() (string, error) {
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/nats-server"
	if _, err := os.Stat(debian); err != nil {
		return "", fmt.Errorf("no nats-server on the PATH nor at %s", debian)
	}
	return debian, nil
}

// Server is a private nats-server process with JetStream, on a port of
// 127.0.0.1 of its own, storing in a directory of its own; it keeps both
// across Stop and Start.
type Server struct {
	// URL is nats://127.0.0.1:PORT.
	URL  string
	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start starts a private server, with args added to its command line
// (--user, --tls …), and stops it when t ends. It skips t when there is
// no nats-server binary.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skipf("cannot start a private NATS server: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &Server{
		URL: "nats://127.0.0.1:" + strconv.Itoa(port),
		t:   t, bin: bin, log: filepath.Join(dir, "nats-server.log"),
		args: append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "store"), "-l", filepath.Join(dir, "nats-server.log")}, args...),
	}
	s.Start()
	t.Cleanup(func() {
		if s.Running() {
			s.Stop()
		}
	})
	return s
}

// Start starts the server again after Stop, on the same port and store,
// and waits until it listens.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	addr := strings.TrimPrefix(s.URL, "nats://")
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if !s.Running() || time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			s.t.Fatalf("nats-server did not start listening on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Stop stops the server as an operator would (SIGTERM: clients are cut
// off, the store is flushed) and waits for it to exit.
func (s *Server) Stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("nats-server did not stop within 20s of SIGTERM")
	}
}

// JetStream returns a JetStream client on the server, closed when the
// test ends.
func (s *Server) JetStream() jetstream.JetStream {
	s.t.Helper()
	var js jetstream.JetStream
	var err error
	deadline := time.Now().Add(15 * time.Second)
	for {
		if js, err = connect(s.t, s.URL); err == nil {
			return js
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("JetStream on %s: %v", s.URL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
