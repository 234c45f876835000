package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
)

// Clients are the API clients the gateway executor needs: typed reads and
// patches, and dynamic server-side apply of rendered objects.
type Clients struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// defaultTimeout bounds every wait when the caller gives none.
const defaultTimeout = 5 * time.Minute

// Colours lists the colours of gateway gw in namespace ns, sorted by revision.
func Colours(ctx context.Context, kc kubernetes.Interface, ns, gw string) ([]Colour, error) {
	list, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelGateway + "=" + gw})
	if err != nil {
		return nil, fmt.Errorf("failed to list deployments of gateway %q in %q: %w", gw, ns, err)
	}
	var out []Colour
	for i := range list.Items {
		if c, ok := ColourOf(&list.Items[i], gw); ok {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Colour) int { return compareStrings(a.Revision, b.Revision) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// InstallOptions say which colour to install.
type InstallOptions struct {
	// Name is the gateway (the Service's name); the colour's Deployment is
	// DeploymentName(Name, Revision).
	Name, Namespace string
	// Revision is the installed control-plane revision whose version's
	// gateway chart is rendered and whose injector injects the gateway.
	Revision string
	// ControlPlaneNamespace is where the revision's istiod runs; "" means istio-system.
	ControlPlaneNamespace string
	DryRun                bool
	// Timeout bounds the wait for the Deployment to become available; 0 = 5m.
	Timeout time.Duration
	// Source and Cache are passed to istio.Render.
	Source istio.ChartSource
	Cache  *istio.RenderCache
}

// Install renders the gateway chart of the revision's version as colour
// Revision of gateway Name and applies it (idempotently, server-side), then
// waits until its Deployment is available. The colour gets a ClusterIP
// Service of its own; traffic reaches it only once Switch points meshroll's
// Service at it.
func Install(ctx context.Context, c Clients, opts InstallOptions) ([]controlplane.Change, error) {
	if opts.Namespace == "" {
		opts.Namespace = istio.DefaultGatewayNamespace
	}
	if opts.ControlPlaneNamespace == "" {
		opts.ControlPlaneNamespace = istio.SystemNamespace
	}
	if opts.Timeout == 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Name == "" || opts.Revision == "" {
		return nil, errors.New("failed to install gateway: a gateway name and a revision are required")
	}
	revs, err := controlplane.ListRevisions(ctx, c.Kube, opts.ControlPlaneNamespace)
	if err != nil {
		return nil, err
	}
	version := ""
	var known []string
	for _, r := range revs {
		known = append(known, r.Name)
		if r.Name == opts.Revision {
			version = r.Version.String()
		}
	}
	if version == "" {
		return nil, fmt.Errorf("failed to install gateway %q: revision %q is not installed in %q (installed: %s)", opts.Name, opts.Revision, opts.ControlPlaneNamespace, list(known))
	}
	objs, err := istio.Render(ctx, istio.RenderOptions{
		Version:          version,
		Revision:         opts.Revision,
		Components:       []istio.Component{istio.Gateway},
		Namespace:        opts.ControlPlaneNamespace,
		GatewayName:      DeploymentName(opts.Name, opts.Revision),
		GatewayNamespace: opts.Namespace,
		Values:           RenderValues(opts.Name, version),
		Source:           opts.Source,
		Cache:            opts.Cache,
	})
	if err != nil {
		return nil, err
	}
	objs = append([]*unstructured.Unstructured{namespaceObject(opts.Namespace)}, objs...)
	changes, err := controlplane.NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun).Apply(ctx, objs)
	if err != nil || opts.DryRun {
		return changes, err
	}
	_, err = WaitReady(ctx, c.Kube, opts.Namespace, opts.Name, opts.Revision, opts.Timeout)
	return changes, err
}

// namespaceObject is the gateway's namespace: the chart assumes it exists.
func namespaceObject(ns string) *unstructured.Unstructured {
	n := &unstructured.Unstructured{}
	n.SetAPIVersion("v1")
	n.SetKind("Namespace")
	n.SetName(ns)
	// The API server stamps this label itself; applying it too keeps a
	// rerun from being a write.
	n.SetLabels(map[string]string{"kubernetes.io/metadata.name": ns})
	return n
}

// WaitReady blocks until colour rev of gateway gw is fully ready (see
// Colour.Ready) and returns it. It fails at once when the colour does not
// exist, and after timeout with the colour's last state when it never gets
// ready.
func WaitReady(ctx context.Context, kc kubernetes.Interface, ns, gw, rev string, timeout time.Duration) (Colour, error) {
	var last error
	var colour Colour
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		colours, err := Colours(ctx, kc, ns, gw)
		if err != nil {
			// Keep the colour's state as the reason if one was seen: a read
			// cut short by the deadline says less than "scaled to 0".
			if last == nil {
				last = err
			}
			return false, nil
		}
		last = CheckSwitch(colours, rev)
		if i := slices.IndexFunc(colours, func(c Colour) bool { return c.Revision == rev }); i >= 0 {
			colour = colours[i]
		} else {
			return false, last // absent: waiting cannot help
		}
		return last == nil, nil
	})
	if err != nil {
		if last != nil && !errors.Is(err, last) {
			err = fmt.Errorf("%w (within %s)", last, timeout)
		}
		return colour, fmt.Errorf("failed to wait for gateway %s/%s colour %q to be ready: %w", ns, gw, rev, err)
	}
	return colour, nil
}

