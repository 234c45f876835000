package demo

import (
	"context"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
)

// ScaleOptions size a SeedScale run.
type ScaleOptions struct {
	// Prefix starts every namespace name and names the run (default "scale").
	Prefix string
	// Namespaces spreads the workloads (default 50).
	Namespaces int
	// Workloads is how many Deployments to create (default 5,000).
	Workloads int
	// Pods is the pod count of every Deployment (default 10).
	Pods int
	// Revision is the revision every pod looks injected by, and that namespaces select (required).
	Revision string
	// ProxyImage is the istio-proxy image; defaults to docker.io/istio/proxyv2:<version of Revision>.
	ProxyImage string
	// Workers bounds concurrent requests (default 32).
	Workers int
	// NodeSelector picks the nodes pods are bound to (a label selector; "" for every node).
	NodeSelector string
}

// ScaleReport measures a SeedScale run.
type ScaleReport struct {
	Namespaces, Workloads, Pods, Nodes int
	// Elapsed is the whole run; PodsElapsed the pod-creation phase alone.
	Elapsed, PodsElapsed time.Duration
	// PodsPerSecond is Pods / PodsElapsed.
	PodsPerSecond float64
}

// String reports the run in one line.
func (r ScaleReport) String() string {
	return fmt.Sprintf("%d pods in %d workloads, %d namespaces, %d nodes: %s in all, pods at %.0f/s",
		r.Pods, r.Workloads, r.Namespaces, r.Nodes, r.Elapsed.Round(time.Millisecond), r.PodsPerSecond)
}

// labelSeed marks SeedScale's namespaces; the admission policy that holds kube-controller-manager
// back applies to them only.
const labelSeed = "meshroll.io/seed"

// withDefaults fills the zero fields of o.
func (o ScaleOptions) withDefaults() ScaleOptions {
	if o.Prefix == "" {
		o.Prefix = "scale"
	}
	if o.Namespaces == 0 {
		o.Namespaces = 50
	}
	if o.Workloads == 0 {
		o.Workloads = 5000
	}
	if o.Pods == 0 {
		o.Pods = 10
	}
	if o.ProxyImage == "" {
		o.ProxyImage = "docker.io/istio/proxyv2:" + strings.ReplaceAll(o.Revision, "-", ".")
	}
	if o.Workers == 0 {
		o.Workers = 32
	}
	return o
}

// scaleWorkload is one Deployment of a scale run and the UIDs its dependents need.
type scaleWorkload struct {
	namespace, name, hash string
	deployUID, rsUID      types.UID
}

// rsName is the ReplicaSet's name, <deployment>-<pod-template-hash> as the controller names it.
func (w *scaleWorkload) rsName() string { return w.name + "-" + w.hash }

