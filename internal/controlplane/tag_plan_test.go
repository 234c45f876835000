package controlplane

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
)

// tagFixture is a mesh with three revisions, two tags and workloads whose
// injection resolves through each labelling style.
func tagFixture() *inventory.Snapshot {
	rev := func(name, version string) inventory.Revision {
		return inventory.Revision{Name: name, Version: version, InjectorWebhooks: []string{injectorWebhookName(name)}}
	}
	proxy := func(version string, pods int) inventory.ProxyGroup {
		return inventory.ProxyGroup{Version: version, Image: "docker.io/istio/proxyv2:" + version, Pods: pods}
	}
	return &inventory.Snapshot{
		Revisions: []inventory.Revision{rev("1-21-0", "1.21.0"), rev("1-23-2", "1.23.2"), rev("1-24-2", "1.24.2"), rev("1-26-1", "1.26.1")},
		Tags: []inventory.Tag{
			{Name: "default", Revision: "1-23-2", Webhook: "istio-revision-tag-default"},
			{Name: "prod-canary", Revision: "1-24-2", Webhook: "istio-revision-tag-prod-canary"},
		},
		DefaultRevision: "1-23-2",
		Namespaces: []inventory.Namespace{
			{Name: "canary", RevLabel: "prod-canary", HasRevLabel: true},
			{Name: "direct", RevLabel: "1-24-2", HasRevLabel: true},
			{Name: "legacy", InjectionLabel: "enabled", HasInjectionLabel: true},
			{Name: "plain"},
		},
		Workloads: []inventory.Workload{
			{Kind: "Deployment", Namespace: "canary", Name: "api", Proxies: []inventory.ProxyGroup{proxy("1.24.2", 3)}},
			{Kind: "Deployment", Namespace: "direct", Name: "db", Proxies: []inventory.ProxyGroup{proxy("1.24.2", 1)}},
			{Kind: "Deployment", Namespace: "legacy", Name: "web", Proxies: []inventory.ProxyGroup{proxy("1.23.2", 2)}},
			// The pod label selects the tag because the namespace has none.
			{Kind: "StatefulSet", Namespace: "plain", Name: "cache", TemplateRev: "prod-canary", Proxies: []inventory.ProxyGroup{proxy("1.24.2", 1)}},
			{Kind: "Deployment", Namespace: "plain", Name: "bare", Proxies: []inventory.ProxyGroup{{Pods: 1}}},
		},
	}
}

