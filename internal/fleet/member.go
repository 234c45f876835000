package fleet

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/gate"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// ObserveMember is the real observation of one member: can it be reached,
// what phase its MeshUpgrade is in, and whether its workloads are ready
// (the readiness gate every cluster and stage soak re-checks). The pod mix
// per proxy version is counted from the pods' istio-proxy images.
func ObserveMember(ctx context.Context, c Cluster, upgradeName, version string, now time.Time) Observation {
	cfg, err := c.RESTConfig()
	if err != nil {
		return Observation{Err: err.Error()}
	}
	cfg.Timeout = 15 * time.Second
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Observation{Err: err.Error()}
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return Observation{Err: err.Error()}
	}
	var o Observation
	var gates []v1alpha1.FleetGate
	mu, err := upgrade.Store{Dynamic: dc}.Get(ctx, upgradeName)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return Observation{Err: fmt.Sprintf("cannot reach cluster %q at %s (%s): %v", c.Name, cfg.Host, c.Source, err)}
	default:
		o.Phase, o.Message = mu.Status.Phase, mu.Status.Message
		if o.Phase == v1alpha1.PhaseSucceeded {
			gates = PrometheusGates(ctx, mu, now)
		}
	}
	deps, err := kc.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return Observation{Err: fmt.Sprintf("cannot reach cluster %q at %s (%s): %v", c.Name, cfg.Host, c.Source, err)}
	}
	o.Gates = append([]v1alpha1.FleetGate{readiness(deps.Items, now)}, gates...)
	if o.Mix, err = proxyMix(ctx, kc); err != nil {
		return Observation{Err: fmt.Sprintf("cannot list pods of cluster %q: %v", c.Name, err)}
	}
	sidecars := 0
	o.UpToDate = true
	for v, n := range o.Mix {
		if v != "none" {
			sidecars += n
			o.UpToDate = o.UpToDate && v == version
		}
	}
	o.UpToDate = o.UpToDate && sidecars > 0
	return o
}

// PrometheusGates evaluates the member MeshUpgrade's own Prometheus gates
// (the --gate flags it ran with, against its Prometheus) again, so they must
// keep holding through the fleet's cluster and stage soaks. A measurement
// error is not a failed check (the Prometheus may be restarting): it is
// recorded as evidence and does not fail the soak.
func PrometheusGates(ctx context.Context, mu *v1alpha1.MeshUpgrade, now time.Time) []v1alpha1.FleetGate {
	var out []v1alpha1.FleetGate
	if mu.Spec.PrometheusURL == "" {
		return nil
	}
	runner, err := gate.NewRunner(mu.Spec.PrometheusURL)
	if err != nil {
		return []v1alpha1.FleetGate{{Name: "prometheus", Passed: true, At: metav1.NewTime(now), Evidence: "not measured: " + err.Error()}}
	}
	for _, g := range mu.Spec.Gates {
		if g.Prometheus == nil {
			continue
		}
		ok, ev, err := runner.Evaluate(ctx, g, 0)
		if err != nil {
			ok, ev = true, "not measured (not a failed check): "+err.Error()
		}
		out = append(out, v1alpha1.FleetGate{Name: g.Name, Passed: ok, Evidence: ev, At: metav1.NewTime(now)})
	}
	return out
}

// readiness passes when every Deployment of the member has rolled out and
// is available, as the member's own readiness gate judges one.
func readiness(deps []appsv1.Deployment, now time.Time) v1alpha1.FleetGate {
	var bad []string
	for i := range deps {
		if r, _ := dataplane.Judge(&deps[i]); !r.Done {
			bad = append(bad, deps[i].Namespace+"/"+deps[i].Name+": "+r.Message)
		}
	}
	g := v1alpha1.FleetGate{Name: "readiness", Passed: len(bad) == 0, At: metav1.NewTime(now),
		Evidence: fmt.Sprintf("%d/%d Deployments rolled out and available", len(deps)-len(bad), len(deps))}
	if len(bad) > 0 {
		g.Evidence += "; first not ready: " + bad[0]
	}
	return g
}

// proxyMix counts running pods per istio-proxy image tag ("none" without a
// sidecar).
func proxyMix(ctx context.Context, kc kubernetes.Interface) (map[string]int, error) {
	pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running"})
	if err != nil {
		return nil, err
	}
	mix := map[string]int{}
	for _, p := range pods.Items {
		v := "none"
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			if c.Name == "istio-proxy" {
				v = imageTag(c.Image)
			}
		}
		mix[v]++
	}
	return mix, nil
}

func imageTag(image string) string {
	for i := len(image) - 1; i >= 0; i-- {
		switch image[i] {
		case ':':
			return image[i+1:]
		case '/':
			return image
		}
	}
	return image
}
