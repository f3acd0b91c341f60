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

Prints the version (set at build time with -ldflags "-X main.version=…",
as the Docker image's VERSION build argument does; else the module
version), and, when built from a git checkout, the VCS revision and
commit date, and the Go version.
`,
		run: runVersion,
	})
}

func runVersion(ctx context.Context, e *env, args []string) error {
	c := commands["version"]
	if _, err := c.parse(c.flags(e), args, 0); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, versionString())
	return nil
}

// version is the version a build names itself by, set with
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/pollhook
//
// (as the Dockerfile does from its VERSION build argument, because an
// image is built without .git and so without the VCS stamp). Empty: the
// module version of the build, or (devel).
var version string

// versionString describes this build: version, else the build info's
// module version, and the VCS revision and date when they are stamped.
func versionString() string {
	v, rev, date, dirty := "(devel)", "", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
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
	if version != "" {
		v = version
	}
	s := "pollhook " + v
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
