package dataplane

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Rollout is a workload controller's progress, judged the way `kubectl
// rollout status` judges it.
type Rollout struct {
	// Done is true when every replica runs the current template and is
	// available, and no old replica is left.
	Done bool
	// Failed is set when the controller gave up (Deployment progress
	// deadline exceeded).
	Failed string
	// FailedAt is when the controller last confirmed the failure; a
	// failure from before the caller's own write is about the previous
	// template, not this one.
	FailedAt time.Time
	// Message says where the rollout stands.
	Message string
}

// DeploymentRollout judges a Deployment.
func DeploymentRollout(d *appsv1.Deployment) Rollout {
	if d.Generation > d.Status.ObservedGeneration {
		return Rollout{Message: "waiting for the deployment controller to observe the new template"}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	// Judge completeness before the deadline condition: after a rollback to
	// the previous ReplicaSet the controller may report the replicas ready a
	// moment before it clears the old ProgressDeadlineExceeded condition.
	complete := s.UpdatedReplicas >= want && s.Replicas <= s.UpdatedReplicas && s.AvailableReplicas >= s.UpdatedReplicas
	for _, c := range d.Status.Conditions {
		if !complete && c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return Rollout{Failed: fmt.Sprintf("progress deadline exceeded: %s", c.Message), FailedAt: c.LastUpdateTime.Time}
		}
	}
	switch {
	case s.UpdatedReplicas < want:
		return Rollout{Message: fmt.Sprintf("%d of %d new replicas updated", s.UpdatedReplicas, want)}
	case s.Replicas > s.UpdatedReplicas:
		return Rollout{Message: fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)}
	case s.AvailableReplicas < s.UpdatedReplicas:
		return Rollout{Message: fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)}
	}
	return Rollout{Done: true, Message: fmt.Sprintf("%d replicas updated and available", want)}
}

// StatefulSetRollout judges a StatefulSet with the RollingUpdate strategy.
func StatefulSetRollout(s *appsv1.StatefulSet) Rollout {
	if s.Generation > s.Status.ObservedGeneration {
		return Rollout{Message: "waiting for the statefulset controller to observe the new template"}
	}
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	switch {
	case st.UpdatedReplicas < want:
		return Rollout{Message: fmt.Sprintf("%d of %d pods updated", st.UpdatedReplicas, want)}
	case st.UpdateRevision != st.CurrentRevision:
		return Rollout{Message: "waiting for the rolling update to reach revision " + st.UpdateRevision}
	case st.ReadyReplicas < want:
		return Rollout{Message: fmt.Sprintf("%d of %d pods ready", st.ReadyReplicas, want)}
	}
	return Rollout{Done: true, Message: fmt.Sprintf("%d pods updated and ready", want)}
}

// DaemonSetRollout judges a DaemonSet.
func DaemonSetRollout(d *appsv1.DaemonSet) Rollout {
	if d.Generation > d.Status.ObservedGeneration {
		return Rollout{Message: "waiting for the daemonset controller to observe the new template"}
	}
	st := d.Status
	switch {
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return Rollout{Message: fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)}
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return Rollout{Message: fmt.Sprintf("%d of %d updated pods available", st.NumberAvailable, st.DesiredNumberScheduled)}
	}
	return Rollout{Done: true, Message: fmt.Sprintf("%d pods updated and available", st.DesiredNumberScheduled)}
}
