// Command pollhook polls REST APIs on a schedule, works out what was
// created, updated and deleted, and delivers those changes as signed
// webhook events. Run "pollhook help" for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pollhook:", err)
	}
	os.Exit(exitCode(err))
}
