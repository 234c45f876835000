package cli

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	"github.com/meshroll/meshroll/internal/plan"
)

// sourceCluster names the live cluster as a diff side.
const sourceCluster = "cluster"

func newManifestDiffCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	out := &outputFlag{}
	var components []string
	var ignore []string
	cmd := &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Semantic diff of two revisions: each side a release (1.23.2), a rendered directory or file, or `cluster`",
		Example: `  meshroll manifest diff 1.23.2 1.24.2
  meshroll manifest diff cluster 1.24.2 --components base,istiod
  meshroll manifest diff ./rendered-1.23.2 ./rendered-1.24.2 -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			var comps []istio.Component
			for _, c := range components {
				comp, err := parseComponent(c)
				if err != nil {
					return err
				}
				comps = append(comps, comp)
			}
			cache := renderCache()
			load := func(src string) ([]*unstructured.Unstructured, error) {
				return loadSide(cmd.Context(), kube, src, comps, cache)
			}
			from, err := load(args[0])
			if err != nil {
				return err
			}
			to, err := load(args[1])
			if err != nil {
				return err
			}
			d := manifest.Compute(from, to, manifest.DiffOptions{IgnorePaths: ignore})
			if out.format == "table" {
				return d.Text(cmd.OutOrStdout())
			}
			return out.print(cmd.OutOrStdout(), d, nil)
		},
	}
	out.bind(cmd)
	cmd.Flags().StringSliceVar(&components, "components", []string{"base", "istiod"}, "components rendered for release sides: base, istiod, gateway")
	cmd.Flags().StringArrayVar(&ignore, "ignore", nil, "field path to leave out of the diff, e.g. metadata.labels.helm.sh/chart (repeatable)")
	return cmd
}

// loadSide resolves one diff side: a path on disk wins over a release of the
// same spelling, then `cluster`, then a release version.
func loadSide(ctx context.Context, kube *genericclioptions.ConfigFlags, src string, comps []istio.Component, cache *istio.RenderCache) ([]*unstructured.Unstructured, error) {
	if _, err := os.Stat(src); err == nil {
		return manifest.ReadDir(src)
	}
	if src == sourceCluster {
		return clusterObjects(ctx, kube, comps, cache)
	}
	if _, err := plan.ParseVersion(src); err != nil {
		return nil, fmt.Errorf("diff side %q is neither a file or directory, nor `cluster`, nor an Istio release such as 1.24.2", src)
	}
	return istio.Render(ctx, istio.RenderOptions{Version: src, Components: comps, Cache: cache})
}

// clusterObjects reads back what the cluster runs now: it renders the newest
// installed revision's release and fetches the live copy of every object that
// render names, so drift and the upgrade show in one diff.
func clusterObjects(ctx context.Context, kube *genericclioptions.ConfigFlags, comps []istio.Component, cache *istio.RenderCache) ([]*unstructured.Unstructured, error) {
	c, _, err := executorClients(ctx, kube)
	if err != nil {
		return nil, err
	}
	kc, dc := c.Kube, c.Dynamic
	revs, err := controlplane.ListRevisions(ctx, kc, istio.SystemNamespace)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("no istiod Deployment found in %s: the cluster runs no Istio revision to diff against", istio.SystemNamespace)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Version.Compare(revs[j].Version) > 0 })
	newest := revs[0]
	rendered, err := istio.Render(ctx, istio.RenderOptions{Version: newest.Version.String(), Revision: newest.Name, Components: comps, Cache: cache})
	if err != nil {
		return nil, err
	}
	a := controlplane.NewApplier(dc, kc.Discovery(), true)
	var live []*unstructured.Unstructured
	for _, o := range rendered {
		got, err := a.Get(ctx, o)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		live = append(live, got)
	}
	return live, nil
}
