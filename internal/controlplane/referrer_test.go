package controlplane

import (
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

const refRev = "1-24-2"

func TestReferrers(t *testing.T) {
	istiod := inventory.Workload{Kind: "Deployment", Namespace: "istio-system", Name: "istiod-" + refRev, TemplateRev: refRev}
	tests := []struct {
		name  string
		snap  inventory.Snapshot
		owned []ObjectRef
		// want are "kind object" pairs in order.
		want []string
	}{
		{name: "free", snap: inventory.Snapshot{
			Revisions: []inventory.Revision{{Name: refRev}},
			Workloads: []inventory.Workload{istiod, {Kind: "Deployment", Namespace: "a", Name: "old",
				Proxies: []inventory.ProxyGroup{{Revision: "1-23-2", Pods: 3}}}},
		}, owned: []ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "istio-system", Name: "istiod-" + refRev}}},
		{name: "running and terminated pods", snap: inventory.Snapshot{
			Workloads: []inventory.Workload{
				{Kind: "Deployment", Namespace: "a", Name: "web", Proxies: []inventory.ProxyGroup{{Revision: refRev, Pods: 2}}},
				{Kind: "Job", Namespace: "a", Name: "backup", Proxies: []inventory.ProxyGroup{{Revision: refRev, Terminated: 1}}},
				{Kind: "Pod", Namespace: "b", Name: "bare", Proxies: []inventory.ProxyGroup{{Revision: refRev, Pods: 1}}},
			},
		}, want: []string{"pods Deployment a/web", "pods Job a/backup", "pods Pod b/bare"}},
		{name: "unattributed sidecars of the revision's release refuse removal", snap: inventory.Snapshot{
			Revisions: []inventory.Revision{{Name: refRev, ProxyImage: "docker.io/istio/proxyv2:9.9.9"}},
			Workloads: []inventory.Workload{
				{Kind: "Deployment", Namespace: "a", Name: "mystery", Proxies: []inventory.ProxyGroup{{Revision: inventory.RevisionUnknown, Version: "9.9.9", Pods: 2}}},
				{Kind: "Deployment", Namespace: "a", Name: "other", Proxies: []inventory.ProxyGroup{{Revision: inventory.RevisionUnknown, Version: "1.0.0", Pods: 2}}},
			},
		}, want: []string{"pods Deployment a/mystery"}},
		{name: "gateway template outside istio-system, not owned", snap: inventory.Snapshot{
			Workloads: []inventory.Workload{istiod, {Kind: "Deployment", Namespace: "istio-ingress", Name: "gw", TemplateRev: refRev}},
		}, want: []string{"template Deployment istio-ingress/gw"}},
		{name: "owned gateway is not a referrer", snap: inventory.Snapshot{
			Workloads: []inventory.Workload{{Kind: "Deployment", Namespace: "istio-ingress", Name: "gw", TemplateRev: refRev,
				Proxies: []inventory.ProxyGroup{{Revision: refRev, Pods: 1}}}},
		}, owned: []ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "istio-ingress", Name: "gw"}}},
		{name: "namespaces by label, not by default", snap: inventory.Snapshot{
			Namespaces: []inventory.Namespace{
				{Name: "direct", RevLabel: refRev, HasRevLabel: true, Injection: istio.Injection{Injected: true, Revision: refRev, Via: refRev}},
				{Name: "legacy", InjectionLabel: "enabled", HasInjectionLabel: true, Injection: istio.Injection{Injected: true, Revision: refRev, Via: "default"}},
				{Name: "other", RevLabel: "1-23-2", HasRevLabel: true, Injection: istio.Injection{Injected: true, Revision: "1-23-2"}},
				{Name: "unlabelled", Injection: istio.Injection{Injected: true, Revision: refRev}},
			},
		}, want: []string{"namespace Namespace direct", "namespace Namespace legacy"}},
		{name: "tags; default tag covers the default injector", snap: inventory.Snapshot{
			Tags:            []inventory.Tag{{Name: "default", Revision: refRev, Webhook: "istio-revision-tag-default"}, {Name: "prod", Revision: refRev}, {Name: "canary", Revision: "1-25-1"}},
			DefaultRevision: refRev,
		}, want: []string{"tag tag default", "tag tag prod"}},
		{name: "default injector and validator without a tag", snap: inventory.Snapshot{
			DefaultRevision: refRev,
			Webhooks: []inventory.Webhook{
				{Kind: "ValidatingWebhookConfiguration", Name: "istiod-default-validator", Revision: refRev},
				{Kind: "ValidatingWebhookConfiguration", Name: "istio-validator-" + refRev + "-istio-system", Revision: refRev},
			},
		}, want: []string{"default-injector default injector", "default-validator ValidatingWebhookConfiguration istiod-default-validator"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Referrers(&tt.snap, refRev, tt.owned)
			var keys []string
			for _, r := range got {
				keys = append(keys, string(r.Kind)+" "+r.Object)
				if r.Fix == "" || r.Reason == "" || strings.Contains(r.Fix, "\n") {
					t.Errorf("referrer %+v lacks a one-line fix or a reason", r)
				}
			}
			if strings.Join(keys, "|") != strings.Join(tt.want, "|") {
				t.Errorf("referrers:\n got  %q\n want %q", keys, tt.want)
			}
		})
	}
}