func TestPlanTag(t *testing.T) {
	tests := []struct {
		name      string
		req       TagRequest
		wantErr   string
		previous  string
		ns        []string
		workloads []string // namespace/name@proxy:level
	}{
		{name: "new tag", req: TagRequest{Tag: "prod-stable", Revision: "1-23-2"}},
		{name: "same revision is idempotent", req: TagRequest{Tag: "prod-canary", Revision: "1-24-2"}, previous: "1-24-2",
			ns: []string{"canary"}, workloads: []string{"canary/api@1.24.2:none", "plain/cache@1.24.2:none"}},
		{name: "move needs overwrite", req: TagRequest{Tag: "prod-canary", Revision: "1-26-1"}, wantErr: "pass --overwrite"},
		{name: "move forward within skew", req: TagRequest{Tag: "prod-canary", Revision: "1-26-1", Overwrite: true}, previous: "1-24-2",
			ns: []string{"canary"}, workloads: []string{"canary/api@1.24.2:behind", "plain/cache@1.24.2:behind"}},
		{name: "move back puts proxies ahead", req: TagRequest{Tag: "prod-canary", Revision: "1-23-2", Overwrite: true},
			wantErr: "Deployment canary/api (3 pod(s), proxy 1.24.2): proxy 1.24.2 is newer than its control plane 1.23.2"},
		{name: "forced move back", req: TagRequest{Tag: "prod-canary", Revision: "1-23-2", Overwrite: true, Force: true}, previous: "1-24-2",
			ns: []string{"canary"}, workloads: []string{"canary/api@1.24.2:unsupported", "plain/cache@1.24.2:unsupported"}},
		{name: "default tag moves istio-injection namespaces", req: TagRequest{Tag: "default", Revision: "1-24-2", Overwrite: true}, previous: "1-23-2",
			ns: []string{"legacy"}, workloads: []string{"legacy/web@1.23.2:behind"}},
		{name: "default tag too far ahead", req: TagRequest{Tag: "default", Revision: "1-26-1", Overwrite: true},
			wantErr: "trails control plane 1.26.1 by 3 minor releases"},
		{name: "invalid name", req: TagRequest{Tag: "Prod_Stable", Revision: "1-23-2"}, wantErr: `invalid tag name "Prod_Stable"`},
		{name: "shadows a revision", req: TagRequest{Tag: "1-24-2", Revision: "1-23-2"}, wantErr: "a revision of that name is installed"},
		{name: "revision not installed", req: TagRequest{Tag: "prod-stable", Revision: "1-99-0"}, wantErr: `revision "1-99-0" is not installed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanTag(tagFixture(), tt.req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Previous != tt.previous {
				t.Errorf("previous = %q, want %q", p.Previous, tt.previous)
			}
			var got []string
			for _, m := range p.Workloads {
				got = append(got, m.Namespace+"/"+m.Name+"@"+m.ProxyVersion+":"+string(m.Skew.Level))
			}
			if diff := cmp.Diff(tt.ns, p.Namespaces); diff != "" {
				t.Errorf("namespaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.workloads, got); diff != "" {
				t.Errorf("workloads (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTagUsersOfNewTag(t *testing.T) {
	snap := tagFixture()
	snap.Namespaces = append(snap.Namespaces, inventory.Namespace{Name: "stable", RevLabel: "prod-stable", HasRevLabel: true})
	ns, _ := TagUsers(snap, "prod-stable", plan.MustParseVersion("1.23.2"))
	if diff := cmp.Diff([]string{"stable"}, ns); diff != "" {
		t.Errorf("namespaces waiting for a new tag (-want +got):\n%s", diff)
	}
}

func TestListTags(t *testing.T) {
	got := ListTags(tagFixture())
	want := []TagInfo{
		{Tag: "default", Revision: "1-23-2", Webhook: "istio-revision-tag-default", Namespaces: []string{"legacy"}},
		{Tag: "prod-canary", Revision: "1-24-2", Webhook: "istio-revision-tag-prod-canary", Namespaces: []string{"canary"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListTags (-want +got):\n%s", diff)
	}
}

func TestPlanRemoveTag(t *testing.T) {
	tests := []struct {
		name    string
		tag     string
		force   bool
		wantErr string
		webhook string
	}{
		{name: "in use", tag: "prod-canary", wantErr: "namespaces still use it (canary)"},
		{name: "forced", tag: "prod-canary", force: true, webhook: "istio-revision-tag-prod-canary"},
		{name: "unknown", tag: "prod-stable", wantErr: "no such tag (tags: default, prod-canary)"},
		{name: "invalid", tag: "a.b", wantErr: "invalid tag name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, webhook, err := PlanRemoveTag(tagFixture(), tt.tag, tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if webhook != tt.webhook || res.Revision != "1-24-2" {
				t.Errorf("webhook %q revision %q", webhook, res.Revision)
			}
		})
	}
}

func TestDeactivateInjector(t *testing.T) {
	w := &admissionv1.MutatingWebhookConfiguration{Webhooks: []admissionv1.MutatingWebhook{
		{Name: "namespace.sidecar-injector.istio.io", NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"istio-injection": "enabled"}}},
		{Name: "object.sidecar-injector.istio.io"},
	}}
	if !DeactivateInjector(w) {
		t.Fatal("first deactivation reported no change")
	}
	for _, h := range w.Webhooks {
		if !isNeverMatch(h.NamespaceSelector) || !isNeverMatch(h.ObjectSelector) {
			t.Errorf("webhook %s selectors = %v / %v", h.Name, h.NamespaceSelector, h.ObjectSelector)
		}
	}
	if DeactivateInjector(w) {
		t.Error("second deactivation reported a change")
	}
}

func TestContainsFields(t *testing.T) {
	live := map[string]any{
		"metadata": map[string]any{"name": "w", "labels": map[string]any{"istio.io/rev": "1-24-2"}, "resourceVersion": "7"},
		"webhooks": []any{map[string]any{"name": "a", "timeoutSeconds": int64(10), "clientConfig": map[string]any{"url": "https://x"}}},
	}
	tests := []struct {
		name string
		want map[string]any
		ok   bool
	}{
		{"subset", map[string]any{"metadata": map[string]any{"name": "w"}, "webhooks": []any{map[string]any{"name": "a"}}}, true},
		{"numbers across types", map[string]any{"webhooks": []any{map[string]any{"timeoutSeconds": float64(10)}}}, true},
		{"label moved", map[string]any{"metadata": map[string]any{"labels": map[string]any{"istio.io/rev": "1-25-1"}}}, false},
		{"new field", map[string]any{"metadata": map[string]any{"annotations": map[string]any{"a": "b"}}}, false},
		{"list length", map[string]any{"webhooks": []any{map[string]any{}, map[string]any{}}}, false},
		{"nil is absent", map[string]any{"metadata": map[string]any{"creationTimestamp": nil}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContainsFields(live, tt.want); got != tt.ok {
				t.Errorf("ContainsFields = %t, want %t", got, tt.ok)
			}
		})
	}
}
