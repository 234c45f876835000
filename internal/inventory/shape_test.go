package inventory

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/ptr"
)

// shapeClients is one revision (1-23-2, injecting namespace "mesh" by
// istio.io/rev) whose webhook appeared at webhookAt, plus the given pods and
// namespaces; the shapes of real clusters are built from it one by one.
func shapeClients(webhookAt time.Time, meshConfig string, pods ...*corev1.Pod) Clients {
	hook := mutating("istio-sidecar-injector-1-23-2", "1-23-2", "", "istiod-1-23-2")
	hook.CreationTimestamp = metav1.NewTime(webhookAt)
	kube := []runtime.Object{istiod("1-23-2", "1.23.2", 1), service("istio-system", "istiod-1-23-2"), injectorCM("1-23-2", "1.23.2"), hook}
	if meshConfig != "" {
		kube = append(kube, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-1-23-2", Namespace: "istio-system"},
			Data: map[string]string{"mesh": meshConfig}})
	}
	for _, p := range pods {
		kube = append(kube, p)
	}
	scheme := metafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(scheme)
	meta := []runtime.Object{
		namespaceMeta("mesh", map[string]string{"istio.io/rev": "1-23-2"}),
		namespaceMeta("other", map[string]string{"istio.io/rev": "1-22-1"}),
		namespaceMeta("bare", nil),
		namespaceMeta("istio-system", nil),
	}
	return Clients{Kube: kubefake.NewClientset(kube...), Meta: metafake.NewSimpleMetadataClient(scheme, meta...)}
}

// injected is a bare pod as istiod leaves it: the istio-proxy container with
// image and env, and whichever evidence annotations the test keeps.
func injected(ns, name, image string, annotations map[string]string, env ...corev1.EnvVar) *corev1.Pod {
	p := pod(ns, name, "", "", "", "", corev1.PodRunning, nil)
	p.Annotations = annotations
	p.CreationTimestamp = metav1.NewTime(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: image, Env: env})
	return p
}

// TestSidecarAttributionFollowsEvidence pins #14 defect 6: a sidecar is never
// credited to "default" by guess; the evidence used is named, and without
// any the answer is "(unknown)".
func TestSidecarAttributionFollowsEvidence(t *testing.T) {
	before := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) // webhook older than the pods
	after := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC) // webhook newer than the pods
	tests := []struct {
		name         string
		webhookAt    time.Time
		pod          *corev1.Pod
		wantRev, why string
	}{
		{"annotation istio.io/rev", before, injected("mesh", "a", img123, map[string]string{"istio.io/rev": "1-23-2"}), "1-23-2", EvidenceAnnotation},
		{"sidecar status revision", before, injected("mesh", "a", img123, map[string]string{"sidecar.istio.io/status": `{"revision":"canary"}`}), "canary", EvidenceStatus},
		{"discovery address names istiod-<rev>", before, injected("bare", "a", img123, nil,
			corev1.EnvVar{Name: "PROXY_CONFIG", Value: `{"discoveryAddress":"istiod-1-22-1.istio-system.svc:15012"}`}), "1-22-1", EvidenceDiscovery},
		{"CA_ADDR names the default istiod", before, injected("bare", "a", img123, nil,
			corev1.EnvVar{Name: "CA_ADDR", Value: "istiod.istio-system.svc:15012"}), "default", EvidenceDiscovery},
		{"selection by an injector older than the pod, same version", before, injected("mesh", "a", img123, nil), "1-23-2", EvidenceSelection},
		{"selection by an injector newer than the pod", after, injected("mesh", "a", img123, nil), RevisionUnknown, EvidenceNone},
		{"selection by an injector of another version", before, injected("mesh", "a", img122, nil), RevisionUnknown, EvidenceNone},
		{"namespace selects a revision that is not installed", before, injected("other", "a", img122, nil), RevisionUnknown, EvidenceNone},
		{"nothing injects the namespace", before, injected("bare", "a", img123, nil), RevisionUnknown, EvidenceNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Read(context.Background(), shapeClients(tt.webhookAt, "", tt.pod), takenAt)
			if err != nil {
				t.Fatal(err)
			}
			g := onlyGroup(t, s, tt.pod.Namespace, tt.pod.Name)
			if g.Revision != tt.wantRev || g.Attribution != tt.why {
				t.Errorf("revision %q by %q, want %q by %q", g.Revision, g.Attribution, tt.wantRev, tt.why)
			}
		})
	}
}

