package check

import (
	"fmt"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

const (
	oldImage = "docker.io/istio/proxyv2:1.22.1"
	newImage = "docker.io/istio/proxyv2:1.23.2"
)

// cleanSnapshot is a healthy mesh mid-upgrade-free: two revisions, a prod tag
// on the new one, one namespace per labelling style, every proxy current.
func cleanSnapshot() *inventory.Snapshot {
	return &inventory.Snapshot{
		DefaultRevision: "1-23-2",
		Revisions: []inventory.Revision{
			{Name: "1-22-1", Version: "1.22.1", Deployment: "istiod-1-22-1", ReadyReplicas: 1, DesiredReplicas: 1,
				InjectorWebhooks: []string{"istio-sidecar-injector-1-22-1"}, ProxyImage: oldImage,
				Service: "istiod-1-22-1", ServiceExists: true},
			{Name: "1-23-2", Version: "1.23.2", Deployment: "istiod-1-23-2", ReadyReplicas: 1, DesiredReplicas: 1,
				InjectorWebhooks: []string{"istio-sidecar-injector-1-23-2"}, ProxyImage: newImage,
				Tags: []string{"default", "prod"}, Default: true, Service: "istiod-1-23-2", ServiceExists: true},
		},
		Tags: []inventory.Tag{
			{Name: "default", Revision: "1-23-2", Webhook: "istio-revision-tag-default"},
			{Name: "prod", Revision: "1-23-2", Webhook: "istio-revision-tag-prod"},
		},
		Namespaces: []inventory.Namespace{
			{Name: "legacy", InjectionLabel: "enabled", HasInjectionLabel: true,
				Injection: istio.Injection{Injected: true, Revision: "1-23-2", Via: "default"}},
			{Name: "old", RevLabel: "1-22-1", HasRevLabel: true,
				Injection: istio.Injection{Injected: true, Revision: "1-22-1", Via: "1-22-1"}},
			{Name: "plain", InjectionLabel: "disabled", HasInjectionLabel: true,
				Injection: istio.Injection{Reason: "namespace label istio-injection=disabled opts out"}},
			{Name: "prod", RevLabel: "prod", HasRevLabel: true,
				Injection: istio.Injection{Injected: true, Revision: "1-23-2", Via: "prod"}},
		},
		Workloads: []inventory.Workload{
			deployment("legacy", "web", inventory.ProxyGroup{Revision: "1-23-2", Image: newImage, WantImage: newImage, Version: "1.23.2", Expected: "1-23-2", Pods: 3}),
			deployment("old", "api", inventory.ProxyGroup{Revision: "1-22-1", Image: oldImage, WantImage: oldImage, Version: "1.22.1", Expected: "1-22-1", Pods: 2}),
			deployment("plain", "db", inventory.ProxyGroup{Pods: 1, ExpectedReason: "namespace label istio-injection=disabled opts out"}),
			deployment("prod", "shop", inventory.ProxyGroup{Revision: "1-23-2", Image: newImage, WantImage: newImage, Version: "1.23.2", Expected: "1-23-2", Pods: 4}),
			{Kind: "Job", Namespace: "plain", Name: "batch", RestartReason: "a Job's pods run to completion",
				Proxies: []inventory.ProxyGroup{{Terminated: 1}}},
		},
		Webhooks: []inventory.Webhook{
			{Kind: "MutatingWebhookConfiguration", Name: "istio-revision-tag-default", Revision: "1-23-2", Tag: "default",
				Service: "istio-system/istiod-1-23-2:443/inject", ServiceExists: true},
			{Kind: "MutatingWebhookConfiguration", Name: "istio-sidecar-injector-1-22-1", Revision: "1-22-1",
				Service: "istio-system/istiod-1-22-1:443/inject", ServiceExists: true},
		},
		Pods: 11,
	}
}

func deployment(ns, name string, groups ...inventory.ProxyGroup) inventory.Workload {
	return inventory.Workload{Kind: "Deployment", Namespace: ns, Name: name, Restartable: true,
		RestartReason: "rollout restart replaces every pod of a Deployment", Proxies: groups}
}

// workload finds a fixture workload so a test case can break it.
func workload(s *inventory.Snapshot, ns, name string) *inventory.Workload {
	for i := range s.Workloads {
		if s.Workloads[i].Namespace == ns && s.Workloads[i].Name == name {
			return &s.Workloads[i]
		}
	}
	panic(fmt.Sprintf("no fixture workload %s/%s", ns, name))
}
