package demo

import (
	"fmt"

	"github.com/meshroll/meshroll/internal/istio"
)

// MigrationOptions size a mesh built to be migrated: many small Deployments,
// half in namespaces labelled istio.io/rev=<Revision> (moved by namespace
// relabel) and half in unlabelled namespaces whose pod templates carry the
// label (moved per workload). The e2e tests and the migration benchmark use
// it; every pod is created by the real controllers and injected by the
// sandbox injector through Istio's real webhooks.
type MigrationOptions struct {
	// Prefix starts every namespace name (default "mig").
	Prefix string
	// Namespaces spreads the workloads (default 10, at least 2).
	Namespaces int
	// Workloads is how many Deployments to create (default 100).
	Workloads int
	// Replicas per Deployment (default 1).
	Replicas int
	// Revision every pod starts on (required).
	Revision string
}

// MigrationPlan builds the plan; Apply and WaitReady create and await it.
func MigrationPlan(o MigrationOptions) (*Plan, error) {
	if o.Revision == "" {
		return nil, fmt.Errorf("failed to plan migration mesh: a revision is required")
	}
	if o.Prefix == "" {
		o.Prefix = "mig"
	}
	o.Namespaces = max(o.Namespaces, 2)
	if o.Workloads == 0 {
		o.Workloads = 100
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	p := &Plan{Options: Options{Prefix: o.Prefix, Replicas: o.Replicas}}
	for i := range o.Namespaces {
		ns := NamespaceSpec{Name: fmt.Sprintf("%s-%02d", o.Prefix, i), Labels: map[string]string{LabelPartOf: PartOf, LabelSet: o.Prefix}}
		if i%2 == 0 {
			ns.Style = StyleRevision
			ns.Labels[istio.LabelRev] = o.Revision
		} else {
			ns.Style = StylePodLevel
		}
		p.Namespaces = append(p.Namespaces, ns)
	}
	for i := range o.Workloads {
		ns := p.Namespaces[i%o.Namespaces]
		w := WorkloadSpec{Namespace: ns.Name, Name: fmt.Sprintf("app-%04d", i), Kind: KindDeployment, Replicas: o.Replicas, Set: o.Prefix}
		w.PodLabels = map[string]string{"app": w.Name}
		if ns.Style == StylePodLevel {
			w.PodLabels[istio.LabelRev] = o.Revision
		}
		p.Workloads = append(p.Workloads, w)
	}
	return p, nil
}
