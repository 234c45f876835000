package dataplane

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// wantRollout is a verdict expectation: Done and Failed exactly, Message by
// substring.
type wantRollout struct {
	done    bool
	failed  string // substring; "" means not failed
	message string // substring
}

func checkRollout(t *testing.T, got Rollout, want wantRollout) {
	t.Helper()
	if got.Done != want.done {
		t.Errorf("Done = %v, want %v (%+v)", got.Done, want.done, got)
	}
	if (got.Failed != "") != (want.failed != "") || !strings.Contains(got.Failed, want.failed) {
		t.Errorf("Failed = %q, want %q", got.Failed, want.failed)
	}
	if !strings.Contains(got.Message, want.message) {
		t.Errorf("Message = %q, want it to contain %q", got.Message, want.message)
	}
}

func TestDeploymentRollout(t *testing.T) {
	progressing := func(status corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: status, Reason: reason, Message: msg}
	}
	tests := []struct {
		name       string
		replicas   *int32
		generation int64
		status     appsv1.DeploymentStatus
		want       wantRollout
	}{
		{
			name: "controller has not seen the new template", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
			want:   wantRollout{message: "observe the new template"},
		},
		{
			name: "an old deadline is not judged before the new template is observed", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 4, Conditions: []appsv1.DeploymentCondition{
				progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded", "old"),
			}},
			want: wantRollout{message: "observe the new template"},
		},
		{
			name: "progress deadline exceeded fails", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{
					{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue},
					progressing(corev1.ConditionFalse, "ProgressDeadlineExceeded", `ReplicaSet "web-7d9" has timed out progressing.`),
				}},
			want: wantRollout{failed: `ReplicaSet "web-7d9" has timed out progressing.`},
		},
		{
			name: "progressing condition without the deadline reason is not a failure", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 4, UpdatedReplicas: 1, AvailableReplicas: 3,
				Conditions: []appsv1.DeploymentCondition{progressing(corev1.ConditionTrue, "ReplicaSetUpdated", "")}},
			want: wantRollout{message: "1 of 3 new replicas updated"},
		},
		{
			name: "old replicas left", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 5, UpdatedReplicas: 3, AvailableReplicas: 3},
			want:   wantRollout{message: "2 old replicas pending termination"},
		},
		{
			name: "updated replicas not available yet", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1},
			want:   wantRollout{message: "1 of 3 updated replicas available"},
		},
		{
			name: "done", replicas: ptr.To[int32](3), generation: 5,
			status: appsv1.DeploymentStatus{ObservedGeneration: 5, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3},
			want:   wantRollout{done: true, message: "3 replicas updated and available"},
		},
		{
			name: "nil replicas means one", generation: 2,
			status: appsv1.DeploymentStatus{ObservedGeneration: 2},
			want:   wantRollout{message: "0 of 1 new replicas updated"},
		},
		{
			name: "scaled to zero is done", replicas: ptr.To[int32](0), generation: 2,
			status: appsv1.DeploymentStatus{ObservedGeneration: 2},
			want:   wantRollout{done: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: tc.generation},
				Spec:       appsv1.DeploymentSpec{Replicas: tc.replicas},
				Status:     tc.status,
			}
			checkRollout(t, DeploymentRollout(d), tc.want)
		})
	}
}

func TestStatefulSetRollout(t *testing.T) {
	tests := []struct {
		name       string
		replicas   *int32
		generation int64
		status     appsv1.StatefulSetStatus
		want       wantRollout
	}{
		{
			name: "controller has not seen the new template", replicas: ptr.To[int32](3), generation: 3,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 2, UpdatedReplicas: 3, ReadyReplicas: 3, CurrentRevision: "db-1", UpdateRevision: "db-1"},
			want:   wantRollout{message: "observe the new template"},
		},
		{
			name: "pods still on the old revision", replicas: ptr.To[int32](3), generation: 3,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 1, ReadyReplicas: 3, CurrentRevision: "db-1", UpdateRevision: "db-2"},
			want:   wantRollout{message: "1 of 3 pods updated"},
		},
		{
			name: "all updated but the revision has not rolled over", replicas: ptr.To[int32](3), generation: 3,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 3, ReadyReplicas: 3, CurrentRevision: "db-1", UpdateRevision: "db-2"},
			want:   wantRollout{message: "reach revision db-2"},
		},
		{
			name: "updated pods not ready", replicas: ptr.To[int32](3), generation: 3,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 3, UpdatedReplicas: 3, ReadyReplicas: 2, CurrentRevision: "db-2", UpdateRevision: "db-2"},
			want:   wantRollout{message: "2 of 3 pods ready"},
		},
		{
			name: "done", replicas: ptr.To[int32](3), generation: 3,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, CurrentRevision: "db-2", UpdateRevision: "db-2"},
			want:   wantRollout{done: true, message: "3 pods updated and ready"},
		},
		{
			name: "nil replicas means one", generation: 1,
			status: appsv1.StatefulSetStatus{ObservedGeneration: 1, CurrentRevision: "db-1", UpdateRevision: "db-1"},
			want:   wantRollout{message: "0 of 1 pods updated"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Name: "db", Generation: tc.generation},
				Spec:       appsv1.StatefulSetSpec{Replicas: tc.replicas},
				Status:     tc.status,
			}
			checkRollout(t, StatefulSetRollout(s), tc.want)
		})
	}
}

func TestDaemonSetRollout(t *testing.T) {
	tests := []struct {
		name       string
		generation int64
		status     appsv1.DaemonSetStatus
		want       wantRollout
	}{
		{
			name: "controller has not seen the new template", generation: 7,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 6, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4},
			want:   wantRollout{message: "observe the new template"},
		},
		{
			name: "nodes left to update", generation: 7,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 7, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 1, NumberAvailable: 4},
			want:   wantRollout{message: "1 of 4 pods updated"},
		},
		{
			name: "updated pods not available", generation: 7,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 7, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 3, NumberUnavailable: 1},
			want:   wantRollout{message: "3 of 4 updated pods available"},
		},
		{
			name: "done", generation: 7,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 7, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4, NumberReady: 4},
			want:   wantRollout{done: true, message: "4 pods updated and available"},
		},
		{
			name: "no node wants a pod", generation: 7,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 7},
			want:   wantRollout{done: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "node-agent", Generation: tc.generation},
				Status:     tc.status,
			}
			checkRollout(t, DaemonSetRollout(d), tc.want)
		})
	}
}
