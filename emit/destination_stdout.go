package emit

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pollhook/pollhook/cursor"
)

// stdoutTransport writes events as JSON lines to standard output.
type stdoutTransport struct {
	lw lineWriter
	w  io.Writer
}

// newStdout returns the transport of d, writing to w (nil: os.Stdout).
func newStdout(d *Destination, w io.Writer) *stdoutTransport {
	if w == nil {
		w = os.Stdout
	}
	return &stdoutTransport{lw: lineWriter{d: d}, w: w}
}

func (s *stdoutTransport) send(_ context.Context, events []cursor.Event, a *Attempt) {
	s.lw.send(events, a, func(b []byte) error {
		if _, err := s.w.Write(b); err != nil {
			return fmt.Errorf("write stdout: %w", err)
		}
		return nil
	})
}

func (s *stdoutTransport) close() error {
	return s.lw.close(func() error { return nil })
}
