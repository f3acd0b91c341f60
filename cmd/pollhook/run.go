package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pollhook/pollhook/internal/runtime"
)

// DefaultGrace is how long a stop signal waits for running cycles to
// commit their page in hand before pollhook exits anyway.
const DefaultGrace = 30 * time.Second

func init() {
	register(&command{
		name:    "run",
		summary: "run the daemon: poll on schedule, deliver events, serve /metrics",
		usage: `Usage: pollhook run [-c FILE] [--log-format auto|text|json] [--log-level LEVEL] [--grace 30s]

Polls every resource once at start and then on its schedule, delivers each
new event to every destination whose events match, retrying on the
destination's schedule, and serves /healthz, /readyz and /metrics on
http.listen when it is set.

Signals: SIGINT or SIGTERM stop new cycles, let the page in hand commit,
cancel the deliveries in flight (their events stay pending and are sent
again, with the same webhook-id, after a restart), and exit 0 within
--grace; a second signal exits at once. SIGHUP reloads the config file if it
is valid, and keeps the running config (logging why) if it is not.

Examples:
  pollhook run -c /etc/pollhook/pollhook.yaml
  pollhook run -c pollhook.yaml --log-format json --log-level debug
`,
		run: runRun,
	})
}

func runRun(ctx context.Context, e *env, args []string) error {
	c := commands["run"]
	fs := c.flags(e)
	path := configFlag(fs)
	logFormat := fs.String("log-format", "auto", "the log `FORMAT`: auto (text on a terminal, else JSON), text or json")
	logLevel := fs.String("log-level", "info", "the least `LEVEL` logged: debug, info, warn or error")
	grace := fs.Duration("grace", DefaultGrace, "how long `D` a stop waits for running work")
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	log, err := loggerFlags(e, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	store, err := openStateRetrying(ctx, cfg.State, log)
	if err != nil {
		return err
	}
	defer store.Close()
	rt, err := runtime.New(store, cfg, runtime.Options{Logger: log, Stdout: e.stdout, LeaseTTL: cfg.State.Lease.D()})
	if err != nil {
		return err
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// A second stop signal after ctx is done forces the exit.
	again := make(chan os.Signal, 1)

	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	for {
		select {
		case <-hup:
			next, err := loadConfig(*path)
			if err == nil {
				err = rt.Reload(ctx, next)
			}
			if err != nil {
				log.Error("reload refused: keeping the running config", "config", *path, "error", err)
			}
		case err := <-done:
			if err != nil {
				return err
			}
			if ctx.Err() == nil {
				return errors.New("run: the daemon stopped unexpectedly")
			}
			log.Info("stopped")
			return nil
		case <-ctx.Done():
			signal.Notify(again, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(again)
			log.Info("stopping", "grace", grace.String())
			t := time.NewTimer(*grace)
			defer t.Stop()
			select {
			case err := <-done:
				if err != nil {
					return err
				}
				log.Info("stopped")
				return nil
			case <-t.C:
				return fmt.Errorf("stop: running work did not end within --grace %s; pending deliveries stay pending", *grace)
			case <-again:
				return errors.New("stop: second signal, exiting at once")
			}
		}
	}
}

// loggerFlags builds the logger that --log-format and --log-level ask for.
func loggerFlags(e *env, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, &usageError{fmt.Sprintf("run: --log-level %q: want debug, info, warn or error", level)}
	}
	switch format {
	case "auto":
		format = "json"
		if f, ok := e.stderr.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	case "text", "json":
	default:
		return nil, &usageError{fmt.Sprintf("run: --log-format %q: want auto, text or json", format)}
	}
	return newLogger(e.stderr, format, lv), nil
}
