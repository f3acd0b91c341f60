package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/pollhook/pollhook/config"
	"github.com/pollhook/pollhook/cursor"
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

// helpRequest is a request for a command's help (-h, --help, or "pollhook
// help COMMAND"): its text goes to stdout, and the exit code is 0.
type helpRequest struct {
	text string
	// flags are the command's flags, each with its aliases, shortest
	// name first: [c config].
	flags [][]string
}

func (h *helpRequest) Error() string { return h.text }

// codeError is a failure with its own exit code.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string { return e.err.Error() }
func (e *codeError) Unwrap() error { return e.err }

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
			if _, ok := commands[args[1]]; ok {
				return Run(ctx, []string{args[1], "--help"}, stdout, stderr)
			}
		}
		printHelp(stdout)
		return nil
	}
	c, ok := commands[name]
	if !ok {
		return &usageError{fmt.Sprintf("unknown command %q: run \"pollhook help\" for the list", name)}
	}
	err := c.run(ctx, e, args[1:])
	var h *helpRequest
	if errors.As(err, &h) {
		fmt.Fprint(stdout, h.text)
		return nil
	}
	return err
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

// parse parses args with fs and returns the positional arguments, refusing
// more than max. Flags may come before, between or after the positional
// arguments (destinations enable NAME -c FILE, destinations -c FILE enable
// NAME); after "--" everything is positional.
func (c *command) parse(fs *flag.FlagSet, args []string, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, c.help(fs)
			}
			return nil, &usageError{fmt.Sprintf("%s: %s\n\n%s", c.name, err.Error(), strings.TrimRight(c.usage, "\n"))}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		// fs stopped at a positional argument, or after "--".
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) > max {
		return nil, &usageError{fmt.Sprintf("%s: unexpected argument %q\n\n%s", c.name, pos[max], strings.TrimRight(c.usage, "\n"))}
	}
	return pos, nil
}

// subcommand reads the positional arguments pos of a command that lists
// by default and has one subcommand of one argument (cursors reset
// RESOURCE, destinations enable NAME): it reports whether sub was given,
// with its argument, and refuses the listing's flags (listFlags) on the
// subcommand and the subcommand's (subFlags) on the listing.
func (c *command) subcommand(fs *flag.FlagSet, pos []string, sub, what string, listFlags, subFlags []string) (arg string, isSub bool, err error) {
	usage := fmt.Sprintf("pollhook %s %s %s", c.name, sub, strings.ToUpper(what))
	if len(pos) == 0 {
		for _, f := range subFlags {
			if flagSet(fs, f) {
				return "", false, &usageError{fmt.Sprintf("%s: --%s goes with %s: %s --%s …", c.name, f, sub, usage, f)}
			}
		}
		return "", false, nil
	}
	if pos[0] != sub {
		return "", false, &usageError{fmt.Sprintf("%s: unknown subcommand %q: want %s, or nothing to list", c.name, pos[0], sub)}
	}
	for _, f := range listFlags {
		if flagSet(fs, f) {
			return "", true, &usageError{fmt.Sprintf("%s %s: --%s goes with the listing, not with %s", c.name, sub, f, sub)}
		}
	}
	if len(pos) < 2 {
		return "", true, &usageError{fmt.Sprintf("%s %s: say which %s: %s", c.name, sub, what, usage)}
	}
	return pos[1], true, nil
}

