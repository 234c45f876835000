//go:build linux

package xds_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshroll/meshroll/sandbox/podproc"
)

// Ports of the app: gRPC and the admin port its readiness probe asks.
const (
	grpcPort  = 8080
	adminPort = 8081
)

// appDeployment is a Deployment of xdsapp in mode (server or client) with
// args, its pods labelled app=<app>, version=<version> (in $VERSION): Istio
// injects it with its grpc-agent template (proxyless gRPC), and the sandbox
// runs its pods as processes. Probes are not rewritten to an agent port: no
// agent runs.
func appDeployment(ns, name, app, version string, replicas int32, args ...string) *appsv1.Deployment {
	labels := map[string]string{"app": app, "version": version}
	grace := int64(10)
	tpl := map[string]string{podproc.Label: "true"}
	for k, v := range labels {
		tpl[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: tpl, Annotations: map[string]string{
					"inject.istio.io/templates":              "grpc-agent",
					"proxy.istio.io/config":                  `{"holdApplicationUntilProxyStarts": true}`,
					"sidecar.istio.io/rewriteAppHTTPProbers": "false",
				}},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name: "app", Image: appImage, Args: args,
						Env: []corev1.EnvVar{{Name: "VERSION", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['version']"}}}},
						Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: grpcPort}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(adminPort)}},
							PeriodSeconds: 1,
						},
					}},
				},
			},
		},
	}
}

// echoServers is a server Deployment (pods app=echo): every call takes delay of simulated
// work; on SIGTERM a server drains for drain (0: exits at once).
func echoServers(ns, name, version string, replicas int32, delay, drain string) *appsv1.Deployment {
	return appDeployment(ns, name, "echo", version, replicas, "server", fmt.Sprintf("--port=%d", grpcPort), fmt.Sprintf("--admin=%d", adminPort),
		"--delay="+delay, "--drain="+drain)
}

// callTimeout is the deadline of one call: long enough that a call starved
// of CPU on a loaded two-core machine is not counted as lost; a call the
// mesh really drops fails at once (Unavailable), not at its deadline.
const callTimeout = "5s"

// clients is the client Deployment, each replica sending qps calls per
// second to service in serverNS and writing its seconds to statsDir.
func clients(ns, serverNS, service string, replicas int32, qps int, statsDir string) *appsv1.Deployment {
	return appDeployment(ns, "client", "client", "v1", replicas, "client",
		fmt.Sprintf("--target=xds:///%s.%s.svc.cluster.local:%d", service, serverNS, grpcPort),
		fmt.Sprintf("--qps=%d", qps), fmt.Sprintf("--admin=%d", adminPort), "--stats="+statsDir, "--timeout="+callTimeout)
}

// echoService is the Service of the servers (selector app=<app>).
func echoService(ns, name, app string) *corev1.Service {
	protocol := "grpc"
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "grpc", Port: grpcPort, TargetPort: intstr.FromInt32(grpcPort), AppProtocol: &protocol}},
		},
	}
}

// create creates objects and fails the test on an error.
func (e *env) create(t *testing.T, objs ...any) {
	t.Helper()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = e.kube.AppsV1().Deployments(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = e.kube.CoreV1().Services(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("cannot create %T", o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
