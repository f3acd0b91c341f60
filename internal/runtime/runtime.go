// Package runtime runs pollhook: given a loaded configuration and a state
// store, it schedules the resources' polls, delivers the outbox to the
// configured destinations and the REST Hooks subscribers through one
// delivery engine, serves the HTTP endpoints (/healthz, /readyz,
// /metrics, the REST Hooks API, the web console), keeps the leases that give each resource
// and each destination one owner among the processes sharing the store,
// and does the store's upkeep (pruning, readiness). A Runtime runs as the
// daemon ([Runtime.Run], reloadable with [Runtime.Reload]) or for one
// pass ([Runtime.Once]). The command line parses flags, loads the config
// and calls it; nothing of the run-time lives there.
//
// # Ownership
//
// Every process that opens the store has a holder name (host, pid and a
// random part). A resource is polled only by the process holding its
// lease, and a destination delivered to only by the process holding
// its; the store checks the lease's fence on every write of that work
// (see package cursor). The keeper takes free leases, renews held ones
// every third of their life (DefaultLeaseTTL) and gives them back on a
// clean stop, so a second `pollhook run` on the same state — or a
// `pollhook once` beside one — polls only what nobody else does, and
// takes over what a stopped process held, within one lease period.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/emit"
	"github.com/pollhook/pollhook/emit/hooks"
	"github.com/pollhook/pollhook/internal/console"
	"github.com/pollhook/pollhook/poller"
)

