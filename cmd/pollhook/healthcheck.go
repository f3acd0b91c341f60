package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/internal/runtime"
)

func init() {
	register(&command{
		name:    "healthcheck",
		summary: "tell whether a running daemon is alive (for container HEALTHCHECKs)",
		usage: `Usage: pollhook healthcheck [-c FILE | --state FILE | --addr HOST:PORT] [--path /healthz] [--timeout 3s]

Tells whether a "pollhook run" is alive, for a container's HEALTHCHECK (an
image has no curl). It exits 0 when it is, and 1 when it is not or cannot
tell — never 2, which Docker reserves.

With --addr, or http.listen in the config, it requests http://ADDR/healthz
(or --path: /readyz asks whether it is ready too) and wants a 200.

Without a listener it reads the state file: the daemon is alive when a
pollhook process of this host holds a lease there that has not run out. A
running daemon renews its leases every 5 s; one that stopped, hangs, or
cannot write its state file lets them run out within 15 s. (A standby,
which holds no lease while another process does the work, is reported as
not alive: give standbys an http.listen.)

Of the config it reads only state.path and http.listen, so no API token
or receiver secret need be set where it runs.

Examples:
  pollhook healthcheck -c /etc/pollhook/pollhook.yaml
  pollhook healthcheck --addr 127.0.0.1:8080 --path /readyz
`,
		run: runHealthcheck,
	})
}

func runHealthcheck(ctx context.Context, e *env, args []string) error {
	c := commands["healthcheck"]
	fs := c.flags(e)
	src := stateFlags(fs)
	addr := fs.String("addr", "", "probe the daemon's HTTP listener at `HOST:PORT`")
	probe := fs.String("path", "/healthz", "the `PATH` to probe on the listener")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after `D`")
	if _, err := c.parse(fs, args, 0); err != nil {
		return unhealthy(err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *addr == "" && *src.state == "" {
		l, err := load(*src.config, config.LoadLocal)
		if err != nil {
			return unhealthy(err)
		}
		*addr = l.Listen
	}
	if *addr != "" {
		return unhealthy(probeHTTP(ctx, e, *addr, *probe))
	}
	return unhealthy(probeLeases(ctx, e, src))
}

// unhealthy gives err exit code 1, whatever it is: Docker reserves 2.
func unhealthy(err error) error {
	var h *helpRequest
	if err == nil || errors.As(err, &h) {
		return err
	}
	return &codeError{code: 1, err: err}
}

// probeHTTP requests path of the listener at addr and wants a 200.
func probeHTTP(ctx context.Context, e *env, addr, path string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: address %q: want HOST:PORT", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: %s: %s", url, resp.Status, body)
	}
	fmt.Fprintf(e.stdout, "%s: %s", url, body)
	return nil
}

// probeLeases wants a lease of the state file held by a pollhook process
// of this host.
func probeLeases(ctx context.Context, e *env, src *stateSource) error {
	st, err := src.stateOf()
	if err != nil {
		return err
	}
	if _, err := os.Stat(st.Path); st.DSN == "" && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("healthcheck: state file %s does not exist: no pollhook has run on it", st.Path)
	}
	store, err := openState(ctx, st)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer store.Close()
	path := store.Location()
	leases, err := store.Leases(ctx)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("healthcheck: name this host: %w", err)
	}
	now := time.Now()
	var others []string
	for _, l := range leases {
		if !l.Held(now) {
			continue
		}
		if runtime.HolderHost(l.Holder) == host {
			fmt.Fprintf(e.stdout, "%s: %s holds %s until %s\n", path, l.Holder, l.Name, l.Expires.UTC().Format(time.RFC3339))
			return nil
		}
		if !slices.Contains(others, l.Holder) {
			others = append(others, l.Holder)
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("healthcheck: no pollhook process of this host (%s) holds a lease of %s; %s do", host, path, strings.Join(others, ", "))
	}
	return fmt.Errorf("healthcheck: no pollhook process holds a lease of %s: none is running, or it has not renewed its leases for 15 s", path)
}