// ServiceFor is meshroll's LoadBalancer Service for gateway gw, selecting
// colour rev.
func ServiceFor(ns, gw, rev string, ports []Port) *unstructured.Unstructured {
	ps := make([]any, 0, len(ports))
	for _, p := range ports {
		ps = append(ps, map[string]any{
			"name": p.Name, "port": int64(p.Port), "targetPort": int64(p.TargetPort), "protocol": "TCP",
		})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1",
		"kind":       "Service",
		"metadata": map[string]any{
			"name":      gw,
			"namespace": ns,
			"labels":    map[string]any{LabelManagedBy: ManagedBy, LabelGateway: gw},
		},
		"spec": map[string]any{
			"type":     string(corev1.ServiceTypeLoadBalancer),
			"selector": map[string]any{LabelGateway: gw, istio.LabelRev: rev},
			"ports":    ps,
		},
	}}
}

// ExposeOptions say how to expose a gateway.
type ExposeOptions struct {
	Name, Namespace string
	// To picks the colour; "" means the one already selected, or the only one.
	To string
	// Ports of the Service; nil means DefaultPorts().
	Ports  []Port
	DryRun bool
}

// Expose creates (or re-applies) meshroll's LoadBalancer Service for a
// gateway. It never moves traffic between colours: an existing Service keeps
// its colour, and asking for another one is Switch's job, which checks
// readiness first.
func Expose(ctx context.Context, c Clients, opts ExposeOptions) (string, []controlplane.Change, error) {
	if opts.Namespace == "" {
		opts.Namespace = istio.DefaultGatewayNamespace
	}
	if opts.Ports == nil {
		opts.Ports = DefaultPorts()
	}
	colours, err := Colours(ctx, c.Kube, opts.Namespace, opts.Name)
	if err != nil {
		return "", nil, err
	}
	current := ""
	svc, err := c.Kube.CoreV1().Services(opts.Namespace).Get(ctx, opts.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return "", nil, fmt.Errorf("failed to get service %s/%s: %w", opts.Namespace, opts.Name, err)
	default:
		if err := owned(svc); err != nil {
			return "", nil, err
		}
		current = svc.Spec.Selector[istio.LabelRev]
	}
	rev, err := ExposeRevision(colours, current, opts.To)
	if err != nil {
		return "", nil, fmt.Errorf("failed to expose gateway %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	if current != "" && rev != current {
		return "", nil, fmt.Errorf("failed to expose gateway %s/%s: its service selects colour %q; move traffic with `meshroll gateway switch --name %s --to %s`", opts.Namespace, opts.Name, current, opts.Name, rev)
	}
	a := controlplane.NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun)
	changes, err := a.Apply(ctx, []*unstructured.Unstructured{ServiceFor(opts.Namespace, opts.Name, rev, opts.Ports)})
	return rev, changes, err
}

// owned refuses Services meshroll did not create: flipping someone else's
// selector would take over their traffic.
func owned(svc *corev1.Service) error {
	if svc.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("service %s/%s exists but is not managed by meshroll (label %s=%q): choose another --name or delete it", svc.Namespace, svc.Name, LabelManagedBy, svc.Labels[LabelManagedBy])
	}
	return nil
}

