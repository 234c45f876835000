package dataplane

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ListLabelled lists, through the API, the workloads whose meshroll.io/upgrade
// label names upgrade: what `meshroll rollback --dry-run` reports without
// starting informers. The label is written in the same patch as every move,
// so this finds moved workloads whatever the MeshUpgrade status recorded.
func ListLabelled(ctx context.Context, kube kubernetes.Interface, upgrade string) ([]Ref, error) {
	opts := metav1.ListOptions{LabelSelector: LabelUpgrade + "=" + upgrade}
	apps := kube.AppsV1()
	var out []Ref
	ds, err := apps.DaemonSets("").List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to list DaemonSets labelled %s: %w", opts.LabelSelector, err)
	}
	for _, o := range ds.Items {
		out = append(out, Ref{Kind: "DaemonSet", Namespace: o.Namespace, Name: o.Name})
	}
	deps, err := apps.Deployments("").List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to list Deployments labelled %s: %w", opts.LabelSelector, err)
	}
	for _, o := range deps.Items {
		out = append(out, Ref{Kind: "Deployment", Namespace: o.Namespace, Name: o.Name})
	}
	sts, err := apps.StatefulSets("").List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("failed to list StatefulSets labelled %s: %w", opts.LabelSelector, err)
	}
	for _, o := range sts.Items {
		out = append(out, Ref{Kind: "StatefulSet", Namespace: o.Namespace, Name: o.Name})
	}
	return out, nil
}

// String renders "Kind namespace/name", the key MeshUpgrade records use.
func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }
