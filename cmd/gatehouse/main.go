// Command gatehouse is the Gatehouse CLI: it applies and exports policies,
// imports seed formats, decides and explains checks, administers users and
// tenants, and verifies the audit trail.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Execute(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