// Options are what a Runtime takes from its surroundings. Zero fields get
// defaults.
type Options struct {
	// Logger gets the runtime's logs; nil discards them.
	Logger *slog.Logger
	// Holder names this process in the leases; NewHolder() when empty.
	Holder string
	// LeaseTTL is how long a lease lasts unless renewed; DefaultLeaseTTL
	// when 0.
	LeaseTTL time.Duration
	// Registry gets the metrics; nil makes a new one with the Go and
	// process collectors.
	Registry *prometheus.Registry
	// Stdout is where destinations with url "stdout" write; nil means
	// os.Stdout.
	Stdout io.Writer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Runtime is pollhook at work on one configuration at a time. Its methods
// are safe for concurrent use, but Run and Once are each called once.
type Runtime struct {
	store   cursor.Store
	log     *slog.Logger
	holder  string
	now     func() time.Time
	stdout  io.Writer
	reg     *prometheus.Registry
	pm      *poller.Metrics
	em      *emit.Metrics
	leases  *keeper
	sched   *poller.Scheduler
	engine  *emit.Engine
	console *console.Console

	mu      sync.Mutex // serializes changes of configuration and subscribers
	cfg     *config.Config
	pollers map[string]*poller.Poller
	api     atomic.Pointer[hooks.API]
	subs    []hooks.Subscriber // active subscriptions, as last read

	listenAddr string // the HTTP listener's bound address, once listening

	running    atomic.Bool
	readiness  atomic.Pointer[error]     // the last probe of the store; nil before the first
	passTime   atomic.Pointer[time.Time] // the delivery engine's time during Once; nil for the clock
	subsChange chan struct{}
}

// New returns a runtime of cfg over store. It builds every poller,
// destination and the REST Hooks API, so that a config that cannot run
// fails here; it touches the store only to read subscriptions when it
// runs (and, on SQLite, registers its lease holder beside the state file:
// see cursor.SQLite.Register).
func New(store cursor.Store, cfg *config.Config, opts Options) (*Runtime, error) {
	r := &Runtime{
		store:      store,
		log:        opts.Logger,
		holder:     opts.Holder,
		now:        opts.Now,
		stdout:     opts.Stdout,
		reg:        opts.Registry,
		subsChange: make(chan struct{}, 1),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.holder == "" {
		r.holder = NewHolder()
	}
	// On a SQLite state, a process that ends without releasing its
	// leases (killed, crashed) has them taken over at once rather than
	// when they expire (see cursor.SQLite.Register).
	if reg, ok := store.(interface{ Register(holder string) error }); ok {
		if err := reg.Register(r.holder); err != nil {
			r.log.Warn("if this process ends without stopping, another waits for its leases to expire (state.lease)", "error", err)
		}
	}
	if r.now == nil {
		r.now = time.Now
	}
	ttl := opts.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	if r.reg == nil {
		r.reg = prometheus.NewRegistry()
		r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	r.pm = poller.NewMetrics(r.reg)
	r.em = emit.NewMetrics(r.reg)
	r.reg.MustRegister(emit.NewBacklogCollector(store, r.now))

	r.leases = newKeeper(store, r.holder, ttl, r.now, r.log.With("component", "leases"))
	r.engine = emit.NewEngine(store, nil, emit.EngineOptions{
		Leases: r.leases, Now: r.engineNow, Logger: r.log, Metrics: r.em,
		OnGone: func(name, reason string) { r.deactivate(name, "the subscriber answered 410 Gone: "+reason) },
		OnDead: func(name, eventID string) {
			r.deactivate(name, "event "+eventID+" failed its last delivery attempt")
		},
	})
	r.sched = poller.NewScheduler(nil, poller.SchedulerOptions{
		Leases: r.leases, Logger: r.log,
		OnCycle: func(res poller.CycleResult, err error) {
			if err == nil {
				r.log.Debug("poll done", "resource", res.Resource, "records", res.Records,
					"events", res.Events(), "duration", res.Duration)
			}
			if res.Events() > 0 {
				r.engine.Notify()
			}
		},
	})
	if err := r.prepare(cfg); err != nil {
		return nil, err
	}
	r.console = console.New(console.Options{
		Runtime: r, State: store, Logger: r.log, Now: r.now, SampleEvery: BacklogSampleInterval,
	})
	return r, nil
}

// engineNow is the delivery engine's clock: the runtime's, but during
// Once the moment Once began, so that its delivery passes send what is due
// as of then — new events, and retries due before it — and a delivery
// that fails during Once waits for the next run, however short its retry
// schedule.
func (r *Runtime) engineNow() time.Time {
	if t := r.passTime.Load(); t != nil {
		return *t
	}
	return r.now()
}

// Holder is the name this process holds its leases under.
func (r *Runtime) Holder() string { return r.holder }

// Registry is the registry of the runtime's metrics.
func (r *Runtime) Registry() *prometheus.Registry { return r.reg }

// Config is the configuration the runtime runs.
func (r *Runtime) Config() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}

// prepare builds what cfg needs — its pollers and the REST Hooks API —
// and makes it the runtime's configuration; nothing runs yet. On error the
// runtime keeps what it had.
func (r *Runtime) prepare(cfg *config.Config) error {
	// One client a source, shared by its resources: the source's rate
	// limit, connections and OAuth2 token are the source's, however many
	// resources it has.
	clients := make(map[string]*poller.Client, len(cfg.Sources))
	for _, src := range cfg.Sources {
		c, err := poller.NewClient(src, poller.ClientOptions{Logger: r.log})
		if err != nil {
			return err
		}
		clients[src.Name] = c
	}
	pollers := make(map[string]*poller.Poller, len(cfg.Resources))
	for i := range cfg.Resources {
		res := &cfg.Resources[i]
		p, err := poller.New(res, cfg.Source(res.Source), r.store, poller.Options{
			Client: clients[cfg.Source(res.Source).Name], Logger: r.log, Metrics: r.pm,
		})
		if err != nil {
			return err
		}
		pollers[res.Name] = p
	}
	// Destinations are built whenever the set changes; building them now
	// checks them.
	for _, dc := range cfg.Destinations {
		d, err := emit.NewDestination(dc, emit.Options{Logger: r.log, Stdout: r.stdout})
		if err != nil {
			return fmt.Errorf("start destination %s: %w", dc.Name, err)
		}
		d.Close()
	}
	api, err := r.newAPI(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A resource taken out of the config leaves no series behind.
	for name, p := range r.pollers {
		if pollers[name] == nil {
			r.pm.Forget(p)
		}
	}
	r.cfg, r.pollers = cfg, pollers
	r.api.Store(api)
	return nil
}

// newAPI builds the REST Hooks API of cfg.
func (r *Runtime) newAPI(cfg *config.Config) (*hooks.API, error) {
	var keys []string
	for i := range cfg.Resources {
		keys = append(keys, cfg.Resources[i].PossibleEventTypes()...)
	}
	// Subscriber URLs may not reach pollhook itself: the address bound,
	// once listening (an address of port 0 is known only then).
	var self []string
	switch {
	case r.listenAddr != "":
		self = []string{r.listenAddr}
	case cfg.HTTP.Listen != "":
		self = []string{cfg.HTTP.Listen}
	}
	prefixes, err := allowTargets(cfg.HTTP.AllowTargets)
	if err != nil {
		return nil, err
	}
	return hooks.NewAPI(r.store, hooks.Options{
		Token: string(cfg.HTTP.Token), EventKeys: keys, AllowTargets: prefixes, SelfAddrs: self,
		Now: r.now, Logger: r.log, OnChange: r.subscriptionsChanged,
	})
}

// Run runs the daemon until ctx is done: it serves http.listen (when
// set), polls every resource it leases once at once (beyond
// poller.StartRate resources, spread over N/StartRate seconds) and then
// on its schedule, delivers to every destination it leases, and keeps
// the store pruned and its readiness known. When ctx is done it lets the page in
// hand commit, cancels the requests in flight (their events stay pending,
// sent again with the same ids by whoever delivers next), gives its leases
// back and returns nil. It fails at once when the listener cannot start.
func (r *Runtime) Run(ctx context.Context) error {
	srv, err := r.listen(r.Config().HTTP.Listen)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.listenAddr != "" {
		// Subscriber URLs may not reach the address bound (":0" and
		// the like give it only now).
		if api, err := r.newAPI(r.cfg); err == nil {
			r.api.Store(api)
		}
	}
	r.mu.Unlock()

	// The daemon shares the work with the other daemons on the store.
	r.leases.setBalance(r.busy)
	r.apply(ctx)
	// From now on a lease taken starts its work at once; those taken so
	// far start with the scheduler and the engine.
	r.leases.setOnTake(r.taken)
	r.probe(ctx)
	var wg sync.WaitGroup
	work, stop := context.WithCancel(ctx)
	defer stop()
	keep, stopKeeper := context.WithCancel(context.Background())
	var kw sync.WaitGroup
	kw.Go(func() { r.leases.run(keep) })
	wg.Go(func() { r.sched.Run(work) })
	wg.Go(func() { r.engine.Run(work) })
	wg.Go(func() { r.maintain(work) })
	// Events committed by other processes (replicas, a `pollhook once`)
	// wake the destinations this one delivers to.
	wg.Go(func() { r.store.WatchOutbox(work, r.engine.Notify) })
	r.running.Store(true)
	r.log.Info("pollhook running", "config", r.Config().File, "state", r.store.Location(), "holder", r.holder,
		"resources", len(r.Config().Resources), "destinations", len(r.Config().Destinations), "listen", r.listenAddr)

	<-ctx.Done()
	r.running.Store(false)
	stop()
	// The scheduler and the engine end first, so that their last writes
	// still hold their leases; then the leases go back.
	wg.Wait()
	stopKeeper()
	kw.Wait()
	r.leases.releaseAll()
	r.engine.Close()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}
	return nil
}

// Reload makes cfg the running configuration: resources added start
// polling, resources removed stop at their next page, destinations added,
// changed or removed are so in the running engine, and the REST Hooks API
// answers with cfg's event keys and token. The state store, the HTTP
// listener and the lease holder stay; state.path, state.dsn, state.lease and
// http.listen take effect only after a restart (a warning says so). A cfg
// that cannot run is refused, and the running one kept.
func (r *Runtime) Reload(ctx context.Context, cfg *config.Config) error {
	old := r.Config()
	if cfg.State.Path != old.State.Path || cfg.State.DSN != old.State.DSN || cfg.HTTP.Listen != old.HTTP.Listen || cfg.State.Lease != old.State.Lease {
		r.log.Warn("reload: state.path, state.dsn, state.lease and http.listen take effect only after a restart")
	}
	if err := r.prepare(cfg); err != nil {
		return err
	}
	r.apply(ctx)
	r.log.Info("config reloaded", "config", cfg.File)
	return nil
}

// apply brings the running parts to the configuration: the destinations
// the config names no more are dropped, those it names exist in the store
// (from now on), the scheduler and the engine get the new sets, and the
// keeper the leases to hold.
func (r *Runtime) apply(ctx context.Context) {
	cfg := r.Config()
	r.ensureDestinations(ctx, cfg)
	names := make([]string, len(cfg.Resources))
	for i, res := range cfg.Resources {
		names[i] = res.Name
	}
	// A resource out of the config writes no more: its last write
	// failure would hold /readyz at 503 for good.
	r.store.RetainResourceWrites(names)
	r.mu.Lock()
	cyclers := make([]poller.Cycler, 0, len(r.pollers))
	for _, res := range cfg.Resources {
		cyclers = append(cyclers, r.pollers[res.Name])
	}
	r.mu.Unlock()
	// The work of what went ends (a cycle at its page boundary, a delivery
	// once answered and recorded) before its lease goes, and the
	// destinations the config dropped go from the store last.
	waitStopped(ctx, r.sched.Set(cyclers))
	r.refreshSubscribers(ctx) // the engine's destinations change with the subscribers'
	r.leases.want(ctx, r.wantedLeases())
	r.dropUnconfigured(ctx, cfg)
	// Take what is free now, so that work starts at once rather than at
	// the keeper's next tick.
	r.leases.tick(ctx)
}

// wantedLeases are the leases of every resource and destination.
func (r *Runtime) wantedLeases() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for _, res := range r.cfg.Resources {
		names = append(names, cursor.ResourceLease(res.Name))
	}
	for _, d := range r.cfg.Destinations {
		names = append(names, cursor.DestinationLease(d.Name))
	}
	for _, s := range r.subs {
		names = append(names, cursor.DestinationLease(s.Name))
	}
	return names
}

// busy reports whether the work of lease name is in hand: a cycle of its
// resource, or a pass of its destination.
func (r *Runtime) busy(name string) bool {
	if res, ok := strings.CutPrefix(name, cursor.ResourceLease("")); ok {
		return r.sched.Busy(res)
	}
	if dest, ok := strings.CutPrefix(name, cursor.DestinationLease("")); ok {
		return r.engine.Busy(dest)
	}
	return false
}

// taken is called by the keeper with the leases it just took: the
// resources that missed a cycle without them poll at once (see
// poller.Scheduler.Resume), and the destinations deliver.
func (r *Runtime) taken(names []string) {
	notify := false
	var resources []string
	for _, n := range names {
		if res, ok := strings.CutPrefix(n, cursor.ResourceLease("")); ok {
			resources = append(resources, res)
		} else {
			notify = true
		}
	}
	r.sched.Resume(resources)
	if notify {
		r.engine.Notify()
	}
}

// stopTimeout bounds the wait for the work of a removed resource or
// destination to end before its lease is given up.
const stopTimeout = 10 * time.Second

// waitStopped waits for stopped, at most stopTimeout.
func waitStopped(ctx context.Context, stopped <-chan struct{}) {
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
	case <-ctx.Done():
	}
}

