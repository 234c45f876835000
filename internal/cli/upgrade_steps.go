package cli

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/gateway"
)

// namespaceLabels reads every namespace's labels for selectors and wave
// ordering (the inventory keeps only injection labels).
func namespaceLabels(ctx context.Context, c controlplane.Clients) (map[string]map[string]string, error) {
	list, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to list namespaces: %w", err)
	}
	out := make(map[string]map[string]string, len(list.Items))
	for _, ns := range list.Items {
		out[ns.Name] = ns.Labels
	}
	return out, nil
}

// gateways moves every meshroll gateway whose Service selects from to a
// colour of to: install the colour when missing (same version as the target
// revision's chart), wait for it, flip the Service. It returns the gateways
// it flipped so a rollback can flip them back.
func (u *upgradeRun) gateways(ctx context.Context, from, to string) ([]gateway.Status, error) {
	list, err := u.c.Kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{LabelSelector: gateway.LabelGateway})
	if err != nil {
		return nil, fmt.Errorf("failed to list gateways: %w", err)
	}
	seen := map[string]bool{}
	var flipped []gateway.Status
	for _, d := range list.Items {
		gw, ns := d.Labels[gateway.LabelGateway], d.Namespace
		if seen[ns+"/"+gw] {
			continue
		}
		seen[ns+"/"+gw] = true
		st, err := gateway.Read(ctx, u.c.Kube, ns, gw)
		if err != nil {
			return flipped, err
		}
		if st.Live != from {
			continue
		}
		// The target colour is (re)applied from the run's chart source; a
		// colour flipped back to already exists (it served before) and is
		// not re-rendered, since --charts holds only the target's charts.
		if to == u.to || !hasColour(st, to) {
			gc := gateway.Clients{Kube: u.c.Kube, Dynamic: u.c.Dynamic}
			if _, err := gateway.Install(ctx, gc, gateway.InstallOptions{Name: gw, Namespace: ns, Revision: to, Cache: u.cache, Source: u.source}); err != nil {
				return flipped, err
			}
		}
		start := time.Now()
		res, err := gateway.Switch(ctx, u.c.Kube, gateway.SwitchOptions{Name: gw, Namespace: ns, To: to})
		if err != nil {
			return flipped, err
		}
		fmt.Fprintf(u.w, "step gateways: %s/%s now selects %s (was %s) in %s\n", ns, gw, res.To, res.From, time.Since(start).Round(time.Millisecond))
		flipped = append(flipped, *st)
	}
	if len(flipped) == 0 {
		fmt.Fprintf(u.w, "step gateways: no meshroll gateway serves %s\n", from)
	}
	return flipped, nil
}

// hasColour reports whether a gateway has a colour of revision rev.
func hasColour(st *gateway.Status, rev string) bool {
	for _, c := range st.Colours {
		if c.Revision == rev {
			return true
		}
	}
	return false
}
