package controlplane

import (
	"context"
	"fmt"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// RemoveTagOptions name the tag to remove.
type RemoveTagOptions struct {
	Tag string
	// Namespace is the control plane's namespace, where a tag's Service
	// lives; "" means istio-system.
	Namespace string
	// Force removes the tag even though namespaces still use it: their next
	// pods are not injected.
	Force  bool
	DryRun bool
	// Snapshot is the cluster's inventory, read just before; required.
	Snapshot *inventory.Snapshot
}

// RemoveTagResult reports what RemoveTag judged and changed.
type RemoveTagResult struct {
	Tag      string `json:"tag"`
	Revision string `json:"revision"`
	// Namespaces are the namespaces that used the tag.
	Namespaces []string `json:"namespaces,omitempty"`
	Changes    []Change `json:"changes"`
}

// PlanRemoveTag judges a removal against snap: the tag must exist and, unless
// force, no namespace may still resolve its injection through it.
func PlanRemoveTag(snap *inventory.Snapshot, tag string, force bool) (*RemoveTagResult, string, error) {
	if err := istio.ValidateRevision(tag); err != nil {
		return nil, "", fmt.Errorf("invalid tag name %q: %w", tag, err)
	}
	var found *inventory.Tag
	names := make([]string, 0, len(snap.Tags))
	for i := range snap.Tags {
		names = append(names, snap.Tags[i].Name)
		if snap.Tags[i].Name == tag {
			found = &snap.Tags[i]
		}
	}
	if found == nil {
		return nil, "", fmt.Errorf("failed to remove tag %q: no such tag (tags: %s)", tag, orNone(names))
	}
	res := &RemoveTagResult{Tag: tag, Revision: found.Revision}
	res.Namespaces, _ = TagUsers(snap, tag, plan.Version{})
	if len(res.Namespaces) > 0 && !force {
		return nil, "", fmt.Errorf("failed to remove tag %q: namespaces still use it (%s); relabel them first or pass --force", tag, strings.Join(res.Namespaces, ", "))
	}
	return res, found.Webhook, nil
}

// RemoveTag deletes the tag's webhook and its Service (if any, as istioctl
// 1.28+ makes) after PlanRemoveTag allows it.
func RemoveTag(ctx context.Context, c Clients, opts RemoveTagOptions) (*RemoveTagResult, error) {
	if opts.Snapshot == nil {
		return nil, fmt.Errorf("failed to remove tag %q: no inventory snapshot given", opts.Tag)
	}
	res, webhook, err := PlanRemoveTag(opts.Snapshot, opts.Tag, opts.Force)
	if err != nil {
		return nil, err
	}
	del := metav1.DeleteOptions{}
	if opts.DryRun {
		del.DryRun = []string{metav1.DryRunAll}
	}
	if err := c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, webhook, del); err != nil {
		return res, fmt.Errorf("failed to delete webhook %q: %w", webhook, err)
	}
	res.Changes = []Change{{Kind: "MutatingWebhookConfiguration", Name: webhook, Action: Deleted}}
	ns := opts.Namespace
	if ns == "" {
		ns = istio.SystemNamespace
	}
	gone, err := pruneTagServices(ctx, c.Kube, ns, opts.Tag, "", opts.DryRun)
	res.Changes = append(res.Changes, gone...)
	return res, err
}

// pruneTagServices deletes the tag's Services except keep: a tag removed, or
// moved to a release whose chart has no tag Service, must not leave one that
// still selects the old revision's istiod.
func pruneTagServices(ctx context.Context, kc kubernetes.Interface, ns, tag, keep string, dryRun bool) ([]Change, error) {
	svcs, err := tagServices(ctx, kc, ns, tag)
	if err != nil {
		return nil, err
	}
	del := metav1.DeleteOptions{}
	if dryRun {
		del.DryRun = []string{metav1.DryRunAll}
	}
	var out []Change
	for _, s := range svcs {
		if s.Name == keep {
			continue
		}
		if err := kc.CoreV1().Services(ns).Delete(ctx, s.Name, del); err != nil && !apierrors.IsNotFound(err) {
			return out, fmt.Errorf("failed to delete service %q: %w", ns+"/"+s.Name, err)
		}
		out = append(out, Change{Kind: "Service", Namespace: ns, Name: s.Name, Action: Deleted})
	}
	return out, nil
}

// controlPlaneSnapshot reads only revisions and tags: enough to judge a new
// tag when the caller has no inventory.
func controlPlaneSnapshot(ctx context.Context, kc kubernetes.Interface, ns string) (*inventory.Snapshot, error) {
	revs, err := ListRevisions(ctx, kc, ns)
	if err != nil {
		return nil, err
	}
	snap := &inventory.Snapshot{}
	for _, r := range revs {
		snap.Revisions = append(snap.Revisions, inventory.Revision{Name: r.Name, Version: r.Version.String()})
	}
	sort.Slice(snap.Revisions, func(i, j int) bool { return snap.Revisions[i].Name < snap.Revisions[j].Name })
	list, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: istio.LabelTag})
	if err != nil {
		return nil, fmt.Errorf("failed to list tag webhooks: %w", err)
	}
	for _, w := range list.Items {
		snap.Tags = append(snap.Tags, inventory.Tag{Name: w.Labels[istio.LabelTag], Revision: w.Labels[istio.LabelRev], Webhook: w.Name})
	}
	return snap, nil
}
