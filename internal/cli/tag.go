package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// newTagCmd is `meshroll tag`: revision tags are the stable names namespaces
// point at while the revision behind them moves, which is how an upgrade
// moves whole groups of namespaces with one change.
func newTagCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag",
		Short: "Set, list and remove revision tags (istio-revision-tag-<tag> webhooks)",
	}
	cmd.AddCommand(newTagSetCmd(kube), newTagListCmd(kube), newTagRemoveCmd(kube))
	return cmd
}

func newTagSetCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var opts controlplane.TagOptions
	cmd := &cobra.Command{
		Use:   "set <tag> --revision <rev>",
		Short: "Point a tag at a revision; moving an existing tag needs --overwrite",
		Long: "Creates or moves the istio-revision-tag-<tag> webhook, rendered from the revision's own istiod chart.\n" +
			"Moving a tag reports the namespaces and workloads it migrates and refuses to put running proxies\n" +
			"beyond supported skew of the target revision unless --force. The default tag also points\n" +
			"istiod-default-validator at the revision and deactivates a legacy non-revisioned injector.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tag = args[0]
			if err := istio.ValidateRevision(opts.Tag); err != nil {
				return fmt.Errorf("invalid tag name %q: %w", opts.Tag, err)
			}
			c, snap, err := tagClients(cmd, kube)
			if err != nil {
				return err
			}
			opts.Snapshot = snap
			opts.Cache = renderCache()
			res, err := controlplane.SetTag(cmd.Context(), c, opts)
			if res != nil {
				printTagResult(cmd.OutOrStdout(), res, opts.DryRun)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&opts.Revision, "revision", "", "revision the tag points at (required)")
	cmd.Flags().BoolVar(&opts.Overwrite, "overwrite", false, "move the tag if it points at another revision")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "move the tag even if running proxies end up beyond supported skew")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would change (server-side dry run) and change nothing")
	_ = cmd.MarkFlagRequired("revision")
	return cmd
}

func newTagListCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	return snapshotCmd(kube, "list", "List revision tags, the revision each points at and the namespaces using it",
		func(cmd *cobra.Command, out *outputFlag, snap *inventory.Snapshot) error {
			tags := controlplane.ListTags(snap)
			return out.print(cmd.OutOrStdout(), tags, func(w *tabwriter.Writer) error {
				fmt.Fprintln(w, "TAG\tREVISION\tNAMESPACES")
				for _, t := range tags {
					fmt.Fprintf(w, "%s\t%s\t%s\n", t.Tag, t.Revision, dash(strings.Join(t.Namespaces, ",")))
				}
				return nil
			})
		})
}

func newTagRemoveCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var opts controlplane.RemoveTagOptions
	cmd := &cobra.Command{
		Use:   "remove <tag>",
		Short: "Remove a revision tag; refused while namespaces use it unless --force",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Tag = args[0]
			if err := istio.ValidateRevision(opts.Tag); err != nil {
				return fmt.Errorf("invalid tag name %q: %w", opts.Tag, err)
			}
			c, snap, err := tagClients(cmd, kube)
			if err != nil {
				return err
			}
			opts.Snapshot = snap
			res, err := controlplane.RemoveTag(cmd.Context(), c, opts)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, ch := range res.Changes {
				fmt.Fprintf(w, "%s%s\n", dryRunPrefix(opts.DryRun), ch)
			}
			if len(res.Namespaces) > 0 {
				fmt.Fprintf(w, "namespaces no longer injected: %s\n", strings.Join(res.Namespaces, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "remove the tag even though namespaces still use it")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would change (server-side dry run) and change nothing")
	return cmd
}

// tagClients connects and reads the inventory a tag change is judged against.
func tagClients(cmd *cobra.Command, kube *genericclioptions.ConfigFlags) (controlplane.Clients, *inventory.Snapshot, error) {
	c, ic, err := executorClients(cmd.Context(), kube)
	if err != nil {
		return c, nil, err
	}
	snap, err := inventory.Read(cmd.Context(), ic, time.Now())
	if err != nil {
		return c, nil, err
	}
	return c, snap, nil
}

// printTagResult says where the tag points, what was written and which
// namespaces and workloads follow it.
func printTagResult(w io.Writer, res *controlplane.TagResult, dryRun bool) {
	p := res.Plan
	switch {
	case p.Moves():
		fmt.Fprintf(w, "tag %s: %s -> %s (istio %s)\n", p.Tag, p.Previous, p.Revision, p.Version)
	default:
		fmt.Fprintf(w, "tag %s: %s (istio %s)\n", p.Tag, p.Revision, p.Version)
	}
	for _, ch := range res.Changes {
		fmt.Fprintf(w, "%s%s\n", dryRunPrefix(dryRun), ch)
	}
	if !p.Moves() {
		return
	}
	fmt.Fprintf(w, "migrates %d namespace(s): %s\n", len(p.Namespaces), dash(strings.Join(p.Namespaces, ", ")))
	for _, m := range p.Workloads {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if len(p.Workloads) > 0 {
		fmt.Fprintf(w, "restart these workloads to move their proxies to %s\n", p.Revision)
	}
}
