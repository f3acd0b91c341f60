package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

func init() {
	register(&command{
		name:    "healthcheck",
		summary: "probe a running daemon's /healthz (for container HEALTHCHECKs)",
		usage: `Usage: pollhook healthcheck [-c FILE | --addr HOST:PORT] [--path /healthz] [--timeout 3s]

Requests http://ADDR/healthz (or --path) from a running "pollhook run" and
exits 0 on 200, 1 otherwise. ADDR is --addr, or http.listen of the config.
Container images have no curl: the image's HEALTHCHECK runs this.

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
	path := configFlag(fs)
	addr := fs.String("addr", "", "the daemon's http.listen address")
	probe := fs.String("path", "/healthz", "the path to probe")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait")
	if err := c.parse(fs, args, 0); err != nil {
		return err
	}
	if *addr == "" {
		cfg, err := loadConfig(*path)
		if err != nil {
			return err
		}
		if cfg.HTTP.Listen == "" {
			return &usageError{"healthcheck: " + cfg.File + " sets no http.listen: pass --addr"}
		}
		*addr = cfg.HTTP.Listen
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return &usageError{fmt.Sprintf("healthcheck: address %q: want HOST:PORT", *addr)}
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + *probe
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
