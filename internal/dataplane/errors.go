package dataplane

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ErrGone is wrapped by every error about a workload that no longer exists.
// Its owner deleted it during the run: that says nothing about the mesh, so
// the engine records it as skipped instead of failing the wave, and a
// restore of it has nothing to put back.
var ErrGone = errors.New("workload no longer exists")

// NotRestartableError says why a restart cannot move a workload safely
// right now (paused, partitioned, OnDelete). The planner leaves such
// workloads out before any write; Move checks again at the moment of the
// write because an owner can pause or partition a workload after planning,
// and a patch would then roll out nothing (or only part of it) until the
// rollout deadline failed the wave.
type NotRestartableError struct {
	Kind, Namespace, Name string
	Reason                string
}

func (e *NotRestartableError) Error() string {
	return fmt.Sprintf("%s %s/%s cannot be moved by a restart: %s", e.Kind, e.Namespace, e.Name, e.Reason)
}

// RestartBlocker returns why a rollout restart would not replace every pod
// of obj now, or "" when it would. It reads the same fields the inventory
// reads at planning time.
func RestartBlocker(obj runtime.Object) string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return "Deployment is paused: a restart rolls out nothing until it is resumed (kubectl rollout resume)"
		}
	case *appsv1.StatefulSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return "StatefulSet uses updateStrategy OnDelete: pods are replaced only when deleted"
		}
		if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			return fmt.Sprintf("StatefulSet has rollingUpdate.partition %d: pods with a lower ordinal are not replaced by a restart", *ru.Partition)
		}
	case *appsv1.DaemonSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return "DaemonSet uses updateStrategy OnDelete: pods are replaced only when deleted"
		}
	}
	return ""
}

func gone(kind, namespace, name string) error {
	return fmt.Errorf("%s %s/%s: %w", kind, namespace, name, ErrGone)
}
