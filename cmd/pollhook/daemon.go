package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/emit/hooks"
	"github.com/pollhook/pollhook/poller"
)

// daemon is what `pollhook run` keeps across config reloads: the store,
// the metrics and the HTTP listener. Each config runs as a generation.
type daemon struct {
	store *cursor.Store
	log   *slog.Logger
	reg   *prometheus.Registry
	pm    *poller.Metrics
	em    *emit.Metrics
	srv   *http.Server
	// addr is the address the listener is bound to.
	addr string
	// running is true while a generation runs.
	running atomic.Bool
	// hooks is the running generation's subscription API.
	hooks atomic.Pointer[subscribers]
}

func newDaemon(store *cursor.Store, log *slog.Logger) *daemon {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &daemon{store: store, log: log, reg: reg, pm: poller.NewMetrics(reg), em: emit.NewMetrics(reg)}
}

// generation is one config at work: its scheduler and delivery engine.
type generation struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// stop ends the generation and waits for it.
func (g *generation) stop() {
	g.cancel()
	<-g.done
}

// start builds the pollers, destinations and engine of cfg and runs them
// until ctx is done or the generation is stopped.
func (d *daemon) start(ctx context.Context, cfg *config.Config) (*generation, error) {
	dropUnconfigured(ctx, d.store, d.log, cfg)
	// A resource taken out of the config writes no more: its last write
	// failure would hold /readyz at 503 for good.
	names := make([]string, len(cfg.Resources))
	for i, r := range cfg.Resources {
		names[i] = r.Name
	}
	d.store.RetainResourceWrites(names)
	engine, err := newEngine(cfg, d.store, d.log, d.em)
	if err != nil {
		return nil, err
	}
	subs, err := newSubscribers(cfg, d.store, d.log, d.em, []string{d.addr, cfg.HTTP.Listen})
	if err != nil {
		engine.Close()
		return nil, err
	}
	cyclers := make([]poller.Cycler, 0, len(cfg.Resources))
	for i := range cfg.Resources {
		r := &cfg.Resources[i]
		p, err := poller.New(r, cfg.Source(r.Source), d.store, poller.Options{Logger: d.log, Metrics: d.pm})
		if err != nil {
			engine.Close()
			return nil, err
		}
		cyclers = append(cyclers, p)
	}
	sched := poller.NewScheduler(cyclers, poller.SchedulerOptions{
		Logger: d.log,
		OnCycle: func(res poller.CycleResult, err error) {
			if err == nil {
				d.log.Debug("poll done", "resource", res.Resource, "records", res.Records,
					"events", res.Events(), "duration", res.Duration)
			}
			if res.Events() > 0 {
				engine.Notify()
				subs.Notify()
			}
		},
	})

	gctx, cancel := context.WithCancel(ctx)
	g := &generation{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		sched.Run(gctx)
	}()
	go func() {
		defer wg.Done()
		subs.run(gctx)
	}()
	var engineErr error
	go func() {
		defer wg.Done()
		if err := engine.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
			engineErr = err
			cancel()
		}
	}()
	d.hooks.Store(subs)
	d.running.Store(true)
	go func() {
		wg.Wait()
		d.running.Store(false)
		engine.Close()
		g.err = engineErr
		close(g.done)
	}()
	return g, nil
}

// dropUnconfigured deletes the destinations the store knows that are
// neither in cfg nor subscriptions ("hook:…", which the subscribers keep),
// with their deliveries: nothing delivers to them any more, and their
// frozen position would hold back the pruning of the outbox. A destination
// added back later starts afresh. A failure is logged and left to the next
// start. run does this at each start and reload, once before delivering.
func dropUnconfigured(ctx context.Context, store *cursor.Store, log *slog.Logger, cfg *config.Config) {
	dests, err := store.Destinations(ctx)
	if err != nil {
		log.Error("list destinations no longer in the config", "error", err)
		return
	}
	for _, st := range dests {
		if strings.HasPrefix(st.Name, hooks.NamePrefix) || slices.ContainsFunc(cfg.Destinations, func(dc config.Destination) bool {
			return dc.Name == st.Name
		}) {
			continue
		}
		dropDestination(ctx, store, log, st.Name, "destination %s is no longer in the config: its %d pending deliveries are dropped")
	}
}

// dropDestination deletes destination name and its deliveries, and logs
// msg, a format of the name and the number of pending deliveries dropped.
func dropDestination(ctx context.Context, store *cursor.Store, log *slog.Logger, name, msg string) {
	b, err := store.Backlog(ctx, name)
	if err != nil {
		log.Error("delete destination", "destination", name, "error", err)
		return
	}
	if err := store.DeleteDestination(ctx, name); err != nil && !errors.Is(err, cursor.ErrUnknownDestination) {
		log.Error("delete destination", "destination", name, "error", err)
		return
	}
	level := slog.LevelInfo
	if b.Pending > 0 {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, fmt.Sprintf(msg, name, b.Pending), "destination", name, "pending", b.Pending)
}

// serve starts the HTTP listener on addr ("" = none).
func (d *daemon) serve(addr string) error {
	if addr == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		// A write, not only a read: a full disk or a read-only file
		// makes pollhook unable to record what it polls.
		// The probe alone passes on a full disk (its row fits where a page
		// of records does not): the last real writes count too.
		err := d.store.WriteErr()
		if err == nil {
			err = d.store.PingWrite(ctx, time.Now())
		}
		if err != nil {
			http.Error(w, "not ready: state store: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if !d.running.Load() {
			http.Error(w, "not ready: no config running", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	// The REST Hooks API, in Keap's and Pipedrive's dialects: served by
	// the running generation, whose config says which event keys exist.
	hooksAPI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.hooks.Load()
		if s == nil {
			http.Error(w, `{"message":"starting: try again"}`, http.StatusServiceUnavailable)
			return
		}
		s.Handler().ServeHTTP(w, r)
	})
	for _, p := range []string{"/hooks", "/hooks/", "/v1/webhooks", "/v1/webhooks/"} {
		mux.Handle(p, hooksAPI)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on http.listen %s: %w", addr, err)
	}
	d.addr = ln.Addr().String()
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http listener stopped", "error", err)
		}
	}()
	d.log.Info("listening", "addr", d.addr)
	return nil
}

// close shuts the listener down.
func (d *daemon) close() {
	if d.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.srv.Shutdown(ctx)
}

// engine is a config's destinations and the delivery engine that feeds
// them from the outbox.
type engine struct {
	*emit.Engine
	dests []*emit.Destination
}

// newEngine builds the destinations of cfg and their engine.
func newEngine(cfg *config.Config, store *cursor.Store, log *slog.Logger, m *emit.Metrics) (*engine, error) {
	e := &engine{}
	for _, dc := range cfg.Destinations {
		dest, err := emit.NewDestination(dc, emit.Options{Logger: log})
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("start destination %s: %w", dc.Name, err)
		}
		e.dests = append(e.dests, dest)
	}
	e.Engine = emit.NewEngine(store, e.dests, emit.EngineOptions{
		Logger: log, Metrics: m,
		DeliveredRetention: cfg.State.Retention.Delivered.D(), DeadRetention: cfg.State.Retention.Dead.D(),
	})
	return e, nil
}

// Close closes the destinations (their files).
func (e *engine) Close() {
	for _, d := range e.dests {
		d.Close()
	}
}
