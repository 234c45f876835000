package vmagent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// DefaultConfigPath is where the systemd unit points the agent.
const DefaultConfigPath = "/etc/meshroll-agent/config.json"

// Main is meshroll-agent's entry: it parses flags, loads the configuration
// and runs the agent until ctx ends. It returns the process exit code.
func Main(ctx context.Context, args []string, version string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("meshroll-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", DefaultConfigPath, "agent configuration file (written by meshroll vm onboard)")
	once := fs.Bool("once", false, "reconcile and report once, then exit")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the agent's version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "meshroll-agent: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return 0
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "meshroll-agent: %v\n", err)
		return 2
	}
	if *check {
		fmt.Fprintf(stdout, "config %s is valid\n", *cfgPath)
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("vm", cfg.Namespace+"/"+cfg.Name)
	a, err := New(cfg, version, log)
	if err != nil {
		fmt.Fprintf(stderr, "meshroll-agent: %v\n", err)
		return 2
	}
	if *once {
		if err := a.Start(ctx); err != nil {
			fmt.Fprintf(stderr, "meshroll-agent: %v\n", err)
			return 1
		}
		a.Once(ctx)
		return 0
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "meshroll-agent: %v\n", err)
		return 1
	}
	return 0
}
