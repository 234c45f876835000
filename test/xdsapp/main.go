package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: xdsapp server|client [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = serve(ctx, os.Args[2:])
	case "client":
		err = runClient(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("failed to run %q: unknown mode, want server or client", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdsapp:", err)
		os.Exit(1)
	}
}
