package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// fieldManager owns every field a rollout writes (server-side apply).
const fieldManager = "meshroll"

// Clients are what a rollout reads and writes with.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Options of Rollout.
type Options struct {
	Namespace string
	// Deployment runs the current version; Service is what clients call.
	Deployment string
	Service    string
	// Version is the new version's label value; Image, when set, replaces
	// the image of Container (the first container when empty).
	Version   string
	Image     string
	Container string
	// Steps are the new version's weights in percent (ValidateSteps).
	Steps []int
	// Sync, when set, makes each routing change wait until istiod reports
	// that every proxy it affects has acknowledged it.
	Sync *Propagation
	// StepWait is more time given after each routing change (after Sync's
	// wait) before the gates run; with no Sync it is the only wait.
	StepWait time.Duration
	// ReadyTimeout bounds the wait for the new Deployment to be available.
	ReadyTimeout time.Duration
	// Gate, when set, judges each step once it reached the proxies; an error routes all
	// traffic back to the old version and stops the rollout.
	Gate func(ctx context.Context, weight int) error
	// DryRun validates and prints the plan; nothing is written.
	DryRun bool
	// Out receives one line per action.
	Out io.Writer
}

// Result is what a rollout did.
type Result struct {
	Old, New               string
	OldVersion, NewVersion string
	Host                   string
	// Weights are the steps that were applied and passed their gates.
	Weights []int
	// RolledBack is set when a gate failed and the traffic went back.
	RolledBack bool
}

// Rollout moves the traffic of opts.Service from opts.Deployment to a new
// Deployment of opts.Version beside it, by subset weights, then removes the
// old Deployment and subset.
func Rollout(ctx context.Context, c Clients, opts Options) (*Result, error) {
	if opts.Steps == nil {
		opts.Steps = DefaultSteps
	}
	if err := ValidateSteps(opts.Steps); err != nil {
		return nil, err
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 5 * time.Minute
	}
	ns := opts.Namespace
	old, err := c.Kube.AppsV1().Deployments(ns).Get(ctx, opts.Deployment, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get deployment %q: %w", ns+"/"+opts.Deployment, err)
	}
	svc, err := c.Kube.CoreV1().Services(ns).Get(ctx, opts.Service, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to get service %q: %w", ns+"/"+opts.Service, err)
	}
	subj := Subject{Old: old, Service: svc, OldVersion: old.Spec.Template.Labels[VersionLabel], NewVersion: opts.Version}
	if err := CheckSubject(subj); err != nil {
		return nil, err
	}
	next, err := NewDeployment(old, subj.OldVersion, opts.Version, opts.Container, opts.Image)
	if err != nil {
		return nil, err
	}
	host := svc.Name + "." + ns + ".svc.cluster.local"
	res := &Result{Old: old.Name, New: next.Name, OldVersion: subj.OldVersion, NewVersion: opts.Version, Host: host}
	r := &run{c: c, opts: opts, ns: ns, name: svc.Name, host: host, res: res}
	if opts.DryRun {
		fmt.Fprintf(opts.Out, "dry run: would route %s by subsets %s/%s, start deployment %s/%s, shift weights %v, then delete deployment %s/%s\n",
			host, subj.OldVersion, opts.Version, ns, next.Name, opts.Steps, ns, old.Name)
		return res, nil
	}
	return res, r.do(ctx, next)
}

// run is one rollout under way.
type run struct {
	c          Clients
	opts       Options
	ns, name   string
	host       string
	res        *Result
	oldV, newV string
	// warm are the subsets the clients hold clusters for (virtualService).
	warm []string
}