// help is c's help: its usage, then every flag of fs with its default.
func (c *command) help(fs *flag.FlagSet) *helpRequest {
	type entry struct {
		names      []string // shortest first: c, config
		arg, usage string
	}
	var entries []*entry
	fs.VisitAll(func(f *flag.Flag) {
		// An alias shares its flag's Value, and is listed with it.
		for _, e := range entries {
			if fs.Lookup(e.names[0]).Value == f.Value {
				e.names = append(e.names, f.Name)
				slices.SortStableFunc(e.names, func(a, b string) int { return len(a) - len(b) })
				return
			}
		}
		arg, usage := flag.UnquoteUsage(f)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		entries = append(entries, &entry{names: []string{f.Name}, arg: arg, usage: usage})
	})
	h := &helpRequest{}
	var b strings.Builder
	b.WriteString(c.usage)
	if len(entries) > 0 {
		b.WriteString("\nFlags:\n")
	}
	// Long names line up under the long names of flags with a short one.
	indent := ""
	if slices.ContainsFunc(entries, func(e *entry) bool { return len(e.names[0]) == 1 }) {
		indent = "    "
	}
	specs := make([]string, len(entries))
	width := 0
	for i, e := range entries {
		h.flags = append(h.flags, e.names)
		dashed := make([]string, len(e.names))
		for j, n := range e.names {
			dashed[j] = dashes(n)
		}
		specs[i] = strings.Join(dashed, ", ")
		if len(e.names[0]) > 1 {
			specs[i] = indent + specs[i]
		}
		if e.arg != "" {
			specs[i] += " " + e.arg
		}
		width = max(width, len(specs[i]))
	}
	for i, e := range entries {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, specs[i], e.usage)
	}
	h.text = b.String()
	return h
}

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// dashes writes a flag name as it is typed: -c, --config.
func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// configFlag adds -c/--config to fs.
func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("POLLHOOK_CONFIG")
	if def == "" {
		def = "pollhook.yaml"
	}
	p := fs.String("config", def, "the config `FILE` (env POLLHOOK_CONFIG)")
	fs.StringVar(p, "c", def, "the config `FILE` (env POLLHOOK_CONFIG)")
	return p
}

// loadConfig loads the config at path; a file that cannot be read is a
// usage error, like a bad config.
func loadConfig(path string) (*config.Config, error) { return load(path, config.Load) }

// load loads the config at path with f; a file that does not exist is a
// usage error that says how to name another.
func load[T any](path string, f func(string) (T, error)) (T, error) {
	v, err := f(path)
	if errors.Is(err, fs.ErrNotExist) {
		return v, &usageError{fmt.Sprintf("config file %s does not exist: pass -c FILE or set POLLHOOK_CONFIG", path)}
	}
	return v, err
}

// stateSource is where a command that works on the state file alone finds
// it: --state FILE, or state.path of the config, read with
// config.LoadLocal so that no API token or receiver secret need be set.
type stateSource struct {
	fs            *flag.FlagSet
	config, state *string
}

// stateFlags adds -c/--config and --state to fs.
func stateFlags(fs *flag.FlagSet) *stateSource {
	return &stateSource{fs: fs, config: configFlag(fs),
		state: fs.String("state", "", "the state itself, instead of state: of the config: a SQLite `FILE`, or a postgres:// DSN")}
}

// stateOf is the state s names: state: of the config (read alone, so
// that no other secret need be set), or --state, a SQLite file or a
// PostgreSQL DSN.
func (s *stateSource) stateOf() (config.State, error) {
	if *s.state == "" {
		l, err := load(*s.config, config.LoadLocal)
		if err != nil {
			return config.State{}, err
		}
		return l.State, nil
	}
	if flagSet(s.fs, "c") || flagSet(s.fs, "config") {
		return config.State{}, &usageError{"give the config (-c) or the state (--state), not both"}
	}
	if strings.HasPrefix(*s.state, "postgres://") || strings.HasPrefix(*s.state, "postgresql://") {
		return config.State{DSN: config.Secret(*s.state)}, nil
	}
	return config.State{Path: *s.state}, nil
}

// open opens the state. It creates nothing: a state file that does not
// exist is an error that says so.
func (s *stateSource) open(ctx context.Context) (cursor.Store, error) {
	st, err := s.stateOf()
	if err != nil {
		return nil, err
	}
	if st.DSN == "" {
		if _, err := os.Stat(st.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, &usageError{fmt.Sprintf("state file %s does not exist: nothing has been polled into it yet (pollhook once or pollhook run makes it)", st.Path)}
		}
	}
	return openState(ctx, st)
}

// exitCode maps an error to pollhook's exit code: 2 for a bad config or
// bad usage, 1 for any other failure.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var code *codeError
	if errors.As(err, &code) {
		return code.code
	}
	var ue *usageError
	var ce config.Errors
	var cerr *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &cerr) {
		return 2
	}
	return 1
}
