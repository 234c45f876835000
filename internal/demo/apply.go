package demo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// applyWorkers bounds concurrent requests of Apply: enough to hide round trips, few enough not to
// starve the controllers that must act on what is created.
const applyWorkers = 16

// FieldManager names meshroll as the writer of what it creates.
const FieldManager = "meshroll"

// Apply creates the plan's namespaces, Services and workloads, skipping any that already exist, so
// that it can be rerun after a partial failure.
func Apply(ctx context.Context, c kubernetes.Interface, p *Plan) error {
	err := forEach(ctx, len(p.Namespaces), applyWorkers, func(ctx context.Context, i int) error {
		return create(ctx, "namespace", p.Namespaces[i].Name, func(o metav1.CreateOptions) error {
			_, err := c.CoreV1().Namespaces().Create(ctx, namespaceObject(p.Namespaces[i]), o)
			return err
		})
	})
	if err != nil {
		return err
	}
	return forEach(ctx, len(p.Workloads), applyWorkers, func(ctx context.Context, i int) error {
		return applyWorkload(ctx, c, p.Workloads[i])
	})
}

// applyWorkload creates one workload and its Service.
func applyWorkload(ctx context.Context, c kubernetes.Interface, w WorkloadSpec) error {
	if w.Service {
		err := create(ctx, "service", w.Namespace+"/"+w.Name, func(o metav1.CreateOptions) error {
			_, err := c.CoreV1().Services(w.Namespace).Create(ctx, serviceObject(w), o)
			return err
		})
		if err != nil {
			return err
		}
	}
	obj, err := workloadObject(w)
	if err != nil {
		return err
	}
	return create(ctx, strings.ToLower(string(w.Kind)), w.Namespace+"/"+w.Name, func(o metav1.CreateOptions) error {
		var err error
		switch v := obj.(type) {
		case *appsv1.Deployment:
			_, err = c.AppsV1().Deployments(w.Namespace).Create(ctx, v, o)
		case *appsv1.StatefulSet:
			_, err = c.AppsV1().StatefulSets(w.Namespace).Create(ctx, v, o)
		case *appsv1.DaemonSet:
			_, err = c.AppsV1().DaemonSets(w.Namespace).Create(ctx, v, o)
		case *batchv1.Job:
			_, err = c.BatchV1().Jobs(w.Namespace).Create(ctx, v, o)
		case *batchv1.CronJob:
			_, err = c.BatchV1().CronJobs(w.Namespace).Create(ctx, v, o)
		case *corev1.Pod:
			_, err = c.CoreV1().Pods(w.Namespace).Create(ctx, v, o)
		}
		return err
	})
}

// create runs one create call, treating AlreadyExists as success. A bare Pod
// created right after its namespace can be refused until the service-account
// controller has made the namespace's "default" ServiceAccount; that refusal
// is retried for up to 30 seconds.
func create(ctx context.Context, what, name string, call func(metav1.CreateOptions) error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := call(metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "serviceaccount") || time.Now().After(deadline) {
			return fmt.Errorf("failed to create %s %q: %w", what, name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to create %s %q: %w", what, name, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// forEach runs fn for 0..n-1 on at most workers goroutines and returns the first error, after
// which no new item starts.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// Cancelled by the caller, not by a failing item.
		first = context.Cause(ctx)
	}
	return first
}

// WaitReady polls until every Deployment, StatefulSet and DaemonSet of the plan is rolled out,
// every Job complete and every bare Pod running and ready. On timeout (ctx) it names what is not.
func WaitReady(ctx context.Context, c kubernetes.Interface, p *Plan) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		pending, err := notReady(ctx, c, p)
		if err == nil && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				sort.Strings(pending)
				if len(pending) > 10 {
					pending = append(pending[:10], fmt.Sprintf("and %d more", len(pending)-10))
				}
				err = errors.New(strings.Join(pending, ", "))
			}
			return fmt.Errorf("failed to wait for plan %q to be ready: %w (%w)", p.Options.Prefix, err, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// notReady lists the plan's workloads that are not ready yet, with the reason.
func notReady(ctx context.Context, c kubernetes.Interface, p *Plan) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: LabelSet + "=" + p.Options.Prefix}
	state := map[string]string{} // "Kind ns/name" → "" when ready, else why not
	deps, err := c.AppsV1().Deployments("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list deployments %q: %w", sel.LabelSelector, err)
	}
	for _, d := range deps.Items {
		state[key(KindDeployment, d.ObjectMeta)] = deploymentPending(&d)
	}
	sts, err := c.AppsV1().StatefulSets("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list statefulsets %q: %w", sel.LabelSelector, err)
	}
	for _, s := range sts.Items {
		state[key(KindStatefulSet, s.ObjectMeta)] = statefulSetPending(&s)
	}
	dss, err := c.AppsV1().DaemonSets("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list daemonsets %q: %w", sel.LabelSelector, err)
	}
	for _, d := range dss.Items {
		state[key(KindDaemonSet, d.ObjectMeta)] = daemonSetPending(&d)
	}
	jobs, err := c.BatchV1().Jobs("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list jobs %q: %w", sel.LabelSelector, err)
	}
	for _, j := range jobs.Items {
		state[key(KindJob, j.ObjectMeta)] = jobPending(&j)
	}
	pods, err := c.CoreV1().Pods("").List(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("failed to list pods %q: %w", sel.LabelSelector, err)
	}
	for _, pod := range pods.Items {
		if len(pod.OwnerReferences) == 0 {
			state[key(KindPod, pod.ObjectMeta)] = podPending(&pod)
		}
	}
	var pending []string
	for _, w := range p.Workloads {
		if w.Kind == KindCronJob {
			continue
		}
		why, ok := state[w.Ref()]
		switch {
		case !ok:
			pending = append(pending, w.Ref()+": missing")
		case why != "":
			pending = append(pending, w.Ref()+": "+why)
		}
	}
	return pending, nil
}

// key is the WorkloadSpec.Ref of an object.
func key(k Kind, m metav1.ObjectMeta) string { return fmt.Sprintf("%s %s/%s", k, m.Namespace, m.Name) }

// deploymentPending says why d is not rolled out, "" when it is.
func deploymentPending(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.AvailableReplicas != want || s.Replicas != want {
		return fmt.Sprintf("%d/%d available", s.AvailableReplicas, want)
	}
	return ""
}

// statefulSetPending says why s is not rolled out, "" when it is.
func statefulSetPending(s *appsv1.StatefulSet) string {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	if st.ObservedGeneration < s.Generation || st.ReadyReplicas != want || st.Replicas != want {
		return fmt.Sprintf("%d/%d ready", st.ReadyReplicas, want)
	}
	return ""
}

// daemonSetPending says why d is not rolled out, "" when it is.
func daemonSetPending(d *appsv1.DaemonSet) string {
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.NumberReady != s.DesiredNumberScheduled || s.UpdatedNumberScheduled != s.DesiredNumberScheduled {
		return fmt.Sprintf("%d/%d ready", s.NumberReady, s.DesiredNumberScheduled)
	}
	return ""
}

// jobPending says why j is not complete, "" when it is.
func jobPending(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return ""
		}
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return "failed: " + c.Message
		}
	}
	return fmt.Sprintf("%d succeeded", j.Status.Succeeded)
}

// podPending says why a bare pod is not running and ready, "" when it is.
func podPending(p *corev1.Pod) string {
	if p.Status.Phase != corev1.PodRunning {
		return "phase " + string(p.Status.Phase)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	return "not ready"
}