// SwitchOptions say where to move a gateway's traffic.
type SwitchOptions struct {
	Name, Namespace, To string
	DryRun              bool
	// Timeout bounds the wait for the target colour to be ready; 0 = 5m.
	Timeout time.Duration
}

// SwitchResult reports a switch.
type SwitchResult struct {
	From, To string
	// Changed is false when the Service already selected To.
	Changed bool
}

// Switch moves all of a gateway's traffic to colour To in one write, once
// that colour is fully ready; the patch is conditional on the Service being
// unchanged since it was read (see SelectorPatch), so a concurrent edit makes
// it fail rather than be overwritten. Switching back is the same call.
func Switch(ctx context.Context, kc kubernetes.Interface, opts SwitchOptions) (SwitchResult, error) {
	if opts.Namespace == "" {
		opts.Namespace = istio.DefaultGatewayNamespace
	}
	if opts.Timeout == 0 {
		opts.Timeout = defaultTimeout
	}
	res := SwitchResult{To: opts.To}
	svc, err := liveService(ctx, kc, opts.Namespace, opts.Name)
	if err != nil {
		return res, err
	}
	if res.From, err = LiveRevision(svc.Spec.Selector, opts.Name); err != nil {
		return res, fmt.Errorf("failed to switch gateway %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	if res.From == opts.To {
		return res, nil
	}
	if _, err := WaitReady(ctx, kc, opts.Namespace, opts.Name, opts.To, opts.Timeout); err != nil {
		return res, fmt.Errorf("refusing to switch gateway %s/%s from %q to %q: %w", opts.Namespace, opts.Name, res.From, opts.To, err)
	}
	// Read again: the precondition must be the Service as it is now, after
	// the wait, and it must still select the colour reported as From.
	if svc, err = liveService(ctx, kc, opts.Namespace, opts.Name); err != nil {
		return res, err
	}
	if cur, _ := LiveRevision(svc.Spec.Selector, opts.Name); cur != res.From {
		return res, fmt.Errorf("failed to switch gateway %s/%s: its service changed from %q to %q while waiting; rerun the switch", opts.Namespace, opts.Name, res.From, cur)
	}
	patch, err := SelectorPatch(opts.Name, svc.ResourceVersion, res.From, opts.To)
	if err != nil {
		return res, err
	}
	po := metav1.PatchOptions{FieldManager: controlplane.FieldManager}
	if opts.DryRun {
		po.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := kc.CoreV1().Services(opts.Namespace).Patch(ctx, opts.Name, types.JSONPatchType, patch, po); err != nil {
		return res, fmt.Errorf("failed to patch service %s/%s (it may have changed since it was read; rerun the switch): %w", opts.Namespace, opts.Name, err)
	}
	res.Changed = true
	return res, nil
}

func liveService(ctx context.Context, kc kubernetes.Interface, ns, gw string) (*corev1.Service, error) {
	svc, err := kc.CoreV1().Services(ns).Get(ctx, gw, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("gateway %s/%s has no service: run `meshroll gateway expose --name %s` first", ns, gw, gw)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get service %s/%s: %w", ns, gw, err)
	}
	return svc, owned(svc)
}

// Status is a gateway's blue/green state.
type Status struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// ServiceType is the type of meshroll's Service; "" when not exposed.
	ServiceType string `json:"serviceType,omitempty"`
	// Live is the colour the Service selects; "" when not exposed.
	Live    string   `json:"live,omitempty"`
	Colours []Colour `json:"colours"`
}

// Read reads a gateway's colours and which one its Service selects.
func Read(ctx context.Context, kc kubernetes.Interface, ns, gw string) (*Status, error) {
	if ns == "" {
		ns = istio.DefaultGatewayNamespace
	}
	colours, err := Colours(ctx, kc, ns, gw)
	if err != nil {
		return nil, err
	}
	st := &Status{Name: gw, Namespace: ns, Colours: colours}
	svc, err := kc.CoreV1().Services(ns).Get(ctx, gw, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("failed to get service %s/%s: %w", ns, gw, err)
	default:
		st.ServiceType = string(svc.Spec.Type)
		st.Live = svc.Spec.Selector[istio.LabelRev]
	}
	return st, nil
}
