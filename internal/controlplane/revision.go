package controlplane

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// InstalledRevision is a revision whose istiod Deployment exists.
type InstalledRevision struct {
	Name    string
	Version plan.Version
}

// ListRevisions finds installed revisions from istiod Deployments (label
// app=istiod): the revision from their istio.io/rev label, the version from
// the discovery image's tag. It is the cheap read for commands that need only
// the control plane, not the full inventory.
func ListRevisions(ctx context.Context, kc kubernetes.Interface, ns string) ([]InstalledRevision, error) {
	list, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return nil, fmt.Errorf("failed to list istiod deployments in %q: %w", ns, err)
	}
	var out []InstalledRevision
	for _, d := range list.Items {
		rev := d.Labels[istio.LabelRev]
		if rev == "" {
			rev = istio.DefaultRevision
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "discovery" {
				continue
			}
			v, err := plan.ParseVersion(istio.ImageVersion(c.Image))
			if err != nil {
				return nil, fmt.Errorf("failed to read the version of deployment %s/%s from image %q: %w", ns, d.Name, c.Image, err)
			}
			out = append(out, InstalledRevision{Name: rev, Version: v})
		}
	}
	return out, nil
}
