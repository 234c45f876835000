package webhook

import (
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Fixture revisions: the workload runs on oldRev, the upgrade assigns newRev.
const (
	oldRev      = "1-23-2"
	newRev      = "1-24-2"
	fixtureNS   = "shop"
	fixtureName = "checkout"
	fixtureUID  = types.UID("0b5b5c1e-4a8e-4b8a-9d7e-3a1f2c0d9e11")
	upgradeName = "to-1-24-2"
)

var (
	deploymentGVK = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cronJobGVK    = metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
)

// fixtureTable assigns newRev to the fixture name for every handled kind.
func fixtureTable() *Table {
	t := NewTable()
	m := map[Key]string{}
	for _, k := range []string{"Deployment", "StatefulSet", "DaemonSet", "CronJob"} {
		m[Key{Upgrade: upgradeName, Kind: k, Namespace: fixtureNS, Name: fixtureName}] = newRev
	}
	t.Replace(m)
	return t
}

// podTemplate is a realistic application pod template on oldRev: the shape a
// CI pipeline sends, with resources, probes, env and volumes, so decoding
// costs what it costs in production.
func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"app": fixtureName, "version": "v42", "istio.io/rev": oldRev},
			Annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: fixtureName,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example.com/shop/checkout:v42",
				Args:  []string{"--listen=:8080", "--metrics=:9090", "--log-level=info"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
				Env: []corev1.EnvVar{
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "DATABASE_URL", Value: "postgres://checkout@db.shop.svc:5432/checkout"},
					{Name: "FEATURE_FLAGS", Value: "new-cart,fast-pay"},
				},
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
				},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstrPort(8080)}}},
				LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/live", Port: intstrPort(8080)}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/checkout"}},
			}},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"},
			}}}},
		},
	}
}

// deployment is the fixture Deployment, selected by the upgrade.
func deployment() *appsv1.Deployment {
	replicas := int32(3)
	return &appsv1.Deployment{
		TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fixtureName, Namespace: fixtureNS,
			Labels: map[string]string{"app": fixtureName, LabelUpgrade: upgradeName},
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"checkout"}}`,
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fixtureName}},
			Template: podTemplate(),
		},
	}
}

// cronJob is the fixture CronJob, selected by the upgrade.
func cronJob() *batchv1.CronJob {
	return &batchv1.CronJob{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fixtureName, Namespace: fixtureNS,
			Labels: map[string]string{LabelUpgrade: upgradeName},
		},
		Spec: batchv1.CronJobSpec{
			Schedule:    "*/5 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: podTemplate()}},
		},
	}
}

// reviewJSON wraps obj (already JSON, or a value to marshal) in an
// AdmissionReview v1 request as the API server sends it.
func reviewJSON(tb testing.TB, op admissionv1.Operation, gvk metav1.GroupVersionKind, obj any) []byte {
	tb.Helper()
	raw, ok := obj.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(obj); err != nil {
			tb.Fatal(err)
		}
	}
	resource := map[string]string{"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets", "CronJob": "cronjobs"}[gvk.Kind]
	rev := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       fixtureUID,
			Kind:      gvk,
			Resource:  metav1.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource},
			Name:      fixtureName,
			Namespace: fixtureNS,
			Operation: op,
			UserInfo:  authenticationUser(),
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	if op == admissionv1.Update {
		rev.Request.OldObject = runtime.RawExtension{Raw: raw}
	}
	out, err := json.Marshal(rev)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func intstrPort(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }

func authenticationUser() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "system:serviceaccount:ci:deployer", Groups: []string{"system:serviceaccounts", "system:authenticated"}}
}
