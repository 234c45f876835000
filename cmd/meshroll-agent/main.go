// Command meshroll-agent keeps a VM's Istio sidecar on the revision meshroll
// assigns it (see package vmagent).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := vmagent.Main(ctx, os.Args[1:], version, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
