package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
