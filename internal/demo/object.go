package demo

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// PauseImage runs every demo container: nothing really runs on kwok nodes, but the image must be plausible.
const PauseImage = "registry.k8s.io/pause:3.10"

// namespaceObject is ns as a Namespace.
func namespaceObject(ns NamespaceSpec) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns.Name, Labels: copyMap(ns.Labels)}}
}

// meta is the ObjectMeta of a workload object.
func meta(w WorkloadSpec) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: w.Name, Namespace: w.Namespace, Labels: map[string]string{"app": w.Name, LabelPartOf: PartOf, LabelSet: w.Set}}
}

// podSpec is the small spec every demo pod runs.
func podSpec(restart corev1.RestartPolicy) corev1.PodSpec {
	grace := int64(0)
	return corev1.PodSpec{
		RestartPolicy:                 restart,
		TerminationGracePeriodSeconds: &grace,
		Containers:                    []corev1.Container{appContainer()},
		// kwok nodes may be tainted so that nothing real lands on them; tolerate it.
		Tolerations: []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
	}
}

// appContainer is the application container of every demo pod.
func appContainer() corev1.Container {
	return corev1.Container{
		Name:  "app",
		Image: PauseImage,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("1m"),
			corev1.ResourceMemory: resource.MustParse("4Mi"),
		}},
	}
}

// template is w's pod template.
func template(w WorkloadSpec, restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	labels := copyMap(w.PodLabels)
	labels[LabelPartOf] = PartOf
	labels[LabelSet] = w.Set
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(restart)}
}

// selector selects w's pods.
func selector(w WorkloadSpec) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.Name}}
}

// workloadObject is w as the object of its kind.
func workloadObject(w WorkloadSpec) (any, error) {
	switch w.Kind {
	case KindDeployment:
		n := int32(w.Replicas)
		return &appsv1.Deployment{ObjectMeta: meta(w), Spec: appsv1.DeploymentSpec{
			Replicas: &n, Selector: selector(w), Template: template(w, corev1.RestartPolicyAlways)}}, nil
	case KindStatefulSet:
		n := int32(w.Replicas)
		s := &appsv1.StatefulSet{ObjectMeta: meta(w), Spec: appsv1.StatefulSetSpec{
			Replicas: &n, Selector: selector(w), ServiceName: w.Name, Template: template(w, corev1.RestartPolicyAlways),
			PodManagementPolicy: appsv1.ParallelPodManagement}}
		if w.OnDelete {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}
		return s, nil
	case KindDaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: meta(w), Spec: appsv1.DaemonSetSpec{
			Selector: selector(w), Template: template(w, corev1.RestartPolicyAlways)}}, nil
	case KindJob:
		n := int32(w.Replicas)
		return &batchv1.Job{ObjectMeta: meta(w), Spec: batchv1.JobSpec{
			Completions: &n, Parallelism: &n, Template: template(w, corev1.RestartPolicyNever)}}, nil
	case KindCronJob:
		suspend := true
		return &batchv1.CronJob{ObjectMeta: meta(w), Spec: batchv1.CronJobSpec{
			// Suspended, and on a schedule far from any test run, so that it never fires by surprise.
			Schedule: "17 3 29 2 *", Suspend: &suspend,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(w, corev1.RestartPolicyNever)}}}}, nil
	case KindPod:
		return podObject(w)
	}
	return nil, fmt.Errorf("failed to render workload %q: unknown kind %q", w.Ref(), w.Kind)
}

// podObject is a bare Pod; a pre-injected one carries what Istio's injector would have added.
func podObject(w WorkloadSpec) (*corev1.Pod, error) {
	t := template(w, corev1.RestartPolicyAlways)
	pod := &corev1.Pod{ObjectMeta: meta(w), Spec: t.Spec}
	pod.Labels = t.Labels
	if w.PreInjectedImage == "" {
		return pod, nil
	}
	status, err := sidecarStatus(w.PodLabels[istio.LabelRev])
	if err != nil {
		return nil, fmt.Errorf("failed to render pod %q: %w", w.Ref(), err)
	}
	injectAs(&pod.ObjectMeta, &pod.Spec, w.PodLabels[istio.LabelRev], w.PreInjectedImage, status)
	return pod, nil
}

// sidecarStatus is the sidecar.istio.io/status annotation the injector of revision writes.
func sidecarStatus(revision string) (string, error) {
	b, err := json.Marshal(map[string]any{
		"initContainers":   []string{"istio-init"},
		"containers":       []string{istio.ProxyContainer},
		"volumes":          []string{"workload-socket", "credential-socket", "workload-certs", "istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"},
		"imagePullSecrets": nil,
		"revision":         revision,
	})
	if err != nil {
		return "", fmt.Errorf("failed to encode sidecar status for revision %q: %w", revision, err)
	}
	return string(b), nil
}

// injectAs adds to a pod what revision's injector would: the proxy and init containers, the
// status annotation and the revision labels. It leaves out the volumes, which nothing here reads.
func injectAs(m *metav1.ObjectMeta, spec *corev1.PodSpec, revision, image, status string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[istio.AnnotationSidecarStatus] = status
	m.Annotations[istio.LabelRev] = revision
	m.Labels[istio.LabelRev] = revision
	m.Labels["security.istio.io/tlsMode"] = "istio"
	m.Labels["service.istio.io/canonical-name"] = m.Labels["app"]
	m.Labels["service.istio.io/canonical-revision"] = "latest"
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("1m"), corev1.ResourceMemory: resource.MustParse("4Mi")}}
	spec.InitContainers = append(spec.InitContainers, corev1.Container{Name: "istio-init", Image: image,
		Args: []string{"istio-iptables"}, Resources: small})
	spec.Containers = append(spec.Containers, corev1.Container{Name: istio.ProxyContainer, Image: image,
		Args: []string{"proxy", "sidecar"}, Resources: small})
}

// serviceObject is the headless Service in front of w: headless so that hundreds of them do not
// exhaust a small service CIDR.
func serviceObject(w WorkloadSpec) *corev1.Service {
	return &corev1.Service{ObjectMeta: meta(w), Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone,
		Selector:  map[string]string{"app": w.Name},
		Ports:     []corev1.ServicePort{{Name: "http", Port: 8080}},
	}}
}

// copyMap returns a copy of m that is never nil.
func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
