package inventory

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/internal/istio"
)

// podTemplate is what meshroll keeps of a workload's pod template: the
// labels and annotations injection reads, the istio-proxy image it names,
// and what decides whether a restart replaces its pods.
type podTemplate struct {
	rev         optional
	injectLabel optional
	injectAnno  optional
	hostNetwork bool
	proxyImage  string
	replicas    *int32
	// onDelete is a StatefulSet or DaemonSet whose pods are replaced only
	// when deleted.
	onDelete bool
	// paused is a Deployment whose rollouts are paused.
	paused bool
	// partition is a RollingUpdate StatefulSet's partition: pods with a
	// lower ordinal are not replaced.
	partition int32
}

func summarize(t *corev1.PodTemplateSpec) *podTemplate {
	p := &podTemplate{
		rev:         lookup(t.Labels, istio.LabelRev),
		injectLabel: lookup(t.Labels, istio.LabelSidecarInject),
		injectAnno:  lookup(t.Annotations, istio.AnnotationSidecarInject),
		hostNetwork: t.Spec.HostNetwork,
	}
	if c := proxyIn(&t.Spec); c != nil {
		p.proxyImage = c.Image
	}
	return p
}

// key is the template as a podKey, so injection is judged for a template
// exactly as for a pod.
func (p *podTemplate) key(namespace string) *podKey {
	return &podKey{namespace: namespace, podRev: p.rev, injectLabel: p.injectLabel, injectAnno: p.injectAnno, hostNetwork: p.hostNetwork}
}

// templateReader lists one kind of workload and hands each template over.
type templateReader func(ctx context.Context, c Clients, add func(ref, *podTemplate)) error

// templateReaders read the kinds whose templates matter. Full objects are
// needed (metadata says nothing about templates); each page is folded into
// podTemplates at once, so memory stays at a few pages.
func templateReaders() []templateReader {
	return []templateReader{
		func(ctx context.Context, c Clients, add func(ref, *podTemplate)) error {
			return eachTyped(ctx, "deployments", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.Kube.AppsV1().Deployments("").List(ctx, o)
			}, func(d *appsv1.Deployment) {
				t := summarize(&d.Spec.Template)
				t.replicas = d.Spec.Replicas
				t.paused = d.Spec.Paused
				add(ref{kind: KindDeployment, namespace: d.Namespace, name: d.Name}, t)
			})
		},
		func(ctx context.Context, c Clients, add func(ref, *podTemplate)) error {
			return eachTyped(ctx, "daemonsets", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.Kube.AppsV1().DaemonSets("").List(ctx, o)
			}, func(d *appsv1.DaemonSet) {
				t := summarize(&d.Spec.Template)
				t.onDelete = d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType
				add(ref{kind: KindDaemonSet, namespace: d.Namespace, name: d.Name}, t)
			})
		},
		func(ctx context.Context, c Clients, add func(ref, *podTemplate)) error {
			return eachTyped(ctx, "statefulsets", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.Kube.AppsV1().StatefulSets("").List(ctx, o)
			}, func(s *appsv1.StatefulSet) {
				t := summarize(&s.Spec.Template)
				t.replicas = s.Spec.Replicas
				t.onDelete = s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType
				if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil {
					t.partition = *ru.Partition
				}
				add(ref{kind: KindStatefulSet, namespace: s.Namespace, name: s.Name}, t)
			})
		},
		func(ctx context.Context, c Clients, add func(ref, *podTemplate)) error {
			return eachTyped(ctx, "cronjobs", func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.Kube.BatchV1().CronJobs("").List(ctx, o)
			}, func(j *batchv1.CronJob) {
				add(ref{kind: KindCronJob, namespace: j.Namespace, name: j.Name}, summarize(&j.Spec.JobTemplate.Spec.Template))
			})
		},
	}
}

// eachTyped streams a paged typed LIST through fn.
func eachTyped[T any](ctx context.Context, resource string, list func(context.Context, metav1.ListOptions) (runtime.Object, error), fn func(*T)) error {
	err := eachPage(ctx, list, func(obj runtime.Object) error {
		o, ok := any(obj).(*T)
		if !ok {
			return fmt.Errorf("failed to read %s %T: %w", resource, obj, errUnexpectedTy)
		}
		fn(o)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", resource, err)
	}
	return nil
}
