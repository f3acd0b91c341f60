package emit

import (
	"context"
	"fmt"
	"os"

	"github.com/pollhook/pollhook/cursor"
)

// fileTransport appends events as JSON lines to a file, synced after each
// write. The file is opened by the first Send and kept open; a failed
// write closes it, so that the next Send opens it again.
type fileTransport struct {
	lw   lineWriter
	path string
	file *os.File // guarded by lw.mu
}

func newFile(d *Destination, path string) *fileTransport {
	return &fileTransport{lw: lineWriter{d: d}, path: path}
}

func (f *fileTransport) send(_ context.Context, events []cursor.Event, a *Attempt) {
	f.lw.send(events, a, f.write)
}

// write appends b. f.lw.mu is held.
func (f *fileTransport) write(b []byte) error {
	if f.file == nil {
		file, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("open events file: %w", err)
		}
		f.file = file
	}
	if _, err := f.file.Write(b); err != nil {
		f.drop()
		return fmt.Errorf("write events file: %w", err)
	}
	if err := f.file.Sync(); err != nil {
		f.drop()
		return fmt.Errorf("sync events file: %w", err)
	}
	return nil
}

// drop closes the file after a failure. f.lw.mu is held.
func (f *fileTransport) drop() {
	_ = f.file.Close()
	f.file = nil
}

func (f *fileTransport) close() error {
	return f.lw.close(func() error {
		if f.file == nil {
			return nil
		}
		err := f.file.Close()
		f.file = nil
		if err != nil {
			return fmt.Errorf("close events file: %w", err)
		}
		return nil
	})
}
