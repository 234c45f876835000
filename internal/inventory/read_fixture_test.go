package inventory

import (
	"encoding/json"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	"k8s.io/utils/ptr"
)

const (
	img122 = "docker.io/istio/proxyv2:1.22.1"
	img123 = "docker.io/istio/proxyv2:1.23.2"
)

func istiod(rev, version string, ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-" + rev, Namespace: "istio-system", Labels: map[string]string{"app": "istiod", "istio.io/rev": rev}},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:" + version}}}}},
		Status: appsv1.DeploymentStatus{ReadyReplicas: ready},
	}
}

func service(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
}

func injectorCM(rev, tag string) *corev1.ConfigMap {
	values, _ := json.Marshal(map[string]any{"global": map[string]any{"hub": "docker.io/istio", "tag": tag}})
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector-" + rev, Namespace: "istio-system",
		Labels: map[string]string{"istio.io/rev": rev}}, Data: map[string]string{"values": string(values)}}
}

func mutating(name, rev, tag, svc string) *admissionv1.MutatingWebhookConfiguration {
	labels := map[string]string{"istio.io/rev": rev}
	if tag != "" {
		labels["istio.io/tag"] = tag
	}
	return &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Webhooks: []admissionv1.MutatingWebhook{{Name: "rev.namespace.sidecar-injector.istio.io",
			ClientConfig: admissionv1.WebhookClientConfig{Service: &admissionv1.ServiceReference{
				Namespace: "istio-system", Name: svc, Path: ptr.To("/inject"), Port: ptr.To[int32](443)}}}},
	}
}

// workloadDeployment is a Deployment whose pod template carries labels.
func workloadDeployment(ns, name string, labels map[string]string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(replicas), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}}}
}

func namespaceMeta(name string, labels map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func ownedMeta(apiVersion, kind, ns, name, ownerKind, ownerName string) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if ownerKind != "" {
		m.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: ownerName, Controller: ptr.To(true)}}
	}
	return m
}

// pod builds a pod owned by ownerKind/ownerName ("" = bare); image "" = no sidecar.
func pod(ns, name, ownerKind, ownerName, rev, image string, phase corev1.PodPhase, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: map[string]string{}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		Status: corev1.PodStatus{Phase: phase}}
	if ownerKind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: ownerName, Controller: ptr.To(true)}}
	}
	if image != "" {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: image})
		p.Annotations["istio.io/rev"] = rev
	}
	return p
}

// fixtureClients is a mesh mid-upgrade: 1-22-1 (tag default) and 1-23-2
// (tag prod), namespaces in every labelling style, and one workload of each kind.
func fixtureClients() Clients {
	kube := []runtime.Object{
		istiod("1-22-1", "1.22.1", 1), istiod("1-23-2", "1.23.2", 0),
		service("istio-system", "istiod-1-22-1"), service("istio-system", "istiod-1-23-2"),
		injectorCM("1-22-1", "1.22.1"), injectorCM("1-23-2", "1.23.2"),
		mutating("istio-sidecar-injector-1-22-1", "1-22-1", "", "istiod-1-22-1"),
		mutating("istio-sidecar-injector-1-23-2", "1-23-2", "", "istiod-1-23-2"),
		mutating("istio-revision-tag-default", "1-22-1", "default", "istiod-1-22-1"),
		mutating("istio-revision-tag-prod", "1-23-2", "prod", "istiod-gone"),
		&admissionv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "not-istio"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
			Spec: appsv1.StatefulSetSpec{UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "cache", Namespace: "shop"}},
		workloadDeployment("shop", "web", map[string]string{"istio.io/rev": "1-23-2"}, 3),
		workloadDeployment("prod", "api", nil, 1),
		workloadDeployment("prod", "idle", nil, 0),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "plain"}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "report", Namespace: "prod"}},

		pod("shop", "web-a", "ReplicaSet", "web-1", "1-22-1", img122, corev1.PodRunning, map[string]string{"istio.io/rev": "1-23-2"}),
		pod("shop", "web-b", "ReplicaSet", "web-1", "1-22-1", img122, corev1.PodRunning, map[string]string{"istio.io/rev": "1-23-2"}),
		pod("shop", "web-c", "ReplicaSet", "web-2", "1-22-1", img122, corev1.PodRunning, map[string]string{"istio.io/rev": "1-23-2"}),
		pod("shop", "db-0", "StatefulSet", "db", "1-22-1", img122, corev1.PodRunning, nil),
		pod("shop", "cache-0", "StatefulSet", "cache", "", "", corev1.PodRunning, nil),
		pod("shop", "optout", "", "", "", "", corev1.PodRunning, map[string]string{"sidecar.istio.io/inject": "false"}),
		pod("prod", "api-x", "ReplicaSet", "api-1", "1-23-2", img123, corev1.PodRunning, nil),
		pod("prod", "report-1-x", "Job", "report-1", "1-23-2", img123, corev1.PodSucceeded, nil),
		pod("prod", "once-x", "Job", "once", "1-23-2", img123, corev1.PodFailed, nil),
		pod("plain", "agent-x", "DaemonSet", "agent", "", "", corev1.PodRunning, nil),
		pod("plain", "roll-x", "Rollout", "roll", "", "", corev1.PodRunning, nil),
	}
	meta := []runtime.Object{
		namespaceMeta("shop", map[string]string{"istio-injection": "enabled"}),
		namespaceMeta("prod", map[string]string{"istio.io/rev": "prod"}),
		namespaceMeta("plain", map[string]string{"team": "x"}),
		namespaceMeta("istio-system", nil),
		ownedMeta("apps/v1", "ReplicaSet", "shop", "web-1", "Deployment", "web"),
		ownedMeta("apps/v1", "ReplicaSet", "shop", "web-2", "Deployment", "web"),
		ownedMeta("apps/v1", "ReplicaSet", "prod", "api-1", "Deployment", "api"),
		ownedMeta("batch/v1", "Job", "prod", "report-1", "CronJob", "report"),
		ownedMeta("batch/v1", "Job", "prod", "once", "", ""),
	}
	scheme := metafake.NewTestScheme()
	_ = metav1.AddMetaToScheme(scheme)
	return Clients{Kube: kubefake.NewClientset(kube...), Meta: metafake.NewSimpleMetadataClient(scheme, meta...)}
}
