package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the version, VCS revision and build date",
		usage: `Usage: pollhook version

Prints the module version and, when built from a git checkout, the VCS
revision and commit date, and the Go version.
`,
		run: runVersion,
	})
}

func runVersion(ctx context.Context, e *env, args []string) error {
	c := commands["version"]
	if err := c.parse(c.flags(e), args, 0); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// versionString describes this build from debug.ReadBuildInfo.
func versionString() string {
	version, rev, date, dirty := "(devel)", "", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				date = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
	}
	s := "pollhook " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " revision " + rev + dirty
	}
	if date != "" {
		s += " date " + date
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
