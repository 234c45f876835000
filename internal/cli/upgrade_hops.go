package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// A multi-hop upgrade (--to more than one safe hop away, e.g. 1.23.2 →
// 1.26.1) runs the planner's hops (plan.PlanPath) one after another, each as
// a MeshUpgrade of its own: every hop is a whole upgrade (its own install,
// gateways, gated and baked waves, tags, prune), recorded, resumable and
// rolled back on its own, and `meshroll rollback` of an earlier hop is refused
// while a later one is live (it names the later one). One MeshUpgrade per hop
// keeps the engine's record one From and one To, which is what its rollback,
// the assignment webhook and prune reason about. The hops of one run share
// a chain: labels and annotations on each hop's MeshUpgrade, so a rerun of
// the same command after a kill finds the chain and resumes it where it
// stopped, whatever the proxies run by then.

// Labels and annotations that tie the hops of a multi-hop upgrade together.
const (
	// LabelChain names the chain (the whole upgrade) a hop belongs to.
	labelChain = "meshroll.io/chain"
	// annotationChainPath is the chain's releases, start first, comma
	// separated: the plan the chain was started with.
	annotationChainPath = "meshroll.io/chain-path"
	// annotationChainFrom is the revision the chain started from.
	annotationChainFrom = "meshroll.io/chain-from"
	// annotationHop is the hop's place, "2/3".
	annotationHop = "meshroll.io/hop"
)

// chain is a multi-hop upgrade: releases[0] is what runs now, each later
// one a hop's target.
type chain struct {
	name     string
	from     string
	releases []string
}

// hopInfo is set on the flags of one hop's run.
type hopInfo struct {
	chain *chain
	index int // 1-based
}

func (c *chain) hops() int { return len(c.releases) - 1 }

// hopName is the MeshUpgrade name of hop i (1-based).
func (c *chain) hopName(i int) string { return fmt.Sprintf("%s-hop%d", c.name, i) }

// hopFrom is the revision hop i starts from.
func (c *chain) hopFrom(i int) string {
	if i == 1 {
		return c.from
	}
	return istio.RevisionName(c.releases[i-1])
}

// labels and annotations of hop i's MeshUpgrade.
func (h *hopInfo) meta() (map[string]string, map[string]string) {
	c := h.chain
	return map[string]string{labelChain: c.name}, map[string]string{
		annotationChainPath: strings.Join(c.releases, ","),
		annotationChainFrom: c.from,
		annotationHop:       fmt.Sprintf("%d/%d", h.index, c.hops()),
	}
}

// mustPrune reports whether hop i has to remove its From after its last
// bake: the next hop installs a release more minors ahead of it than a
// canary may reach (Istio's Canary Upgrades page: one minor may be skipped),
// and the install's version check refuses any installed control plane out
// of reach.
func (c *chain) mustPrune(i int) bool {
	if i >= c.hops() {
		return false
	}
	from, err1 := plan.ParseVersion(c.releases[i-1])
	next, err2 := plan.ParseVersion(c.releases[i+1])
	return err1 == nil && err2 == nil && next.Major == from.Major && next.Minor-from.Minor > 2
}

// findChain returns the unfinished chain whose last hop targets version, to
// resume it, or nil.
func findChain(ctx context.Context, store upgrade.Store, version string) (*chain, error) {
	all, err := store.List(ctx)
	if apierrors.IsNotFound(err) {
		return nil, nil // no MeshUpgrade CRD yet: nothing to resume
	}
	if err != nil {
		return nil, err
	}
	byChain := map[string][]v1alpha1.MeshUpgrade{}
	for _, mu := range all {
		if n := mu.Labels[labelChain]; n != "" {
			byChain[n] = append(byChain[n], mu)
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range byChain {
			if !yield(n) {
				return
			}
		}
	})
	for _, n := range names {
		hops := byChain[n]
		path := strings.Split(hops[0].Annotations[annotationChainPath], ",")
		if len(path) < 3 || path[len(path)-1] != version {
			continue
		}
		c := &chain{name: n, from: hops[0].Annotations[annotationChainFrom], releases: path}
		done, dead := false, false
		for _, h := range hops {
			switch {
			case h.Status.Phase == v1alpha1.PhaseRolledBack || h.Status.Phase == v1alpha1.PhaseHalted || h.Spec.RollbackRequested:
				dead = true
			case h.Name == c.hopName(c.hops()) && h.Status.Phase == v1alpha1.PhaseSucceeded:
				done = true
			}
		}
		if !done && !dead && c.from != "" {
			return c, nil
		}
	}
	return nil, nil
}

