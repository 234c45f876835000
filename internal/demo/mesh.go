package demo

import (
	"context"
	"fmt"
	"io"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// MeshOptions describe the whole demo mesh: the Istio release installed
// first, the tag pointing at it, and the size of the seeded workload mix.
type MeshOptions struct {
	Version    string // Istio release, e.g. "1.23.2"
	Tag        string // revision tag pointing at it; "" = "default"
	Namespaces int
	Workloads  int
	// Log receives one line per step; nil discards.
	Log io.Writer
}

// Mesh installs Istio from its real charts (CRDs first), points the tag at
// the new revision and seeds the workload mix, waiting until everything has
// rolled out. Every step is idempotent, so running it again on a seeded
// cluster converges instead of failing. It returns the seeded plan, whose
// Expect() is the answer key for status and check.
func Mesh(ctx context.Context, c controlplane.Clients, opts MeshOptions) (*Plan, error) {
	if opts.Tag == "" {
		opts.Tag = "default"
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	if _, err := istio.LookupRelease(opts.Version); err != nil {
		return nil, err
	}
	rev := istio.RevisionName(opts.Version)
	plan, err := Build(Options{Revision: rev, Tag: opts.Tag, Namespaces: opts.Namespaces, Workloads: opts.Workloads})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "==> installing Istio %s as revision %s from its Helm charts (CRDs first)\n", opts.Version, rev)
	res, err := controlplane.Install(ctx, c, controlplane.InstallOptions{
		Render: istio.RenderOptions{Version: opts.Version, Revision: rev, Components: []istio.Component{istio.Base, istio.Istiod}},
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "==> revision %s is available (%s)\n", rev, controlplane.Summarize(res.Changes))
	fmt.Fprintf(log, "==> pointing revision tag %q at %s\n", opts.Tag, rev)
	if _, err := controlplane.SetTag(ctx, c, controlplane.TagOptions{Tag: opts.Tag, Revision: rev, Version: opts.Version}); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "==> seeding %d workloads in %d namespaces and waiting for them to roll out\n", len(plan.Workloads), len(plan.Namespaces))
	if err := Apply(ctx, c.Kube, plan); err != nil {
		return nil, err
	}
	if err := WaitReady(ctx, c.Kube, plan); err != nil {
		return nil, err
	}
	return plan, nil
}
