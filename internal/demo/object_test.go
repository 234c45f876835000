package demo

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

func TestWorkloadObjects(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Workloads {
		obj, err := workloadObject(w)
		if err != nil {
			t.Fatalf("%s: %v", w.Ref(), err)
		}
		var labels map[string]string
		switch v := obj.(type) {
		case *appsv1.Deployment:
			labels = v.Spec.Template.Labels
		case *appsv1.StatefulSet:
			labels = v.Spec.Template.Labels
			if w.OnDelete != (v.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType) {
				t.Errorf("%s: update strategy %q, OnDelete %v", w.Ref(), v.Spec.UpdateStrategy.Type, w.OnDelete)
			}
		case *appsv1.DaemonSet:
			labels = v.Spec.Template.Labels
		case *batchv1.Job:
			labels = v.Spec.Template.Labels
		case *batchv1.CronJob:
			labels = v.Spec.JobTemplate.Spec.Template.Labels
			if v.Spec.Suspend == nil || !*v.Spec.Suspend {
				t.Errorf("%s: CronJob not suspended", w.Ref())
			}
		case *corev1.Pod:
			labels = v.Labels
		default:
			t.Fatalf("%s: unexpected object %T", w.Ref(), obj)
		}
		for k, want := range w.PodLabels {
			if labels[k] != want {
				t.Errorf("%s: pod label %s=%q, want %q", w.Ref(), k, labels[k], want)
			}
		}
	}
}

func TestStalePodObject(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	var stale *WorkloadSpec
	for i := range p.Workloads {
		if p.Workloads[i].PreInjectedImage != "" {
			stale = &p.Workloads[i]
		}
	}
	if stale == nil {
		t.Fatal("no pre-injected workload")
	}
	pod, err := podObject(*stale)
	if err != nil {
		t.Fatal(err)
	}
	var proxy *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == istio.ProxyContainer {
			proxy = &pod.Spec.Containers[i]
		}
	}
	if proxy == nil || proxy.Image != "docker.io/istio/proxyv2:1.23.1" {
		t.Errorf("proxy container %+v, want image docker.io/istio/proxyv2:1.23.1", proxy)
	}
	if pod.Labels[istio.LabelRev] != "1-23-2" || pod.Labels[istio.LabelSidecarInject] != "false" {
		t.Errorf("labels %v, want istio.io/rev=1-23-2 and sidecar.istio.io/inject=false", pod.Labels)
	}
	var status struct{ Revision string }
	if err := json.Unmarshal([]byte(pod.Annotations[istio.AnnotationSidecarStatus]), &status); err != nil || status.Revision != "1-23-2" {
		t.Errorf("status annotation %q (%v), want revision 1-23-2", pod.Annotations[istio.AnnotationSidecarStatus], err)
	}
}

func TestScalePodLooksInjected(t *testing.T) {
	opts := ScaleOptions{Revision: "1-23-2"}.withDefaults()
	w := &scaleWorkload{namespace: "scale-000", name: "app-00000", hash: "abc", rsUID: "uid-1"}
	status, err := sidecarStatus(opts.Revision)
	if err != nil {
		t.Fatal(err)
	}
	pod := scalePod(opts, w, 3, "node-2", status)
	if pod.Spec.NodeName != "node-2" || pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != "abc" || pod.Labels[istio.LabelRev] != "1-23-2" {
		t.Errorf("pod %s: node %q labels %v", pod.Name, pod.Spec.NodeName, pod.Labels)
	}
	if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != "uid-1" || pod.OwnerReferences[0].Name != "app-00000-abc" {
		t.Errorf("owner references %+v, want the ReplicaSet app-00000-abc", pod.OwnerReferences)
	}
	if got := pod.Spec.Containers[len(pod.Spec.Containers)-1]; got.Name != istio.ProxyContainer || got.Image != "docker.io/istio/proxyv2:1.23.2" {
		t.Errorf("last container %s %s, want istio-proxy docker.io/istio/proxyv2:1.23.2", got.Name, got.Image)
	}
	other := scalePod(opts, w, 4, "node-2", status)
	if other.Name == pod.Name {
		t.Errorf("pods 3 and 4 share the name %s", pod.Name)
	}
}

func TestForEach(t *testing.T) {
	seen := make([]int, 100)
	err := forEach(t.Context(), 100, 8, func(_ context.Context, i int) error { seen[i]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("item %d ran %d times", i, n)
		}
	}
	boom := errors.New("boom")
	err = forEach(t.Context(), 1000, 4, func(_ context.Context, i int) error {
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want boom", err)
	}
}
