package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Running finds a live controller: a leader-election Lease named
// LeaderElectionID, in any namespace, renewed within its duration. The CLI
// asks it before acting itself, so that where a controller runs the two
// never drive one MeshUpgrade at once; holder names the leader.
func Running(ctx context.Context, kube kubernetes.Interface, now time.Time) (holder string, ok bool, err error) {
	list, err := kube.CoordinationV1().Leases(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", LeaderElectionID).String()})
	if apierrors.IsForbidden(err) {
		// A user who may not list Leases runs the CLI as before; the
		// engine's own per-upgrade lease still keeps two engines apart.
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("failed to look for a meshroll controller's Lease: %w", err)
	}
	for _, l := range list.Items {
		h := ptr.Deref(l.Spec.HolderIdentity, "")
		if h == "" || l.Spec.RenewTime == nil {
			continue
		}
		d := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 15)) * time.Second
		if now.Before(l.Spec.RenewTime.Add(d)) {
			return l.Namespace + "/" + h, true, nil
		}
	}
	return "", false, nil
}
