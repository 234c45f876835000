package demo

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// MigrationOptions size a mesh built to be migrated: many small Deployments,
// half in namespaces labelled istio.io/rev=<Revision> (moved by namespace
// relabel) and half in unlabelled namespaces whose pod templates carry the
// label (moved per workload). The e2e tests and the migration benchmark use
// it; every pod is created by the real controllers and injected by the
// real istiod of the revision through Istio's real webhooks.
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

// NamespaceNames lists the plan's namespace names in plan order.
func (p *Plan) NamespaceNames() []string {
	out := make([]string, 0, len(p.Namespaces))
	for _, ns := range p.Namespaces {
		out = append(out, ns.Name)
	}
	return out
}

// SettledProxyImages waits (up to timeout) until the namespaces hold exactly
// want live pods, so pods of a finished rollout that are still terminating are
// not counted, and counts them by istio-proxy image ("(none)" without a
// sidecar). On timeout it returns the last count; the caller judges it.
func SettledProxyImages(ctx context.Context, kube kubernetes.Interface, nss []string, want int, timeout time.Duration) (map[string]int, error) {
	deadline := time.Now().Add(timeout)
	for {
		got, total := map[string]int{}, 0
		for _, ns := range nss {
			pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("failed to list pods in %q: %w", ns, err)
			}
			for i := range pods.Items {
				p := &pods.Items[i]
				if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
					continue
				}
				img := dataplane.ProxyImage(p)
				if img == "" {
					img = "(none)"
				}
				got[img]++
				total++
			}
		}
		if total == want || time.Now().After(deadline) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, context.Cause(ctx)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
