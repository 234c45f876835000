package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/traffic"
)

// newAppCmd is `meshroll app`: application releases carried by the mesh's
// routing rather than by rolling updates (seed 002).
func newAppCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "Release application versions through Istio routing (DestinationRule subsets, VirtualService weights)",
	}
	cmd.AddCommand(newAppRolloutCmd(kube))
	return cmd
}

// appRolloutFlags are the flags of `meshroll app rollout`.
type appRolloutFlags struct {
	opts     traffic.Options
	steps    string
	gates    []string
	promURL  string
	probeURL string
	// noSync turns off the wait for istiod's sync status (then only
	// --step-wait separates a routing change from the next).
	noSync      bool
	syncTimeout time.Duration
}

func newAppRolloutCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var f appRolloutFlags
	cmd := &cobra.Command{
		Use:   "rollout <deployment> --service <svc> --version <v> [--image <img>]",
		Short: "Bring up a new version beside the old, shift traffic to it by subset weights in gated steps, remove the old",
		Long: "The Deployment's pods must carry a version label (also in its selector) and the Service must select\n" +
			"every version. The new version runs as its own Deployment (<name> with the version suffix replaced);\n" +
			"a DestinationRule names one subset per version and a VirtualService (both named after the Service)\n" +
			"moves the weight step by step. After each change meshroll waits until istiod reports that every proxy\n" +
			"watching the changed config has acknowledged it (istiod's /debug/syncz on its pods' port 15014, what\n" +
			"istioctl proxy-status shows; meshroll must reach istiod's pod IPs), then --step-wait, then runs the gates; a failed gate sends all traffic back to the old version. Once all\n" +
			"traffic reaches the new version the old Deployment and its subset are deleted: no pod is deleted while a\n" +
			"client's route still names it, which is what a rolling update cannot promise.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAppRollout(cmd, kube, &f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.Service, "service", "", "Service the clients call (required)")
	fl.StringVar(&f.opts.Version, "version", "", "the new version: value of the pods' version label (required)")
	fl.StringVar(&f.opts.Image, "image", "", "image of the new version (default: the old Deployment's)")
	fl.StringVar(&f.opts.Container, "container", "", "container whose image --image replaces (default: the first)")
	fl.StringVar(&f.steps, "steps", "10,50,100", "weights of the new version in percent, growing, ending at 100")
	fl.DurationVar(&f.opts.StepWait, "step-wait", 0, "extra wait after each routing change has reached the proxies, before the gates run")
	fl.DurationVar(&f.syncTimeout, "sync-timeout", 2*time.Minute, "how long a routing change may take to be acknowledged by every proxy istiod pushes it to")
	fl.BoolVar(&f.noSync, "no-sync-wait", false, "do not ask istiod whether its proxies have each change (then give --step-wait)")
	fl.DurationVar(&f.opts.ReadyTimeout, "ready-timeout", 5*time.Minute, "how long the new Deployment may take to become available")
	fl.StringArrayVar(&f.gates, "gate", nil, `gate after each step: a preset (`+strings.Join(gate.PresetNames(), ", ")+`) or "name=<promql> <op> <threshold>" (repeatable)`)
	fl.StringVar(&f.promURL, "prometheus", "", "Prometheus URL the gates query")
	fl.StringVar(&f.probeURL, "probe", "", "URL a Fortio load probe hits after each step (gate: any non-2xx fails)")
	fl.BoolVar(&f.opts.DryRun, "dry-run", false, "check everything and print the plan; change nothing")
	_ = cmd.MarkFlagRequired("service")
	_ = cmd.MarkFlagRequired("version")
	return cmd
}

func runAppRollout(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, f *appRolloutFlags, deployment string) error {
	if f.noSync && f.opts.StepWait == 0 {
		return fmt.Errorf("invalid --no-sync-wait without --step-wait: nothing would separate a routing change from the next; give --step-wait (e.g. 10s) or drop --no-sync-wait")
	}
	if f.syncTimeout <= 0 {
		return fmt.Errorf("invalid --sync-timeout %s: give a positive duration (e.g. 2m)", f.syncTimeout)
	}
	steps, err := parseSteps(f.steps)
	if err != nil {
		return err
	}
	f.opts.Steps = steps
	if err := traffic.ValidateSteps(steps); err != nil {
		return fmt.Errorf("invalid --steps %q: %w", f.steps, err)
	}
	gates, err := buildGates(f.gates, f.probeURL)
	if err != nil {
		return err
	}
	if len(gates) > 0 {
		runner, err := gate.NewRunner(f.promURL)
		if err != nil {
			return err
		}
		for _, g := range gates {
			if err := runner.Validate(cmd.Context(), g); err != nil {
				return fmt.Errorf("invalid --gate %q: %w", g.Name, err)
			}
		}
		f.opts.Gate = func(ctx context.Context, weight int) error {
			for _, g := range gates {
				passed, evidence, err := runner.Evaluate(ctx, g, weight)
				if err != nil {
					return fmt.Errorf("failed to evaluate gate %q: %w", g.Name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "gate %s at %d%%: %s\n", g.Name, weight, evidence)
				if !passed {
					return fmt.Errorf("gate %q failed: %s", g.Name, evidence)
				}
			}
			return nil
		}
	}
	ns, _, err := kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("failed to read the namespace: %w", err)
	}
	c, _, err := executorClients(cmd.Context(), kube)
	if err != nil {
		return err
	}
	f.opts.Namespace, f.opts.Deployment, f.opts.Out = ns, deployment, cmd.OutOrStdout()
	if !f.noSync {
		f.opts.Sync = &traffic.Propagation{Kube: c.Kube, Timeout: f.syncTimeout}
	}
	res, err := traffic.Rollout(cmd.Context(), traffic.Clients{Kube: c.Kube, Dynamic: c.Dynamic}, f.opts)
	if err != nil {
		return err
	}
	if !f.opts.DryRun {
		fmt.Fprintf(cmd.OutOrStdout(), "rollout done: %s now served by %s/%s (version %s); %s removed\n", res.Host, ns, res.New, res.NewVersion, res.Old)
	}
	return nil
}

// parseSteps reads "10,50,100".
func parseSteps(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("invalid --steps %q: %q is not a whole percentage", s, part)
		}
		out = append(out, w)
	}
	return out, nil
}
