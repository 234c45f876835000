package sandbox

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// kwok (v0.7.0, PodController.ipPool) creates its address pool for a CIDR
// on first use with a load followed by a store, not a load-or-store: when
// its workers give the first two pods after a start their addresses at
// once, each makes a fresh pool and both pods get the block's first
// address (seen in CI: TestPodAddressesUniqueAcrossRestart, pods before-0
// and before-1 both on 10.244.32.0). Up gives one pod an address before
// anything else runs, so the pool exists before pods arrive in bulk.

// primePodName is the one pod primeKwokPool creates and deletes again.
const primePodName = "meshroll-sandbox-prime-kwok"

// primeTimeout bounds the wait for the priming pod's address: a sandbox
// with a pod start delay gives it one only when the pod turns ready.
const primeTimeout = 60 * time.Second

// primeKwokPool creates a pod on node, waits until kwok gives it an
// address, then deletes it. A pod that gets no address in time is reported
// on out and the sandbox comes up anyway: the race it guards against is
// rare, a sandbox that does not start is not.
func primeKwokPool(ctx context.Context, out io.Writer, cs kubernetes.Interface, node string) error {
	pods := cs.CoreV1().Pods(metav1.NamespaceDefault)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: primePodName, Labels: map[string]string{"app.kubernetes.io/managed-by": "meshroll-sandbox"}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []corev1.Container{{Name: "prime", Image: "registry.invalid/prime:0"}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create pod %s to prime kwok's address pool: %w", primePodName, err)
	}
	err := wait.PollUntilContextTimeout(ctx, pollEvery, primeTimeout, true, func(ctx context.Context) (bool, error) {
		p, err := pods.Get(ctx, primePodName, metav1.GetOptions{})
		return err == nil && p.Status.PodIP != "", nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(out, "NOTE pod %s got no address from kwok within %s; pods started together may share an address\n", primePodName, primeTimeout)
	}
	if err := pods.Delete(ctx, primePodName, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete pod %s: %w", primePodName, err)
	}
	return wait.PollUntilContextCancel(ctx, pollEvery, true, func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, primePodName, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
}
