package sandbox

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Budgets for the cluster-level waits of Up.
const (
	nodesTimeout = 120 * time.Second
	saTimeout    = 60 * time.Second
)

// DefaultNodes is the number of fake nodes when Options.Nodes is 0.
const DefaultNodes = 3

// nodeName names the i-th fake node; names are stable so that Up can add nodes without clashes.
func nodeName(i int) string { return fmt.Sprintf("kwok-node-%d", i) }

// fakeNode returns a Node kwok will manage, with capacity generous enough that scheduling is
// never the bottleneck of a test (250 pods per node, as a large real node).
func fakeNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("512Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokAnnotationKey: kwokAnnotationValue, "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
			},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity.DeepCopy()},
	}
}

// isFake tells kwok-managed nodes from any other.
func isFake(n *corev1.Node) bool { return n.Annotations[kwokAnnotationKey] == kwokAnnotationValue }

// isReady reports the node's Ready condition.
func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// countNodes returns how many fake nodes exist and how many of them are Ready.
func countNodes(ctx context.Context, cs kubernetes.Interface) (total, ready int, err error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("failed to list nodes %q: %w", "kwok", err)
	}
	for i := range list.Items {
		if isFake(&list.Items[i]) {
			total++
			if isReady(&list.Items[i]) {
				ready++
			}
		}
	}
	return total, ready, nil
}

// ensureNodes creates fake nodes until want exist and waits until want of them are Ready.
func ensureNodes(ctx context.Context, cs kubernetes.Interface, want int) (int, error) {
	total, _, err := countNodes(ctx, cs)
	if err != nil {
		return 0, err
	}
	for i := 0; total < want; i++ {
		_, err := cs.CoreV1().Nodes().Create(ctx, fakeNode(nodeName(i)), metav1.CreateOptions{})
		switch {
		case apierrors.IsAlreadyExists(err):
			continue
		case err != nil:
			return 0, fmt.Errorf("failed to create node %q: %w", nodeName(i), err)
		}
		total++
	}
	ctx, cancel := context.WithTimeout(ctx, nodesTimeout)
	defer cancel()
	for {
		_, ready, err := countNodes(ctx, cs)
		if err == nil && ready >= want {
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return ready, fmt.Errorf("failed to wait for %d nodes to become Ready (%d are) within %s: %w (%v)",
				want, ready, nodesTimeout, ctx.Err(), err)
		case <-time.After(pollEvery):
		}
	}
}

// waitDefaultServiceAccount waits for the controller-manager to create the `default`
// ServiceAccount, without which the apiserver rejects every pod in the namespace.
func waitDefaultServiceAccount(ctx context.Context, cs kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, saTimeout)
	defer cancel()
	for {
		_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to wait for service account %q within %s: %w (%v)", "default/default", saTimeout, ctx.Err(), err)
		case <-time.After(pollEvery):
		}
	}
}