// setDestinationsLocked gives the engine the configured destinations and
// the active subscribers; stopped is closed when the removed ones have
// stopped (see emit.Engine.Set). r.mu is held.
func (r *Runtime) setDestinationsLocked() (stopped <-chan struct{}) {
	var dests []*emit.Destination
	for _, dc := range r.cfg.Destinations {
		d, err := emit.NewDestination(dc, emit.Options{Logger: r.log, Stdout: r.stdout})
		if err != nil {
			r.log.Error("destination skipped", "destination", dc.Name, "error", err) // checked by prepare
			continue
		}
		dests = append(dests, d)
	}
	api := r.api.Load()
	for _, sub := range r.subs {
		d, err := emit.NewDestination(sub.Destination(), emit.Options{
			Transport: api.Guard().Transport(), Logger: r.log,
			Recipient: emit.Recipient{WebhookID: sub.WebhookID},
		})
		if err != nil {
			r.log.Error("subscriber skipped", "destination", sub.Name, "error", err)
			continue
		}
		dests = append(dests, d)
	}
	return r.engine.Set(dests)
}

// Ready reports whether the runtime can do its work: nil, or why not
// (the state store cannot be written or read, no configuration runs).
func (r *Runtime) Ready() error {
	// The outcome of the pipeline's own writes is known at once; the
	// probe of the store is as of its last run.
	if err := r.store.WriteErr(); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if p := r.readiness.Load(); p != nil && *p != nil {
		return fmt.Errorf("state store: %w", *p)
	}
	if !r.running.Load() {
		return errors.New("no config running")
	}
	return nil
}

// listen starts the HTTP server on addr ("" = none).
func (r *Runtime) listen(addr string) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on http.listen %s: %w", addr, err)
	}
	r.mu.Lock()
	r.listenAddr = ln.Addr().String()
	r.mu.Unlock()
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("http listener stopped", "error", err)
		}
	}()
	r.log.Info("listening", "addr", r.listenAddr)
	return srv, nil
}

// Addr is the address the HTTP listener is bound to; empty before Run,
// or without http.listen.
func (r *Runtime) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listenAddr
}