func TestReferrersPodReason(t *testing.T) {
	s := &inventory.Snapshot{Workloads: []inventory.Workload{{Kind: "Job", Namespace: "a", Name: "j",
		Proxies: []inventory.ProxyGroup{{Revision: refRev, Pods: 1, Terminated: 2}}}}}
	got := Referrers(s, refRev, nil)
	if len(got) != 1 || !strings.Contains(got[0].Reason, "1 pod(s) and 2 completed/failed") || got[0].Fix != "kubectl -n a delete job j" {
		t.Errorf("referrers = %+v", got)
	}
}

func TestDangling(t *testing.T) {
	svc := "istio-system/istiod-" + refRev
	tests := []struct {
		name    string
		labels  map[string]string
		targets []string
		want    bool
	}{
		{"labelled", map[string]string{istio.LabelRev: refRev}, nil, true},
		{"calls the service", map[string]string{istio.LabelRev: "1-25-1"}, []string{"istio-system/istiod-1-25-1", svc}, true},
		{"other", map[string]string{istio.LabelRev: "1-25-1"}, []string{"istio-system/istiod-1-25-1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dangling(tt.labels, tt.targets, refRev, svc) != ""; got != tt.want {
				t.Errorf("dangling = %t, want %t", got, tt.want)
			}
		})
	}
}

// TestDefect3ReferrersTemplateOnly: a workload with no pods still references
// the revision its pod template names, so a prune is refused while a
// Deployment at 0 replicas or a CronJob between runs would start its next
// pod on it (without a sidecar once it is gone).
func TestDefect3ReferrersTemplateOnly(t *testing.T) {
	zero := int32(0)
	onRev := &inventory.Template{Replicas: &zero, Injection: istio.Injection{Injected: true, Revision: refRev, Via: refRev}}
	snap := inventory.Snapshot{Workloads: []inventory.Workload{
		{Kind: "Deployment", Namespace: "a", Name: "idle", TemplateRev: refRev, Template: onRev},
		{Kind: "CronJob", Namespace: "a", Name: "nightly", TemplateRev: refRev, Template: onRev},
		{Kind: "Deployment", Namespace: "a", Name: "moved", TemplateRev: "1-25-1", Template: &inventory.Template{Injection: istio.Injection{Injected: true, Revision: "1-25-1"}}},
	}}
	got := Referrers(&snap, refRev, nil)
	var keys []string
	for _, r := range got {
		keys = append(keys, string(r.Kind)+" "+r.Object)
		if !strings.Contains(r.Reason, "no pod now") {
			t.Errorf("reason %q does not say the workload has no pod", r.Reason)
		}
	}
	if want := "template Deployment a/idle|template CronJob a/nightly"; strings.Join(keys, "|") != want {
		t.Errorf("referrers %q, want %q", keys, want)
	}
}
