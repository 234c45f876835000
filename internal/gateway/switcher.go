package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/meshroll/meshroll/internal/istio"
)

// Live is one meshroll gateway and the colour its Service selects now.
type Live struct {
	Namespace, Name string
	// Revision is the colour the Service selects; "" when not exposed.
	Revision string
}

// Switcher flips meshroll's blue/green gateways between colours for an
// upgrade: it is what the upgrade's gateways step and its undo call, so the
// engine records which gateways moved while the executor does the writes.
type Switcher struct {
	Clients Clients
	// Source and Cache render a missing colour (the run's --charts or
	// --repo, so an air-gapped run never downloads half way).
	Source istio.ChartSource
	Cache  *istio.RenderCache
	// Timeout bounds the wait for a colour to be ready; 0 = 5m.
	Timeout time.Duration
}

// List returns every meshroll gateway (a Deployment labelled
// meshroll.io/gateway) with the colour its Service selects, sorted.
func (s *Switcher) List(ctx context.Context) ([]Live, error) {
	list, err := s.Clients.Kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: LabelGateway})
	if err != nil {
		return nil, fmt.Errorf("failed to list gateways: %w", err)
	}
	seen := map[string]bool{}
	var out []Live
	for _, d := range list.Items {
		gw, ns := d.Labels[LabelGateway], d.Namespace
		if seen[ns+"/"+gw] {
			continue
		}
		seen[ns+"/"+gw] = true
		st, err := Read(ctx, s.Clients.Kube, ns, gw)
		if err != nil {
			return nil, err
		}
		out = append(out, Live{Namespace: ns, Name: gw, Revision: st.Live})
	}
	slices.SortFunc(out, func(a, b Live) int {
		if c := compareStrings(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return compareStrings(a.Name, b.Name)
	})
	return out, nil
}

// Switch points the gateway's Service at colour to once that colour is fully
// ready, installing the colour first when it is missing or not ready. It writes nothing
// when the Service already selects to, so a step resumed after a kill
// between the flip and its record only confirms it.
func (s *Switcher) Switch(ctx context.Context, namespace, name, to string) error {
	st, err := Read(ctx, s.Clients.Kube, namespace, name)
	if err != nil {
		return err
	}
	if st.Live == to {
		return nil
	}
	// A colour that is missing, or not ready (an install cut short by a
	// kill can leave its Deployment without its ServiceAccount), is
	// (re)applied: the apply is idempotent and waits until it is ready.
	if !slices.ContainsFunc(st.Colours, func(c Colour) bool { return c.Revision == to && c.Ready() }) {
		if _, err := Install(ctx, s.Clients, InstallOptions{Name: name, Namespace: namespace, Revision: to,
			Timeout: s.Timeout, Source: s.Source, Cache: s.Cache}); err != nil {
			return err
		}
	}
	_, err = Switch(ctx, s.Clients.Kube, SwitchOptions{Name: name, Namespace: namespace, To: to, Timeout: s.Timeout})
	return err
}

// RemoveColour deletes colour rev of a gateway (the objects its chart
// rendered, all named DeploymentName(name, rev)) once its Service selects
// another colour: the prune step removes the old colour of every gateway
// the upgrade flipped, since its pods keep the old revision in use. Objects
// already gone are fine, so a prune resumed after a kill finishes the job.
func (s *Switcher) RemoveColour(ctx context.Context, namespace, name, rev string) error {
	st, err := Read(ctx, s.Clients.Kube, namespace, name)
	if err != nil {
		return err
	}
	if st.Live == rev {
		return fmt.Errorf("refusing to remove colour %q of gateway %s/%s: its service still selects it", rev, namespace, name)
	}
	obj := DeploymentName(name, rev)
	kc := s.Clients.Kube
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	deletes := []struct {
		kind string
		del  func() error
	}{
		{"Deployment", func() error { return kc.AppsV1().Deployments(namespace).Delete(ctx, obj, opts) }},
		{"HorizontalPodAutoscaler", func() error { return kc.AutoscalingV2().HorizontalPodAutoscalers(namespace).Delete(ctx, obj, opts) }},
		{"PodDisruptionBudget", func() error { return kc.PolicyV1().PodDisruptionBudgets(namespace).Delete(ctx, obj, opts) }},
		{"NetworkPolicy", func() error { return kc.NetworkingV1().NetworkPolicies(namespace).Delete(ctx, obj, opts) }},
		{"Service", func() error { return kc.CoreV1().Services(namespace).Delete(ctx, obj, opts) }},
		{"RoleBinding", func() error { return kc.RbacV1().RoleBindings(namespace).Delete(ctx, obj, opts) }},
		{"Role", func() error { return kc.RbacV1().Roles(namespace).Delete(ctx, obj, opts) }},
		{"ServiceAccount", func() error { return kc.CoreV1().ServiceAccounts(namespace).Delete(ctx, obj, opts) }},
	}
	for _, d := range deletes {
		if err := d.del(); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to delete %s %q: %w", d.kind, namespace+"/"+obj, err)
		}
	}
	// Its pods keep the revision in use until they are gone.
	timeout := s.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	sel := metav1.ListOptions{LabelSelector: LabelGateway + "=" + name + "," + istio.LabelRev + "=" + rev}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := kc.CoreV1().Pods(namespace).List(ctx, sel)
		return err == nil && len(pods.Items) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("failed to wait for the pods of gateway %s/%s colour %q to go: %w", namespace, name, rev, err)
	}
	return nil
}