// TestWantImageFollowsTheInjector pins #14 defects 2, 3 and 4: the image a
// pod should run is what its injector would write into that very pod.
func TestWantImageFollowsTheInjector(t *testing.T) {
	rev := map[string]string{"istio.io/rev": "1-23-2"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"istio.io/rev": "1-23-2"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name, mesh         string
		pod                *corev1.Pod
		wantRev, wantImage string
	}{
		{"plain", "", injected("mesh", "a", img123, rev), "1-23-2", img123},
		{"pinned by sidecar.istio.io/proxyImage", "",
			injected("mesh", "a", "my.registry/istio/proxyv2:1.23.2-patched", with(map[string]string{"sidecar.istio.io/proxyImage": "my.registry/istio/proxyv2:1.23.2-patched"})),
			"1-23-2", "my.registry/istio/proxyv2:1.23.2-patched"},
		{"proxyImage annotation without a registry is ignored, as by the template", "",
			injected("mesh", "a", img123, with(map[string]string{"sidecar.istio.io/proxyImage": "proxyv2"})), "1-23-2", img123},
		{"distroless by proxyImageType annotation", "",
			injected("mesh", "a", img123+"-distroless", with(map[string]string{"sidecar.istio.io/proxyImageType": "distroless"})), "1-23-2", img123 + "-distroless"},
		{"distroless by proxy.istio.io/config", "",
			injected("mesh", "a", img123+"-distroless", with(map[string]string{"proxy.istio.io/config": "image:\n  imageType: distroless\n"})), "1-23-2", img123 + "-distroless"},
		{"distroless by mesh config", "defaultConfig:\n  image:\n    imageType: distroless\n",
			injected("mesh", "a", img123+"-distroless", rev), "1-23-2", img123 + "-distroless"},
		{"annotation default beats mesh distroless", "defaultConfig:\n  image:\n    imageType: distroless\n",
			injected("mesh", "a", img123, with(map[string]string{"sidecar.istio.io/proxyImageType": "default"})), "1-23-2", img123},
		{"image auto was never injected", "", injected("mesh", "a", "auto", nil), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Read(context.Background(), shapeClients(time.Time{}, tt.mesh, tt.pod), takenAt)
			if err != nil {
				t.Fatal(err)
			}
			g := onlyGroup(t, s, tt.pod.Namespace, tt.pod.Name)
			if g.Revision != tt.wantRev || g.WantImage != tt.wantImage {
				t.Errorf("revision %q wants %q (%s), want %q wanting %q", g.Revision, g.WantImage, g.WantImageReason, tt.wantRev, tt.wantImage)
			}
		})
	}
}

func onlyGroup(t *testing.T, s *Snapshot, ns, name string) ProxyGroup {
	t.Helper()
	for _, w := range s.Workloads {
		if w.Namespace == ns && w.Name == name {
			if len(w.Proxies) != 1 {
				t.Fatalf("workload %s/%s has %d proxy groups, want 1: %+v", ns, name, len(w.Proxies), w.Proxies)
			}
			return w.Proxies[0]
		}
	}
	t.Fatalf("no workload %s/%s in %+v", ns, name, s.Workloads)
	return ProxyGroup{}
}

// TestRestartabilityFromTheTemplate pins part of #9 defect 5: workloads a
// restart cannot move are known before any write.
func TestRestartabilityFromTheTemplate(t *testing.T) {
	onDelete := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "mesh"},
		Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}
	paused := workloadDeployment("mesh", "paused", nil, 1)
	paused.Spec.Paused = true
	partitioned := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "mesh"},
		Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](2)}}}}
	c := shapeClients(time.Time{}, "")
	for _, o := range []runtime.Object{onDelete, paused, partitioned, workloadDeployment("mesh", "fine", nil, 1)} {
		if err := c.Kube.(*kubefake.Clientset).Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Read(context.Background(), c, takenAt)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"agent": "OnDelete", "paused": "paused", "db": "partition 2", "fine": ""}
	for _, w := range s.Workloads {
		why, ok := want[w.Name]
		if !ok || w.Namespace != "mesh" {
			continue
		}
		if w.Restartable != (why == "") || (why != "" && !strings.Contains(w.RestartReason, why)) {
			t.Errorf("%s %s: restartable %t (%s), want reason containing %q", w.Kind, w.Name, w.Restartable, w.RestartReason, why)
		}
		delete(want, w.Name)
	}
	if len(want) != 0 {
		t.Errorf("workloads not in the snapshot: %v", want)
	}
}

// TestTagInstallerLabels pins the follow-up of #16 defect 1: a tag webhook
// that still carries installer labels is visible in the snapshot.
func TestTagInstallerLabels(t *testing.T) {
	old := mutating("istio-revision-tag-prod", "1-23-2", "prod", "istiod-1-23-2")
	old.Labels["operator.istio.io/component"] = "Pilot"
	old.Labels["install.operator.istio.io/owning-resource"] = "unknown"
	clean := mutating("istio-revision-tag-canary", "1-23-2", "canary", "istiod-1-23-2")
	c := shapeClients(time.Time{}, "")
	for _, o := range []runtime.Object{old, clean} {
		if err := c.Kube.(*kubefake.Clientset).Tracker().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Read(context.Background(), c, takenAt)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tag := range s.Tags {
		got[tag.Name] = strings.Join(tag.InstallerLabels, ",")
	}
	if got["prod"] != "install.operator.istio.io/owning-resource,operator.istio.io/component" || got["canary"] != "" {
		t.Errorf("installer labels = %v", got)
	}
}