// SeedScale writes opts.Workloads Deployments of opts.Pods already-injected pods each, bound
// directly to nodes, so that inventory and migration can be benchmarked on tens of thousands of
// pods without waiting for the scheduler and the controllers to create them.
//
// kube-controller-manager must end up owning the result without touching it. So, per workload: a
// paused Deployment (a paused Deployment never creates a ReplicaSet); a ReplicaSet owned by it,
// with the Deployment's exact template plus a pod-template-hash, so the deployment controller takes
// it as its current one; the pods, owned by the ReplicaSet, pre-bound with spec.nodeName. While
// they are created, a ValidatingAdmissionPolicy rejects pods without the injector's status
// annotation in these namespaces, which are exactly the ones the ReplicaSet controller would add
// while it sees fewer pods than replicas. Last the Deployments are unpaused and the policy removed.
func SeedScale(ctx context.Context, c kubernetes.Interface, opts ScaleOptions) (ScaleReport, error) {
	opts = opts.withDefaults()
	start := time.Now()
	rep := ScaleReport{Namespaces: opts.Namespaces, Workloads: opts.Workloads, Pods: opts.Workloads * opts.Pods}
	if opts.Revision == "" || opts.Namespaces < 1 || opts.Workloads < 1 || opts.Pods < 1 {
		return rep, fmt.Errorf("failed to seed %q: revision, namespaces, workloads and pods are required", opts.Prefix)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: opts.NodeSelector})
	if err != nil {
		return rep, fmt.Errorf("failed to list nodes %q: %w", opts.NodeSelector, err)
	}
	var nodeNames []string
	for _, n := range nodes.Items {
		nodeNames = append(nodeNames, n.Name)
	}
	if len(nodeNames) == 0 {
		return rep, fmt.Errorf("failed to seed %q: no node matches %q", opts.Prefix, opts.NodeSelector)
	}
	sort.Strings(nodeNames)
	rep.Nodes = len(nodeNames)

	status, err := sidecarStatus(opts.Revision)
	if err != nil {
		return rep, err
	}
	if err := ensureHoldPolicy(ctx, c, opts.Prefix); err != nil {
		return rep, err
	}
	// Removing the policy must happen even when ctx is cancelled: it would block every controller.
	defer func() {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = removeHoldPolicy(cleanup, c, opts.Prefix) // already removed on success; best effort otherwise
	}()
	var namespaces []string
	for i := range opts.Namespaces {
		namespaces = append(namespaces, fmt.Sprintf("%s-%03d", opts.Prefix, i))
	}
	err = forEach(ctx, len(namespaces), opts.Workers, func(ctx context.Context, i int) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaces[i], Labels: map[string]string{
			LabelPartOf: PartOf, LabelSet: opts.Prefix, labelSeed: opts.Prefix, istio.LabelRev: opts.Revision}}}
		return create(ctx, "namespace", ns.Name, func(o metav1.CreateOptions) error {
			_, err := c.CoreV1().Namespaces().Create(ctx, ns, o)
			return err
		})
	})
	if err != nil {
		return rep, err
	}
	if err := waitHoldPolicy(ctx, c, namespaces[0], opts.Prefix); err != nil {
		return rep, err
	}

	workloads := make([]*scaleWorkload, opts.Workloads)
	for j := range workloads {
		w := &scaleWorkload{namespace: namespaces[j%len(namespaces)], name: fmt.Sprintf("app-%05d", j)}
		h := fnv.New32a()
		_, _ = h.Write([]byte(w.namespace + "/" + w.name))
		w.hash = rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
		workloads[j] = w
	}
	err = forEach(ctx, len(workloads), opts.Workers, func(ctx context.Context, j int) error {
		return createOwners(ctx, c, opts, workloads[j])
	})
	if err != nil {
		return rep, err
	}

	podsStart := time.Now()
	err = forEach(ctx, rep.Pods, opts.Workers, func(ctx context.Context, i int) error {
		w := workloads[i/opts.Pods]
		pod := scalePod(opts, w, i%opts.Pods, nodeNames[i%len(nodeNames)], status)
		return create(ctx, "pod", w.namespace+"/"+pod.Name, func(o metav1.CreateOptions) error {
			_, err := c.CoreV1().Pods(w.namespace).Create(ctx, pod, o)
			return err
		})
	})
	rep.PodsElapsed = time.Since(podsStart)
	if err != nil {
		return rep, err
	}
	rep.PodsPerSecond = float64(rep.Pods) / rep.PodsElapsed.Seconds()

	unpause := []byte(`{"spec":{"paused":false}}`)
	err = forEach(ctx, len(workloads), opts.Workers, func(ctx context.Context, j int) error {
		w := workloads[j]
		if _, err := c.AppsV1().Deployments(w.namespace).Patch(ctx, w.name, types.MergePatchType, unpause,
			metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("failed to unpause deployment %q: %w", w.namespace+"/"+w.name, err)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if err := waitReplicaSetsSawPods(ctx, c, opts); err != nil {
		return rep, err
	}
	if err := removeHoldPolicy(ctx, c, opts.Prefix); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// scaleTemplate is the pod template shared by a scale workload's Deployment and ReplicaSet.
func scaleTemplate(opts ScaleOptions, w *scaleWorkload) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": w.name, LabelPartOf: PartOf, LabelSet: opts.Prefix}},
		Spec:       podSpec(corev1.RestartPolicyAlways),
	}
}

// createOwners creates (or finds) w's paused Deployment and its ReplicaSet, recording their UIDs.
func createOwners(ctx context.Context, c kubernetes.Interface, opts ScaleOptions, w *scaleWorkload) error {
	replicas := int32(opts.Pods)
	labels := map[string]string{"app": w.name, LabelPartOf: PartOf, LabelSet: opts.Prefix}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Paused: true, Template: scaleTemplate(opts, w),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.name}}},
	}
	got, err := c.AppsV1().Deployments(w.namespace).Create(ctx, d, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		got, err = c.AppsV1().Deployments(w.namespace).Get(ctx, w.name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("failed to create deployment %q: %w", w.namespace+"/"+w.name, err)
	}
	w.deployUID = got.UID

	tmpl := scaleTemplate(opts, w)
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = w.hash
	rsLabels := copyMap(tmpl.Labels)
	yes := true
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: w.rsName(), Namespace: w.namespace, Labels: rsLabels,
			Annotations: map[string]string{"deployment.kubernetes.io/revision": "1",
				"deployment.kubernetes.io/desired-replicas": strconv.Itoa(opts.Pods),
				"deployment.kubernetes.io/max-replicas":     strconv.Itoa(opts.Pods + 1)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: w.name,
				UID: w.deployUID, Controller: &yes, BlockOwnerDeletion: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Template: tmpl,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.name, appsv1.DefaultDeploymentUniqueLabelKey: w.hash}}},
	}
	gotRS, err := c.AppsV1().ReplicaSets(w.namespace).Create(ctx, rs, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		gotRS, err = c.AppsV1().ReplicaSets(w.namespace).Get(ctx, rs.Name, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("failed to create replicaset %q: %w", w.namespace+"/"+rs.Name, err)
	}
	w.rsUID = gotRS.UID
	return nil
}

