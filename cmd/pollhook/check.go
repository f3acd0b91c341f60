package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
	"github.com/pollhook/pollhook/internal/redact"
)

func init() {
	register(&command{
		name:    "check",
		summary: "validate a config file and summarise it",
		usage: `Usage: pollhook check [-c FILE]

Validates FILE (default pollhook.yaml, or $POLLHOOK_CONFIG) and prints its
sources, resources with the events they can emit (a delete only with
deletes: snapshot), their schedule and next run, and destinations.
Secrets are shown as <secret>. Every error found is printed, each with its
file, line and key; the exit code is then 2.

Example:
  pollhook check -c examples/keap-contacts.yaml
`,
		run: runCheck,
	})
}

func runCheck(ctx context.Context, e *env, args []string) error {
	c := commands["check"]
	fs := c.flags(e)
	path := configFlag(fs)
	if _, err := c.parse(fs, args, 0); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	printSummary(e, cfg, time.Now())
	return nil
}

// printSummary writes what cfg configures, with secrets hidden.
func printSummary(e *env, cfg *config.Config, now time.Time) {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	state := cfg.State.Path
	if cfg.State.DSN != "" {
		state, _ = cursor.ParsePostgresDSN(string(cfg.State.DSN))
		state = "PostgreSQL " + state
	}
	fmt.Fprintf(w, "config %s is valid\nstate\t%s\tlease %s\n", cfg.File, state, cfg.State.Lease.D())
	if cfg.HTTP.Listen != "" {
		api := "hooks API off (no http.token)"
		if cfg.HTTP.Token != "" {
			api = "hooks API on, token " + cfg.HTTP.Token.String()
		}
		fmt.Fprintf(w, "http\t%s\t%s\n", cfg.HTTP.Listen, api)
	}
	fmt.Fprintf(w, "\nsources (%d)\n", len(cfg.Sources))
	for _, s := range cfg.Sources {
		extra := ""
		if s.RateLimit != nil {
			extra = fmt.Sprintf("\trate %g/s burst %d", s.RateLimit.PerSecond, s.RateLimit.Burst)
		}
		fmt.Fprintf(w, "  %s\t%s\tauth %s\ttimeout %s%s\n", s.Name, redact.URL(s.BaseURL), authSummary(s.Auth), s.Timeout.D(), extra)
	}
	fmt.Fprintf(w, "\nresources (%d)\n", len(cfg.Resources))
	for _, r := range cfg.Resources {
		pag := r.Pagination.Type
		if r.Pagination.Limit > 0 {
			pag += fmt.Sprintf(" (limit %d)", r.Pagination.Limit)
		}
		deletes := r.Deletes
		if r.ItemURL != "" {
			deletes += " (looked up at " + redact.URL(r.ItemURL) + ")"
		}
		fmt.Fprintf(w, "  %s\tsource %s\tevents %s\tschedule %s\tnext run %s\tpagination %s\tdeletes %s\tstart %s\n",
			r.Name, r.Source, strings.Join(r.PossibleEventTypes(), ","), r.Schedule.Spec,
			r.Schedule.Next(now).UTC().Format(time.RFC3339), pag, deletes, r.Start)
	}
	fmt.Fprintf(w, "\ndestinations (%d)\n", len(cfg.Destinations))
	for _, d := range cfg.Destinations {
		secret := "unsigned"
		if d.Secret != "" {
			secret = "secret " + d.Secret.String()
		}
		where := redact.URL(d.URL)
		if config.IsNATSURL(d.URL) {
			where += " subject " + d.Subject
			if d.Stream != "" {
				where += " stream " + d.Stream
			}
		}
		fmt.Fprintf(w, "  %s\t%s\tevents %s\tformat %s\t%s\n", d.Name, where, strings.Join(d.Events, ","), d.Format, secret)
	}
	w.Flush()
}

func authSummary(a config.Auth) string {
	switch a.Type {
	case config.AuthBearer:
		return "bearer " + a.Token.String()
	case config.AuthBasic:
		return "basic " + a.Username + ":" + a.Password.String()
	case config.AuthHeader:
		return "header " + a.Name + ": " + a.Value.String()
	case config.AuthQuery:
		return "query " + a.Name + "=" + a.Value.String()
	case config.AuthOAuth2:
		return "oauth2 " + redact.URL(a.TokenURL) + " client " + a.ClientID + " " + a.ClientSecret.String()
	}
	return a.Type
}
