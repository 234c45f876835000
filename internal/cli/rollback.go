package cli

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/report"
	"github.com/meshroll/meshroll/internal/upgrade"
)

func newRollbackCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var dryRun bool
	var reportPath, chartsDir, repo string
	cmd := &cobra.Command{
		Use:   "rollback UPGRADE",
		Short: "Restore every workload a MeshUpgrade moved to its previous revision",
		Long: `rollback asks the named MeshUpgrade to roll back (spec.rollbackRequested) and runs the engine in the
foreground: the upgrade's steps backwards, from its record. Tags and namespace labels point back at
the old revision, every moved workload gets its previous pod template back, newest first, and every
gateway the upgrade flipped selects its previous colour again. It is refused before any write when
the old revision is no longer installed (pods would start without a sidecar) or a later upgrade has
moved the same workloads, labels, tags or gateways (roll that one back first); the refusal names the
command that clears it. Besides what the MeshUpgrade recorded, it restores
every workload carrying the upgrade's meshroll.io/upgrade label, so a move whose record was lost (a
kill or a failed status write) is never missed. A revision the upgrade's install step installed is
removed once every workload is back (one that existed before the upgrade never is). Given the
name of a multi-hop upgrade, it rolls the hops back newest first. Rerun it to resume after an
interruption.`,
		Example: `  meshroll rollback 1-23-2-to-1-24-2
  meshroll rollback 1-23-2-to-1-24-2 --dry-run
  meshroll rollback 1-23-2-to-1-26-1   # a multi-hop upgrade: every hop, newest first`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			c, ic, err := executorClients(ctx, kube)
			if err != nil {
				return err
			}
			store := upgrade.Store{Dynamic: c.Dynamic}
			mu, err := store.Get(ctx, args[0])
			if apierrors.IsNotFound(err) {
				// A multi-hop upgrade's name: its hops, newest first.
				if hops, herr := chainHops(ctx, store, args[0]); herr == nil && len(hops) > 0 {
					var flags []string
					cmd.LocalNonPersistentFlags().Visit(func(f *pflag.Flag) { flags = append(flags, "--"+f.Name+"="+f.Value.String()) })
					return rollbackChain(cmd, kube, args[0], hops, flags)
				}
			}
			if err != nil {
				return fmt.Errorf("failed to get MeshUpgrade %q: %w (list them with `kubectl get meshupgrades`)", args[0], err)
			}
			if chartsDir != "" && repo != "" {
				return fmt.Errorf("--charts and --repo both name a chart source: pass one")
			}
			// Refused before any write: From gone (pods pointed back at it
			// would start without a sidecar), or a later upgrade moved the
			// same workloads, labels, tags or gateways.
			if mu.Status.Phase != v1alpha1.PhaseRolledBack {
				facts, err := upgrade.ReadRollbackFacts(ctx, c.Kube, store, mu)
				if err != nil {
					return err
				}
				if err := upgrade.CheckRollback(mu, facts); err != nil {
					return err
				}
			}
			if dryRun {
				moved := map[string]bool{}
				for _, w := range mu.Status.Workloads {
					if w.Outcome != "" && w.Outcome != v1alpha1.OutcomeRolledBack {
						moved[w.Ref()] = true
					}
				}
				labelled, err := dataplane.ListLabelled(ctx, c.Kube, mu.Name)
				if err != nil {
					return err
				}
				unrecorded := 0
				for _, r := range labelled {
					if !moved[r.String()] {
						moved[r.String()] = true
						unrecorded++
					}
				}
				fmt.Fprintf(w, "(dry run) would roll back %d workload(s) (%d found only by the %s label), %d namespace relabel(s), %d tag(s) and %d gateway(s) of %s to %s; nothing changed\n",
					len(moved), unrecorded, dataplane.LabelUpgrade, len(mu.Status.Namespaces), len(mu.Status.Tags), len(mu.Status.Gateways), mu.Name, mu.Spec.From)
				return nil
			}
			if _, err := store.Patch(ctx, mu.Name, []byte(`{"spec":{"rollbackRequested":true}}`)); err != nil {
				return err
			}
			if holder, ok, err := controller.Running(ctx, c.Kube, time.Now()); err != nil {
				return err
			} else if ok {
				// Where a controller runs, it rolls back: a second engine
				// would only wait for its lease.
				fmt.Fprintf(w, "rollback of %s requested (spec.rollbackRequested); the meshroll controller (%s) rolls it back — follow it with `kubectl get mu %s -w` or `meshroll report %s`\n", mu.Name, holder, mu.Name, mu.Name)
				return nil
			}
			snap, err := inventory.Read(ctx, ic, time.Now())
			if err != nil {
				return err
			}
			u := &upgradeRun{cmd: cmd, w: w, c: c, ic: ic, snap: snap, cache: renderCache(), source: chartSource(chartsDir, repo)}
			out, err := u.engine(store, &gate.Runner{}).Run(ctx, mu.Name)
			if held := (*upgrade.HeldError)(nil); errors.As(err, &held) {
				// Another engine runs the upgrade: it reads the request and
				// rolls back itself; two engines would fight over the record.
				fmt.Fprintf(w, "rollback of %s requested; the engine running it (%s) rolls it back — follow it with `meshroll report %s`\n", mu.Name, held.Holder, mu.Name)
				return nil
			}
			if out != nil && reportPath != "" {
				err = errors.Join(err, writeReport(reportPath, out, nil))
			}
			if err != nil && !errors.Is(err, upgrade.ErrRolledBack) {
				return &ExitError{Code: 3, Err: err}
			}
			fmt.Fprintf(w, "rolled back %d workload(s) to %s\n", out.Status.Counts.RolledBack, out.Spec.From)
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be rolled back; change nothing")
	cmd.Flags().StringVar(&reportPath, "report", "", "write the HTML report of the run to this file")
	cmd.Flags().StringVar(&chartsDir, "charts", "", "render tag webhooks moved back from this local charts directory instead of the istio.io/istio Go module (air-gapped)")
	cmd.Flags().StringVar(&repo, "repo", "", "render tag webhooks moved back from this Helm chart repository URL instead of the istio.io/istio Go module")
	return cmd
}

// chartSource is the chart source a --charts or --repo flag names; nil is
// the Go module.
func chartSource(dir, repo string) istio.ChartSource {
	switch {
	case dir != "":
		return istio.DirSource{Dir: dir}
	case repo != "":
		return istio.RepoSource{URL: repo}
	}
	return nil
}

func newReportCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	o := outputFlag{format: "table"}
	var out string
	cmd := &cobra.Command{
		Use:   "report UPGRADE",
		Short: "Report a MeshUpgrade: timeline, revision mix, gate evidence, failures (text, json, yaml or html)",
		Example: `  meshroll report 1-23-2-to-1-24-2
  meshroll report 1-23-2-to-1-24-2 -o html --out report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != "html" {
				if err := o.validate(); err != nil {
					return fmt.Errorf("%w (or html)", err)
				}
			}
			c, _, err := executorClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			mu, err := upgrade.Store{Dynamic: c.Dynamic}.Get(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("failed to get MeshUpgrade %q: %w", args[0], err)
			}
			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("failed to create %s: %w", out, err)
				}
				defer f.Close()
				w = f
			}
			switch o.format {
			case "html":
				return report.HTML(w, mu, time.Now())
			case "table":
				return report.Text(w, mu)
			}
			return o.print(w, mu, func(*tabwriter.Writer) error { return nil })
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	return cmd
}
