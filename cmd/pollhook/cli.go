package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/pollhook/pollhook/config"
)

// command is one subcommand of pollhook.
type command struct {
	name    string
	summary string
	usage   string
	run     func(ctx context.Context, e *env, args []string) error
}

// env is what a command runs with.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// commands lists the subcommands; each lives in a file of its name.
var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// Run runs pollhook with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printHelp(stderr)
		return &usageError{"no command given"}
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprint(stdout, c.usage)
				return nil
			}
		}
		printHelp(stdout)
		return nil
	}
	c, ok := commands[name]
	if !ok {
		return &usageError{fmt.Sprintf("unknown command %q: run \"pollhook help\" for the list", name)}
	}
	return c.run(ctx, e, args[1:])
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, "pollhook: webhooks for APIs that have none.\n\nUsage: pollhook <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, "\nRun \"pollhook help <command>\" for a command's flags and examples.\n"+
		"Exit codes: 0 success, 1 runtime failure, 2 bad config or bad usage.\n")
}

// flags returns a FlagSet for c whose errors become usage errors.
func (c *command) flags(e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args and refuses positional arguments beyond max.
func (c *command) parse(fs *flag.FlagSet, args []string, max int) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &usageError{strings.TrimRight(c.usage, "\n")}
		}
		return &usageError{fmt.Sprintf("%s: %s\n\n%s", c.name, err.Error(), strings.TrimRight(c.usage, "\n"))}
	}
	if fs.NArg() > max {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q\n\n%s", c.name, fs.Arg(max), strings.TrimRight(c.usage, "\n"))}
	}
	return nil
}

// configFlag adds -c/--config to fs.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("POLLHOOK_CONFIG")
	if def == "" {
		def = "pollhook.yaml"
	}
	p := fs.String("c", def, "config file (env POLLHOOK_CONFIG)")
	fs.StringVar(p, "config", def, "config file (env POLLHOOK_CONFIG)")
	return p
}

// loadConfig loads the config at path; a file that cannot be read is a
// usage error, like a bad config.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &usageError{fmt.Sprintf("config file %s does not exist: pass -c FILE or set POLLHOOK_CONFIG", path)}
	}
	return cfg, err
}

// exitCode maps an error to pollhook's exit code: 2 for a bad config or
// bad usage, 1 for any other failure.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ue *usageError
	var ce config.Errors
	var cerr *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &cerr) {
		return 2
	}
	return 1
}
