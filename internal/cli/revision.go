package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	mcheck "github.com/meshroll/meshroll/internal/manifest/check"
	"github.com/meshroll/meshroll/internal/plan"
)

func newRevisionCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revision",
		Short: "Install, list and remove Istio control-plane revisions side by side",
	}
	cmd.AddCommand(newRevisionInstallCmd(kube), newRevisionListCmd(kube), newRevisionRemoveCmd(kube))
	return cmd
}

func newRevisionInstallCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &renderFlags{}
	var dryRun, force bool
	var reason string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Apply exactly what `manifest render` produces as a new revision, beside the running ones",
		Example: `  meshroll revision install --version 1.24.2
  meshroll revision install --version 1.24.2 --revision canary --dry-run
  meshroll revision install --version 1.26.1 --force --reason "lab cluster, skipping 1.25"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if force && strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--force needs --reason \"...\": say why the planner's refusal does not apply")
			}
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			objs, opts, err := f.render(ctx)
			if err != nil {
				return err
			}
			if err := validateRendered(w, objs); err != nil {
				return err
			}
			c, _, err := executorClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			if err := checkInstallPath(cmd, c, opts.Version, force, reason); err != nil {
				return err
			}
			start := time.Now()
			res, err := controlplane.Install(ctx, c, controlplane.InstallOptions{Render: opts, Objects: objs, DryRun: dryRun, Timeout: timeout})
			if res != nil {
				printChanges(w, res.Changes, dryRun)
			}
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintf(w, "dry run: revision %s (%s) would apply %d objects (%s) and record %d for removal in %s/%s; nothing changed\n",
					res.Revision, opts.Version, len(res.Changes), controlplane.Summarize(res.Changes), len(res.Record.Objects), istio.SystemNamespace, controlplane.RecordName(res.Revision))
				return nil
			}
			fmt.Fprintf(w, "revision %s (%s) installed in %s: %s; istiod %s available, injector %s present\n",
				res.Revision, opts.Version, time.Since(start).Round(time.Millisecond), controlplane.Summarize(res.Changes),
				controlplane.IstiodName(res.Revision), controlplane.InjectorName(res.Revision))
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be applied (server-side dry run); change nothing")
	cmd.Flags().BoolVar(&force, "force", false, "install even when the planner says the version is not one safe hop from what runs now")
	cmd.Flags().StringVar(&reason, "reason", "", "why --force is justified (required with --force; printed)")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "bound on each wait (CRDs established, istiod available)")
	return cmd
}

// validateRendered runs the manifest checks; any error finding stops the install.
func validateRendered(w io.Writer, objs []*unstructured.Unstructured) error {
	findings := mcheck.Run(mcheck.FromObjects(objs, ""), mcheck.All())
	var errs []mcheck.Finding
	for _, x := range findings {
		if x.Severity == mcheck.Error {
			errs = append(errs, x)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	for _, x := range errs {
		fmt.Fprintf(w, "%s %s %s: %s (fix: %s)\n", x.Code, x.Check, x.Object, x.Message, x.Fix)
	}
	return fmt.Errorf("the rendered manifests have %d error finding(s) (listed above); nothing was applied", len(errs))
}

// checkInstallPath refuses a version the planner says is not one safe canary
// hop from the installed control planes, unless forced.
func checkInstallPath(cmd *cobra.Command, c controlplane.Clients, version string, force bool, reason string) error {
	to, err := plan.ParseVersion(version)
	if err != nil {
		return fmt.Errorf("invalid --version %q: %w", version, err)
	}
	installed, err := controlplane.ListRevisions(cmd.Context(), c.Kube, istio.SystemNamespace)
	if err != nil {
		return err
	}
	if _, err := controlplane.CheckPath(installed, to, plan.Renderable()); err != nil {
		if !force {
			return fmt.Errorf("%w\n(override with --force --reason \"...\")", err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\nforced: %s\n", err, reason)
	}
	return nil
}

func printChanges(w io.Writer, changes []controlplane.Change, dryRun bool) {
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s%s\n", c, suffix)
	}
}

// revisionRow is one line of `revision list`.
type revisionRow struct {
	Name       string                  `json:"name"`
	Version    string                  `json:"version,omitempty"`
	Ready      string                  `json:"ready"`
	Tags       []string                `json:"tags,omitempty"`
	Default    bool                    `json:"default,omitempty"`
	Namespaces int                     `json:"namespaces"`
	Workloads  int                     `json:"workloads"`
	Pods       int                     `json:"pods"`
	Terminated int                     `json:"terminatedPods,omitempty"`
	InUseBy    []controlplane.Referrer `json:"inUseBy,omitempty"`
}

func revisionRows(s *inventory.Snapshot) []revisionRow {
	rows := make([]revisionRow, 0, len(s.Revisions))
	for _, r := range s.Revisions {
		row := revisionRow{Name: r.Name, Version: r.Version, Ready: fmt.Sprintf("%d/%d", r.ReadyReplicas, r.DesiredReplicas),
			Tags: r.Tags, Default: r.Default, InUseBy: controlplane.Referrers(s, r.Name, nil)}
		for _, ns := range s.Namespaces {
			if ns.Injection.Injected && ns.Injection.Revision == r.Name {
				row.Namespaces++
			}
		}
		for i := range s.Workloads {
			used := false
			for _, p := range s.Workloads[i].Proxies {
				if p.Revision == r.Name {
					used = true
					row.Pods += p.Pods
					row.Terminated += p.Terminated
				}
			}
			if used {
				row.Workloads++
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// inUseSummary counts referrers by kind: "3 pods, 1 namespace, tag default".
func inUseSummary(refs []controlplane.Referrer) string {
	if len(refs) == 0 {
		return "-"
	}
	counts := map[controlplane.ReferrerKind]int{}
	var order []controlplane.ReferrerKind
	var tags []string
	for _, r := range refs {
		if r.Kind == controlplane.ReferrerTag {
			tags = append(tags, r.Object)
			continue
		}
		if counts[r.Kind] == 0 {
			order = append(order, r.Kind)
		}
		counts[r.Kind]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(append(parts, tags...), ", ")
}

func newRevisionListCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	return snapshotCmd(kube, "list", "List installed revisions and what still uses each",
		func(cmd *cobra.Command, out *outputFlag, snap *inventory.Snapshot) error {
			rows := revisionRows(snap)
			return out.print(cmd.OutOrStdout(), rows, func(w *tabwriter.Writer) error {
				fmt.Fprintln(w, "REVISION\tVERSION\tREADY\tTAGS\tNAMESPACES\tWORKLOADS\tPODS\tIN USE BY")
				for _, r := range rows {
					tags := strings.Join(r.Tags, ",")
					if r.Default && !strings.Contains(","+tags+",", ",default,") {
						tags = strings.TrimPrefix(tags+",(default injector)", ",")
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Name, dash(r.Version), r.Ready, dash(tags),
						r.Namespaces, r.Workloads, podCount(r.Pods, r.Terminated), inUseSummary(r.InUseBy))
				}
				return nil
			})
		})
}

func newRevisionRemoveCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var dryRun bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "remove REVISION",
		Short: "Delete a revision meshroll installed, once nothing uses it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rev, w := args[0], cmd.OutOrStdout()
			c, ic, err := executorClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			snap, err := inventory.Read(cmd.Context(), ic, time.Now())
			if err != nil {
				return err
			}
			res, err := controlplane.Remove(cmd.Context(), c, snap, controlplane.RemoveOptions{Revision: rev, DryRun: dryRun, Timeout: timeout})
			var inUse *controlplane.InUseError
			if errors.As(err, &inUse) {
				fmt.Fprintf(w, "revision %s is in use; nothing was changed. Referrers:\n", rev)
				for _, r := range inUse.Referrers {
					fmt.Fprintf(w, "  %s\n", r)
				}
				return &ExitError{Code: 1, Err: err}
			}
			if res != nil {
				verb := "deleted"
				if dryRun {
					verb = "would delete (dry run)"
				}
				for _, ref := range res.Deleted {
					fmt.Fprintf(w, "%s %s\n", ref, verb)
				}
			}
			if err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintf(w, "dry run: revision %s is unused; remove would delete %d objects and its record; nothing changed\n", rev, len(res.Deleted))
				return nil
			}
			fmt.Fprintf(w, "revision %s removed: %d objects deleted (%d already gone), record deleted, no webhook refers to it\n", rev, len(res.Deleted), len(res.Missing))
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check referrers and show what would be deleted (server-side dry run); change nothing")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "bound on the wait for deleted objects to disappear")
	return cmd
}
