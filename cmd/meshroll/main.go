// Command meshroll upgrades Istio across a fleet without downtime.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshroll/meshroll/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
