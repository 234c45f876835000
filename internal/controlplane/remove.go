package controlplane

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// RemoveOptions name the revision to remove.
type RemoveOptions struct {
	Revision string
	// Namespace is istiod's namespace, where the record lives; "" = istio-system.
	Namespace string
	// DryRun sends every delete as a server-side dry run.
	DryRun bool
	// Timeout bounds the wait for deleted objects to disappear; 0 = 5m.
	Timeout time.Duration
}

// RemoveResult reports what a remove deleted (or would delete, on a dry run).
type RemoveResult struct {
	Revision string
	// Deleted are the recorded objects in delete order; Missing were recorded
	// but already gone (an install killed before creating them).
	Deleted, Missing []ObjectRef
}

// InUseError refuses a remove: something still uses the revision.
type InUseError struct {
	Revision  string
	Referrers []Referrer
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("revision %q is still in use by %d referrer(s); clear each, then run remove again", e.Revision, len(e.Referrers))
}

// NotInstalledError means there is no such revision to remove.
type NotInstalledError struct {
	Revision string
	Reason   string
}

func (e *NotInstalledError) Error() string {
	return fmt.Sprintf("cannot remove revision %q: %s", e.Revision, e.Reason)
}

// Remove deletes a revision that nothing uses any more: it refuses (with an
// *InUseError listing every referrer in snap and every VM of the cluster)
// while pods, namespaces, tags, gateways, VMs or the default webhooks still
// refer to it. Otherwise it deletes every object the revision's record
// lists, in reverse apply order with foreground propagation, waits until
// they are gone, deletes the record, and verifies that no Istio webhook is
// left labelled with the revision or calling its istiod Service (a dangling
// webhook fails every pod creation it matches: istio/istio#35590).
func Remove(ctx context.Context, c Clients, snap *inventory.Snapshot, opts RemoveOptions) (*RemoveResult, error) {
	rev := opts.Revision
	if opts.Namespace == "" {
		opts.Namespace = istio.SystemNamespace
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	rec, found, err := ReadRecord(ctx, c.Kube, opts.Namespace, rev)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notInstalled(snap, opts.Namespace, rev)
	}
	refs := Referrers(snap, rev, rec.Objects)
	if c.Dynamic != nil {
		// VMs are not in the snapshot (their WorkloadEntries are read
		// only here and by the VM commands): a VM on rev keeps it in use.
		vms, err := inventory.ReadVMs(ctx, c.Dynamic)
		if err != nil {
			return nil, err
		}
		refs = append(refs, VMReferrers(vms, rev)...)
	}
	if len(refs) > 0 {
		return nil, &InUseError{Revision: rev, Referrers: refs}
	}
	a := NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun)
	res := &RemoveResult{Revision: rev}
	for i := len(rec.Objects) - 1; i >= 0; i-- {
		ref := rec.Objects[i]
		gone, err := a.delete(ctx, ref)
		if err != nil {
			return res, err
		}
		if gone {
			res.Missing = append(res.Missing, ref)
		} else {
			res.Deleted = append(res.Deleted, ref)
		}
	}
	if opts.DryRun {
		return res, nil
	}
	if err := a.waitGone(ctx, res.Deleted, opts.Timeout); err != nil {
		return res, err
	}
	err = c.Kube.CoreV1().ConfigMaps(opts.Namespace).Delete(ctx, RecordName(rev), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return res, fmt.Errorf("failed to delete record %q: %w", opts.Namespace+"/"+RecordName(rev), err)
	}
	return res, VerifyRemoved(ctx, c.Kube, opts.Namespace, rev)
}

func notInstalled(snap *inventory.Snapshot, ns, rev string) error {
	if snap.Revision(rev) != nil {
		return &NotInstalledError{Revision: rev, Reason: fmt.Sprintf(
			"it was not installed by meshroll (no record %s/%s), so meshroll does not know what it owns; remove it with the tool that installed it", ns, RecordName(rev))}
	}
	names := make([]string, 0, len(snap.Revisions))
	for _, r := range snap.Revisions {
		names = append(names, r.Name)
	}
	installed := "none"
	if len(names) > 0 {
		installed = strings.Join(names, ", ")
	}
	return &NotInstalledError{Revision: rev, Reason: "no such revision is installed (installed: " + installed + ")"}
}

func refObject(ref ObjectRef) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(strings.TrimPrefix(ref.Group+"/"+ref.Version, "/"))
	u.SetKind(ref.Kind)
	u.SetNamespace(ref.Namespace)
	u.SetName(ref.Name)
	return u
}

// delete deletes one object with foreground propagation (its dependents, e.g.
// istiod's ReplicaSets and pods, go first); gone is true when it was absent.
func (a *Applier) delete(ctx context.Context, ref ObjectRef) (gone bool, err error) {
	ri, err := a.resource(refObject(ref))
	if err != nil {
		return false, err
	}
	fg := metav1.DeletePropagationForeground
	opts := metav1.DeleteOptions{PropagationPolicy: &fg}
	if a.dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	err = ri.Delete(ctx, ref.Name, opts)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("failed to delete %s: %w", ref, err)
	}
	return false, nil
}

// waitGone blocks until every ref is deleted (foreground deletion keeps an
// object until the garbage collector has removed its dependents).
func (a *Applier) waitGone(ctx context.Context, refs []ObjectRef, timeout time.Duration) error {
	for _, ref := range refs {
		ri, err := a.resource(refObject(ref))
		if err != nil {
			return err
		}
		err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
			_, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			return fmt.Errorf("failed to wait for %s to be deleted within %s: %w", ref, timeout, err)
		}
	}
	return nil
}

// VerifyRemoved checks that no Istio webhook configuration is labelled with
// rev and that no webhook anywhere calls the revision's istiod Service.
func VerifyRemoved(ctx context.Context, kc kubernetes.Interface, ns, rev string) error {
	svc := ns + "/" + IstiodName(rev)
	var left []string
	mwcs, err := kc.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", "mutatingwebhookconfigurations", err)
	}
	for _, w := range mwcs.Items {
		targets := make([]string, 0, len(w.Webhooks))
		for _, wh := range w.Webhooks {
			targets = append(targets, serviceTarget(wh.ClientConfig.Service))
		}
		if why := dangling(w.Labels, targets, rev, svc); why != "" {
			left = append(left, "MutatingWebhookConfiguration "+w.Name+" "+why)
		}
	}
	vwcs, err := kc.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", "validatingwebhookconfigurations", err)
	}
	for _, w := range vwcs.Items {
		targets := make([]string, 0, len(w.Webhooks))
		for _, wh := range w.Webhooks {
			targets = append(targets, serviceTarget(wh.ClientConfig.Service))
		}
		if why := dangling(w.Labels, targets, rev, svc); why != "" {
			left = append(left, "ValidatingWebhookConfiguration "+w.Name+" "+why)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return errors.New("revision " + rev + " is deleted but webhooks still refer to it (delete them, or pod creation may fail): " + strings.Join(left, "; "))
}

// dangling says why a webhook configuration still refers to rev, "" if not.
func dangling(labels map[string]string, targets []string, rev, svc string) string {
	if labels[istio.LabelRev] == rev {
		return fmt.Sprintf("is labelled %s=%s", istio.LabelRev, rev)
	}
	for _, t := range targets {
		if t == svc {
			return "calls Service " + svc
		}
	}
	return ""
}

// serviceTarget returns the "ns/name" Service a webhook calls, "" for a URL.
func serviceTarget(s *admissionv1.ServiceReference) string {
	if s == nil {
		return ""
	}
	return s.Namespace + "/" + s.Name
}
