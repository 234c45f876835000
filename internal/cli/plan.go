package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// planOptions binds `meshroll plan`'s flags.
type planOptions struct {
	to, from, strategy string
	allowDowngrade     bool
	out                outputFlag
}

func newPlanCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Plan the version path to an Istio release, hop by hop, with the reason for each",
		Example: `  meshroll plan --to 1.26.1 --from 1.23.2
  meshroll plan --to 1.24.2            # from what the cluster runs now`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, kube)
		},
	}
	cmd.Flags().StringVar(&o.to, "to", "", "target Istio release, e.g. 1.26.1 (required)")
	cmd.Flags().StringVar(&o.from, "from", "cluster", "starting release, or `cluster` to read control planes and proxies from the cluster")
	cmd.Flags().StringVar(&o.strategy, "strategy", string(plan.StrategyCanary), "canary (revisions side by side; may skip one minor) or inplace")
	cmd.Flags().BoolVar(&o.allowDowngrade, "allow-downgrade", false, "allow a path to an older minor")
	o.out.bind(cmd)
	return cmd
}

func (o *planOptions) run(cmd *cobra.Command, kube *genericclioptions.ConfigFlags) error {
	if err := o.out.validate(); err != nil {
		return err
	}
	if o.to == "" {
		return fmt.Errorf("--to is required: pass the target Istio release, e.g. --to 1.26.1")
	}
	to, err := plan.ParseVersion(o.to)
	if err != nil {
		return fmt.Errorf("invalid --to %q: %w", o.to, err)
	}
	req := plan.PathRequest{To: to, Strategy: plan.Strategy(o.strategy), AllowDowngrade: o.allowDowngrade}
	for _, r := range istio.Releases() {
		v, err := plan.ParseVersion(r.Version)
		if err != nil {
			return fmt.Errorf("failed to parse release %q: %w", r.Version, err)
		}
		req.Available = append(req.Available, v)
	}
	if o.from == "cluster" {
		if err := fromCluster(cmd.Context(), kube, &req); err != nil {
			return err
		}
	} else {
		from, err := plan.ParseVersion(o.from)
		if err != nil {
			return fmt.Errorf("invalid --from %q: %w; use a release such as 1.23.2 or `cluster`", o.from, err)
		}
		req.From = []plan.Version{from}
	}
	path, err := plan.PlanPath(req)
	var noPath *plan.NoPathError
	if errors.As(err, &noPath) {
		return &ExitError{Code: 2, Err: fmt.Errorf("no safe upgrade path: %s", noPath.Reason)}
	}
	if err != nil {
		return err
	}
	return o.out.print(cmd.OutOrStdout(), path, func(w *tabwriter.Writer) error {
		_, err := fmt.Fprint(w, path.String())
		return err
	})
}

// fromCluster fills the starting point from the cluster: every installed
// control plane's version and every proxy version seen.
func fromCluster(ctx context.Context, kube *genericclioptions.ConfigFlags, req *plan.PathRequest) error {
	clients, err := clusterClients(ctx, kube)
	if err != nil {
		return err
	}
	snap, err := inventory.Read(ctx, clients, time.Now())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, r := range snap.Revisions {
		if v, err := plan.ParseVersion(r.Version); err == nil {
			req.From = append(req.From, v)
		}
	}
	for _, c := range snap.Summary().ByVersion {
		if c.Key == "" || seen[c.Key] {
			continue
		}
		seen[c.Key] = true
		if v, err := plan.ParseVersion(c.Key); err == nil {
			req.Proxies = append(req.Proxies, v)
		}
	}
	if len(req.From) == 0 {
		return fmt.Errorf("no Istio control plane with a known version in the cluster: pass --from <release>")
	}
	return nil
}