// planChain returns the chain `upgrade` runs, nil for a single-hop upgrade
// (which the usual checks handle, refusals included): an unfinished chain
// to the same release is resumed, else the planner's path from the source
// revision's release is taken when it has more than one hop.
func planChain(ctx context.Context, store upgrade.Store, f *upgradeFlags, snap *inventory.Snapshot) (*chain, error) {
	if f.hop != nil {
		return nil, nil
	}
	c, err := findChain(ctx, store, f.render.version)
	if err != nil || c == nil {
		if err != nil {
			return nil, err
		}
		if c, err = newChain(f, snap); c == nil || err != nil {
			return nil, err
		}
	}
	switch {
	case f.render.revision != "":
		return nil, fmt.Errorf("--revision names one revision, but %s → %s takes %d hops (%s), each installing its own revision named after its release: drop --revision",
			c.from, f.render.version, c.hops(), strings.Join(c.releases, " → "))
	case f.drill:
		return nil, fmt.Errorf("--drill rehearses one hop's rollback, but %s → %s takes %d hops (%s): drill each hop with --to %s first", c.from, f.render.version, c.hops(), strings.Join(c.releases, " → "), c.releases[1])
	case f.skipped("install") || f.skipped("migrate"):
		return nil, fmt.Errorf("--skip install/migrate cannot apply to a %d-hop upgrade (%s): every hop installs its release and moves the workloads onto it", c.hops(), strings.Join(c.releases, " → "))
	}
	for i := 1; i < c.hops(); i++ {
		if c.mustPrune(i) && f.skipped("prune") {
			return nil, fmt.Errorf("--skip prune: hop %d must remove %s before hop %d installs %s (more than two minors apart, beyond a canary's reach); drop --skip prune",
				i, c.hopFrom(i), i+1, c.releases[i+1])
		}
	}
	return c, nil
}

// newChain plans a new chain from the source revision, nil when one hop
// (or none) is enough or no path applies (the single-hop checks say why).
func newChain(f *upgradeFlags, snap *inventory.Snapshot) (*chain, error) {
	from, err := sourceRevision(snap, f.from, istio.RevisionName(f.render.version))
	if err != nil {
		return nil, nil
	}
	rev := snap.Revision(from)
	if rev == nil || rev.Version == "" {
		return nil, nil
	}
	fromV, err1 := plan.ParseVersion(rev.Version)
	toV, err2 := plan.ParseVersion(f.render.version)
	if err1 != nil || err2 != nil {
		return nil, nil
	}
	path, err := plan.PlanPath(plan.PathRequest{From: []plan.Version{fromV}, To: toV, Strategy: plan.StrategyCanary, Available: plan.Renderable()})
	if err != nil || len(path.Hops) < 2 {
		return nil, nil
	}
	c := &chain{name: f.name, from: from, releases: []string{fromV.String()}}
	if c.name == "" {
		c.name = from + "-to-" + istio.RevisionName(f.render.version)
	}
	for _, h := range path.Hops {
		if h.Kind == plan.HopDataPlane {
			return nil, fmt.Errorf("the path to %s starts by restarting proxies that lag behind their control plane (%s); run `meshroll upgrade --to %s` first", f.render.version, h.Reason, h.To)
		}
		c.releases = append(c.releases, h.To.String())
	}
	return c, nil
}

// runChain runs the chain's hops in order, each a whole `meshroll upgrade`
// of its own (a hop already succeeded is passed over, so a rerun resumes),
// and stops at the first hop that does not succeed.
func runChain(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, f *upgradeFlags, store upgrade.Store, c *chain) error {
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	prefix := dryRunPrefix(f.dryRun)
	fmt.Fprintf(w, "%supgrade path %s: %s (%d hops; each hop is its own MeshUpgrade %s, %s, …, gated and baked after its last wave before the next hop starts)\n",
		prefix, c.name, strings.Join(c.releases, " → "), c.hops(), c.hopName(1), c.hopName(2))
	for i := 1; i <= c.hops(); i++ {
		name, to := c.hopName(i), c.releases[i]
		head := fmt.Sprintf("%shop %d/%d: %s → %s (Istio %s), MeshUpgrade %s", prefix, i, c.hops(), c.hopFrom(i), istio.RevisionName(to), to, name)
		mu, err := store.Get(ctx, name)
		switch {
		case err == nil && mu.Status.Phase == v1alpha1.PhaseSucceeded:
			fmt.Fprintf(w, "%s: already succeeded\n", head)
			continue
		case err == nil && mu.Status.Phase.Final():
			return fmt.Errorf("hop %d/%d (MeshUpgrade %s) ended %s: %s; the path stops here (roll back the hops before it newest first with `meshroll rollback`, or start again)", i, c.hops(), name, mu.Status.Phase, mu.Status.Message)
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("failed to get MeshUpgrade %q: %w", name, err)
		}
		if f.dryRun && i > 1 {
			fmt.Fprintf(w, "%s: checked and planned once hop %d is done (its plan depends on what hop %d leaves)\n", head, i-1, i-1)
			continue
		}
		hf := *f
		hf.hop, hf.from, hf.name = &hopInfo{chain: c, index: i}, c.hopFrom(i), name
		hf.render.version, hf.render.revision = to, ""
		if c.mustPrune(i) && !hf.prune {
			hf.prune = true
			head += fmt.Sprintf("; prunes %s after its last bake (hop %d's %s is more than two minors ahead of it, beyond a canary's reach), so this hop cannot be rolled back once done", c.hopFrom(i), i+1, c.releases[i+1])
		}
		fmt.Fprintln(w, head)
		if err := runUpgrade(cmd, kube, &hf); err != nil {
			fmt.Fprintf(w, "hop %d/%d (MeshUpgrade %s) did not finish; rerun the same command to resume the path\n", i, c.hops(), name)
			return err
		}
	}
	fmt.Fprintf(w, "%supgrade path %s done: %s (%d hops)\n", prefix, c.name, strings.Join(c.releases, " → "), c.hops())
	return nil
}
