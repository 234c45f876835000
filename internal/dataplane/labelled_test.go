package dataplane

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

// TestDefect4Labelled pins the other half of issue 9 defect 4: rollback
// finds moved workloads by the upgrade's own label on the cluster, through
// the informer cache (engine) and through the API (rollback --dry-run).
func TestDefect4Labelled(t *testing.T) {
	meta := func(ns, name, upgrade string) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Namespace: ns, Name: name}
		if upgrade != "" {
			m.Labels = map[string]string{LabelUpgrade: upgrade}
		}
		return m
	}
	objs := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: meta("b", "web", "u1")},
		&appsv1.Deployment{ObjectMeta: meta("a", "api", "u1")},
		&appsv1.Deployment{ObjectMeta: meta("a", "other", "u2")},
		&appsv1.Deployment{ObjectMeta: meta("a", "plain", "")},
		&appsv1.StatefulSet{ObjectMeta: meta("a", "db", "u1")},
		&appsv1.DaemonSet{ObjectMeta: meta("a", "agent", "u1")},
	}
	want := []Ref{{"DaemonSet", "a", "agent"}, {"Deployment", "a", "api"}, {"Deployment", "b", "web"}, {"StatefulSet", "a", "db"}}
	kube := fake.NewClientset(objs...)
	w, err := NewWatcher(t.Context(), kube)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, w.Labelled("u1")); diff != "" {
		t.Errorf("Watcher.Labelled (-want +got):\n%s", diff)
	}
	got, err := ListLabelled(t.Context(), kube, "u1")
	if err != nil {
		t.Fatal(err)
	}
	// The API lists by kind, then namespace and name.
	wantAPI := []Ref{{"DaemonSet", "a", "agent"}, {"Deployment", "a", "api"}, {"Deployment", "b", "web"}, {"StatefulSet", "a", "db"}}
	if diff := cmp.Diff(wantAPI, got); diff != "" {
		t.Errorf("ListLabelled (-want +got):\n%s", diff)
	}
	if got := w.Labelled("nobody"); len(got) != 0 {
		t.Errorf("Labelled(nobody) = %v", got)
	}
	if s := want[1].String(); s != "Deployment a/api" {
		t.Errorf("Ref.String() = %q", s)
	}
}