// scalePod is the k-th pod of w, bound to node and carrying what revision's injector would add.
func scalePod(opts ScaleOptions, w *scaleWorkload, k int, node, status string) *corev1.Pod {
	tmpl := scaleTemplate(opts, w)
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = w.hash
	yes := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: w.rsName() + "-" + rand.SafeEncodeString(fmt.Sprintf("%05d", k)), Namespace: w.namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: w.rsName(),
				UID: w.rsUID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: tmpl.Spec,
	}
	pod.Spec.NodeName = node
	injectAs(&pod.ObjectMeta, &pod.Spec, opts.Revision, opts.ProxyImage, status)
	return pod
}

// holdPolicyName names the admission policy (and its binding) of a scale run.
func holdPolicyName(prefix string) string { return "meshroll-demo-seed-" + prefix }

// ensureHoldPolicy installs the policy that rejects uninjected pods in the run's namespaces.
func ensureHoldPolicy(ctx context.Context, c kubernetes.Interface, prefix string) error {
	name := holdPolicyName(prefix)
	fail := admissionv1.Fail
	nsSel := &metav1.LabelSelector{MatchLabels: map[string]string{labelSeed: prefix}}
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelPartOf: PartOf}},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionv1.MatchResources{
				NamespaceSelector: nsSel,
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			Validations: []admissionv1.Validation{{
				Expression: fmt.Sprintf("has(object.metadata.annotations) && '%s' in object.metadata.annotations", istio.AnnotationSidecarStatus),
				Message:    "meshroll demo seeding in progress: only pre-injected pods are admitted here",
			}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelPartOf: PartOf}},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources:    &admissionv1.MatchResources{NamespaceSelector: nsSel},
		},
	}
	err := create(ctx, "validatingadmissionpolicy", name, func(o metav1.CreateOptions) error {
		_, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, o)
		return err
	})
	if err != nil {
		return err
	}
	return create(ctx, "validatingadmissionpolicybinding", name, func(o metav1.CreateOptions) error {
		_, err := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, binding, o)
		return err
	})
}

// waitHoldPolicy waits until the API server enforces the policy (it loads policies asynchronously),
// probing with a dry-run pod that must be rejected.
func waitHoldPolicy(ctx context.Context, c kubernetes.Interface, namespace, prefix string) error {
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "policy-probe", Namespace: namespace},
		Spec: podSpec(corev1.RestartPolicyAlways)}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		_, err := c.CoreV1().Pods(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), holdPolicyName(prefix)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to wait for admission policy %q to be enforced: %w (last probe: %v)", holdPolicyName(prefix), context.Cause(ctx), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitReplicaSetsSawPods waits until the ReplicaSet controller counts every
// seeded pod in each ReplicaSet's status. Until then its cache may lack some
// of them, and with the hold policy gone it would create the "missing" pods
// and then delete the surplus. Under load (a CI machine building with -race)
// TestSeedScaleOnSandbox saw 24 of 500 pods new or deleting after every
// Deployment was available, which this explains (its logs were gone).
func waitReplicaSetsSawPods(ctx context.Context, c kubernetes.Interface, opts ScaleOptions) error {
	sel := metav1.ListOptions{LabelSelector: LabelSet + "=" + opts.Prefix}
	behind, last := opts.Workloads, error(nil)
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		rss, err := c.AppsV1().ReplicaSets("").List(ctx, sel)
		if last = err; err != nil {
			return false, nil
		}
		behind = opts.Workloads - len(rss.Items)
		for _, rs := range rss.Items {
			if rs.Status.ObservedGeneration < rs.Generation || rs.Status.Replicas != int32(opts.Pods) {
				behind++
			}
		}
		return behind == 0, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the ReplicaSet controller to count the seeded pods (%d ReplicaSet(s) behind, last error: %v): %w; is kube-controller-manager running?", behind, last, err)
	}
	return nil
}

// removeHoldPolicy deletes the policy and its binding.
func removeHoldPolicy(ctx context.Context, c kubernetes.Interface, prefix string) error {
	name := holdPolicyName(prefix)
	err := c.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete validatingadmissionpolicybinding %q: %w", name, err)
	}
	err = c.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to delete validatingadmissionpolicy %q: %w", name, err)
	}
	return nil
}