func (r *run) do(ctx context.Context, next *appsv1.Deployment) error {
	r.oldV, r.newV = r.res.OldVersion, r.res.NewVersion
	// Routes first, all to the old version: the new pods get no call until
	// a step sends them one. A subset's cluster must reach every client
	// before a route names it: a client that gets the route first has no
	// such cluster and fails the call ("unknown cluster selected for RPC",
	// seen on proxyless gRPC when both were written at once).
	subsetOld := func(ctx context.Context) error {
		return r.apply(ctx, destinationRuleGVR, destinationRule(r.ns, r.name, r.host, r.oldV))
	}
	if err := r.change(ctx, "subset "+r.oldV, subsetOld, Clusters, Endpoints); err != nil {
		return err
	}
	// The old subset's cluster is built by the clients (a route that
	// only a header matches names it) while the calls still go to the
	// Service as before; then the calls move to it.
	r.warm = []string{r.oldV}
	host := func(ctx context.Context) error {
		return r.apply(ctx, virtualServiceGVR, virtualService(r.ns, r.name, r.host, r.warm, weighted{"", 100}))
	}
	if err := r.change(ctx, "route to the service, subset "+r.oldV+" built", host, Routes); err != nil {
		return err
	}
	if err := r.change(ctx, "route to subset "+r.oldV, func(ctx context.Context) error { return r.route(ctx, 0) }, Routes); err != nil {
		return err
	}
	r.logf("routes: %s → subset %s (100%%)", r.host, r.oldV)
	if err := r.applyDeployment(ctx, next); err != nil {
		return err
	}
	if err := r.waitAvailable(ctx, next.Name); err != nil {
		return err
	}
	r.logf("deployment %s/%s available", r.ns, next.Name)
	// The new subset's cluster is pushed once its pods are endpoints of the
	// Service, so that the push carries them (a cluster that reaches a
	// client before its endpoints fails the calls a step sends it).
	if err := r.waitEndpoints(ctx, next); err != nil {
		return err
	}
	subsets := func(ctx context.Context) error {
		return r.apply(ctx, destinationRuleGVR, destinationRule(r.ns, r.name, r.host, r.oldV, r.newV))
	}
	if err := r.change(ctx, "subset "+r.newV, subsets, Clusters, Endpoints); err != nil {
		return err
	}
	r.warm = []string{r.oldV, r.newV}
	if err := r.change(ctx, "subset "+r.newV+" built by the clients", func(ctx context.Context) error { return r.route(ctx, 0) }, Routes); err != nil {
		return err
	}
	r.logf("subset %s ready for the new version", r.newV)
	for _, w := range r.opts.Steps {
		if err := r.change(ctx, fmt.Sprintf("route at weight %d", w), func(ctx context.Context) error { return r.route(ctx, w) }, Routes); err != nil {
			return err
		}
		r.logf("step: %s %d%% / %s %d%%", r.oldV, 100-w, r.newV, w)
		if r.opts.Gate != nil {
			if err := r.opts.Gate(ctx, w); err != nil {
				r.res.RolledBack = true
				back := r.change(context.WithoutCancel(ctx), "route back to "+r.oldV, func(ctx context.Context) error { return r.route(ctx, 0) }, Routes)
				r.logf("gate failed at %d%%: all traffic back on %s", w, r.oldV)
				return errors.Join(fmt.Errorf("failed to pass gates at weight %d: %w", w, err), back)
			}
		}
		r.res.Weights = append(r.res.Weights, w)
	}
	// Every client routes to the new version now (the last step reached
	// them all): the old pods get no call and can go.
	err := r.c.Kube.AppsV1().Deployments(r.ns).Delete(ctx, r.res.Old, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete deployment %q: %w", r.ns+"/"+r.res.Old, err)
	}
	r.logf("deployment %s/%s deleted", r.ns, r.res.Old)
	r.warm = []string{r.newV}
	if err := r.change(ctx, "routes without subset "+r.oldV, func(ctx context.Context) error { return r.route(ctx, 100) }, Routes); err != nil {
		return err
	}
	if err := r.apply(ctx, destinationRuleGVR, destinationRule(r.ns, r.name, r.host, r.newV)); err != nil {
		return err
	}
	r.logf("subset %s removed; %s → %s", r.oldV, r.host, r.newV)
	return nil
}

// change makes one routing change (write) and waits until it has reached
// the proxies: with Sync, until every proxy watching one of types has
// acknowledged a push istiod made after the write; then StepWait more.
func (r *run) change(ctx context.Context, what string, write func(context.Context) error, types ...string) error {
	var mark Mark
	if r.opts.Sync != nil {
		var err error
		if mark, err = r.opts.Sync.Mark(ctx); err != nil {
			return fmt.Errorf("failed to read istiod's sync status before %s: %w", what, err)
		}
	}
	began := time.Now()
	if err := write(ctx); err != nil {
		return err
	}
	if r.opts.Sync != nil {
		if err := r.opts.Sync.Wait(ctx, mark, what, types...); err != nil {
			return err
		}
		r.logf("%s: acknowledged by every proxy (%s)", what, time.Since(began).Round(10*time.Millisecond))
	}
	return sleep(ctx, r.opts.StepWait)
}

// route sends weight percent of the calls to the new subset, the rest to the
// old one.
func (r *run) route(ctx context.Context, weight int) error {
	return r.apply(ctx, virtualServiceGVR, virtualService(r.ns, r.name, r.host, r.warm,
		weighted{r.oldV, 100 - weight}, weighted{r.newV, weight}))
}

func (r *run) apply(ctx context.Context, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) error {
	_, err := r.c.Dynamic.Resource(gvr).Namespace(r.ns).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("failed to apply %s %q: %w", obj.GetKind(), r.ns+"/"+obj.GetName(), err)
	}
	return nil
}

func (r *run) applyDeployment(ctx context.Context, d *appsv1.Deployment) error {
	_, err := r.c.Kube.AppsV1().Deployments(r.ns).Create(ctx, d, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		r.logf("deployment %s/%s exists: reusing it", r.ns, d.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to create deployment %q: %w", r.ns+"/"+d.Name, err)
	}
	r.logf("deployment %s/%s created beside %s", r.ns, d.Name, r.res.Old)
	return nil
}

// waitAvailable waits until every replica of the Deployment is updated and
// available.
func (r *run) waitAvailable(ctx context.Context, name string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, r.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		d, err := r.c.Kube.AppsV1().Deployments(r.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		last = fmt.Sprintf("%d of %d available", s.AvailableReplicas, want)
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for deployment %q (%s): %w", r.ns+"/"+name, last, err)
	}
	return nil
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Out, time.Now().Format("15:04:05")+" "+format+"\n", args...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitEndpoints waits until every pod of d is a ready endpoint of the
// Service in its EndpointSlices, which is what istiod builds endpoints from.
func (r *run) waitEndpoints(ctx context.Context, d *appsv1.Deployment) error {
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels).String()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, r.opts.ReadyTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := r.c.Kube.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		eps, err := r.c.Kube.DiscoveryV1().EndpointSlices(r.ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + r.name})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		ready := map[string]bool{}
		for _, s := range eps.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					for _, a := range ep.Addresses {
						ready[a] = true
					}
				}
			}
		}
		missing := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && (p.Status.PodIP == "" || !ready[p.Status.PodIP]) {
				missing++
			}
		}
		last = fmt.Sprintf("%d of %d pods not yet ready endpoints", missing, len(pods.Items))
		return len(pods.Items) > 0 && missing == 0, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the pods of deployment %q to be endpoints of service %q (%s): %w", r.ns+"/"+d.Name, r.ns+"/"+r.name, last, err)
	}
	return nil
}
