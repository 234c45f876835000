package check

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

func TestRunClean(t *testing.T) {
	if got := Run(cleanSnapshot()); len(got) != 0 {
		t.Fatalf("Run(clean) = %+v, want no findings", got)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(s *inventory.Snapshot)
		code    string // expected code; "" = no finding at all
		object  string
		sev     Severity
		message string // substring
	}{
		{name: "namespace with both labels", code: CodeNamespaceBothLabels, object: "Namespace/legacy", sev: Warning,
			mutate: func(s *inventory.Snapshot) { s.Namespaces[0].RevLabel, s.Namespaces[0].HasRevLabel = "prod", true }},
		{name: "namespace with only a rev label passes", code: "",
			mutate: func(s *inventory.Snapshot) {
				s.Namespaces[0] = inventory.Namespace{Name: "legacy", RevLabel: "1-23-2", HasRevLabel: true,
					Injection: istio.Injection{Injected: true, Revision: "1-23-2", Via: "1-23-2"}}
			}},

		{name: "pod rev overridden by istio-injection", code: CodePodRevOverridden, object: "Deployment/legacy/web", sev: Warning,
			message: "istio.io/rev=1-22-1 on 3 pod(s)",
			mutate:  func(s *inventory.Snapshot) { workload(s, "legacy", "web").TemplateRev = "1-22-1" }},
		{name: "pod rev overridden by namespace rev", code: CodePodRevOverridden, object: "Deployment/old/api", sev: Warning,
			mutate: func(s *inventory.Snapshot) { workload(s, "old", "api").TemplateRev = "prod" }},
		{name: "pod rev agreeing with the namespace today is still overridden", code: CodePodRevOverridden,
			object: "Deployment/prod/shop", sev: Warning, message: "both select revision 1-23-2 today",
			mutate: func(s *inventory.Snapshot) { workload(s, "prod", "shop").TemplateRev = "1-23-2" }},

		{name: "namespace rev naming no revision or tag", code: CodeNamespaceRevisionMissing, object: "Namespace/old", sev: Error,
			message: "istio.io/rev=1-21-0",
			mutate:  func(s *inventory.Snapshot) { s.Namespaces[1].RevLabel = "1-21-0" }},
		{name: "namespace rev naming a tag passes", code: "",
			mutate: func(s *inventory.Snapshot) { s.Namespaces[1].RevLabel = "prod" }},
		{name: "pod rev in unlabelled namespace is not overridden", code: CodeNamespaceNotInjected, object: "Namespace/plain", sev: Info,
			message: "1 pod(s) run without sidecars",
			mutate: func(s *inventory.Snapshot) {
				s.Namespaces[2] = inventory.Namespace{Name: "plain", Injection: istio.Injection{Reason: "no injection label"}}
				workload(s, "plain", "db").TemplateRev = "1-22-1"
				workload(s, "plain", "db").Proxies[0].ExpectedReason = "no injection label"
			}},

		{name: "stale proxy", code: CodeProxyStale, object: "Deployment/old/api", sev: Warning, message: "2 pod(s)",
			mutate: func(s *inventory.Snapshot) {
				workload(s, "old", "api").Proxies[0].WantImage = "docker.io/istio/proxyv2:1.22.2"
			}},
		{name: "proxy image with unknown injector image passes", code: "",
			mutate: func(s *inventory.Snapshot) { workload(s, "old", "api").Proxies[0].WantImage = "" }},

		{name: "sidecar missing in injected namespace", code: CodeSidecarMissing, object: "Deployment/prod/shop", sev: Warning, message: "2 pod(s)",
			mutate: func(s *inventory.Snapshot) {
				w := workload(s, "prod", "shop")
				w.Proxies = append(w.Proxies, inventory.ProxyGroup{Expected: "1-23-2", ExpectedReason: "namespace label", Pods: 2})
			}},
		{name: "opted-out pods without sidecar pass", code: "",
			mutate: func(s *inventory.Snapshot) {
				w := workload(s, "prod", "shop")
				w.Proxies = append(w.Proxies, inventory.ProxyGroup{ExpectedReason: "pod label sidecar.istio.io/inject=false opts out", Pods: 2})
			}},

		{name: "proxies on a removed revision", code: CodeRevisionMissing, object: "Deployment/old/api", sev: Error, message: "2 pod(s)",
			mutate: func(s *inventory.Snapshot) {
				s.Revisions = s.Revisions[1:]
				s.Namespaces[1].Injection = s.Namespaces[2].Injection
			}},
		{name: "revision with only a leftover configmap counts as removed", code: CodeRevisionMissing, object: "Deployment/old/api", sev: Error,
			mutate: func(s *inventory.Snapshot) {
				s.Revisions[0].Deployment, s.Revisions[0].InjectorWebhooks = "", nil
				s.Namespaces[1].Injection = s.Namespaces[2].Injection
			}},

		{name: "proxy newer than its control plane", code: CodeSkewUnsupported, object: "Deployment/old/api", sev: Error, message: "newer",
			mutate: func(s *inventory.Snapshot) {
				g := &workload(s, "old", "api").Proxies[0]
				g.Image, g.Version, g.WantImage = "docker.io/istio/proxyv2:1.23.2", "1.23.2", "docker.io/istio/proxyv2:1.23.2"
			}},
		{name: "proxy three minors behind", code: CodeSkewUnsupported, object: "Deployment/prod/shop", sev: Error, message: "3 minor",
			mutate: func(s *inventory.Snapshot) {
				g := &workload(s, "prod", "shop").Proxies[0]
				g.Image, g.Version, g.WantImage = "docker.io/istio/proxyv2:1.20.0", "1.20.0", "docker.io/istio/proxyv2:1.20.0"
			}},
		{name: "proxy one minor behind is info", code: CodeSkewBehind, object: "Deployment/prod/shop", sev: Info,
			mutate: func(s *inventory.Snapshot) {
				g := &workload(s, "prod", "shop").Proxies[0]
				g.Image, g.Version, g.WantImage = oldImage, "1.22.1", oldImage
			}},

		{name: "meshed bare pod", code: CodeWorkloadNotRestartable, object: "Pod/prod/debug", sev: Warning, message: "1 meshed pod(s)",
			mutate: func(s *inventory.Snapshot) {
				s.Workloads = append(s.Workloads, inventory.Workload{Kind: "Pod", Namespace: "prod", Name: "debug", RestartReason: "bare pod",
					Proxies: []inventory.ProxyGroup{{Revision: "1-23-2", Image: newImage, Version: "1.23.2", Expected: "1-23-2", Pods: 1}}})
			}},
		{name: "meshed OnDelete statefulset", code: CodeWorkloadNotRestartable, object: "StatefulSet/prod/kafka", sev: Warning,
			mutate: func(s *inventory.Snapshot) {
				s.Workloads = append(s.Workloads, inventory.Workload{Kind: "StatefulSet", Namespace: "prod", Name: "kafka", RestartReason: "OnDelete",
					Proxies: []inventory.ProxyGroup{{Revision: "1-23-2", Image: newImage, Version: "1.23.2", Expected: "1-23-2", Pods: 3}}})
			}},
		{name: "unmeshed bare pod passes", code: "",
			mutate: func(s *inventory.Snapshot) {
				s.Workloads = append(s.Workloads, inventory.Workload{Kind: "Pod", Namespace: "plain", Name: "debug", RestartReason: "bare pod",
					Proxies: []inventory.ProxyGroup{{Pods: 1}}})
			}},

		{name: "terminated pods pin a revision", code: CodeTerminatedPodsPin, object: "Job/plain/batch", sev: Warning, message: "2 terminated",
			mutate: func(s *inventory.Snapshot) {
				workload(s, "plain", "batch").Proxies = []inventory.ProxyGroup{{Revision: "1-22-1", Image: oldImage, Version: "1.22.1", Terminated: 2}}
			}},

		{name: "webhook service missing", code: CodeWebhookServiceMissing, object: "MutatingWebhookConfiguration/istio-sidecar-injector-1-22-1", sev: Error,
			mutate: func(s *inventory.Snapshot) { s.Webhooks[1].ServiceExists = false }},
		{name: "tag webhook service missing", code: CodeWebhookServiceMissing, object: "MutatingWebhookConfiguration/istio-revision-tag-default", sev: Error,
			message: "revision tag default", mutate: func(s *inventory.Snapshot) { s.Webhooks[0].ServiceExists = false }},

		{name: "tag pointing at a missing revision", code: CodeTagRevisionMissing, object: "Tag/prod", sev: Error,
			mutate: func(s *inventory.Snapshot) { s.Tags[1].Revision = "1-21-0" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cleanSnapshot()
			tt.mutate(s)
			got := Run(s)
			if tt.code == "" {
				if len(got) != 0 {
					t.Fatalf("Run() = %+v, want no findings", got)
				}
				return
			}
			i := slices.IndexFunc(got, func(f Finding) bool { return f.Code == tt.code && f.Object == tt.object })
			if i < 0 {
				t.Fatalf("Run() = %+v, want a %s finding on %s", got, tt.code, tt.object)
			}
			f := got[i]
			if f.Severity != tt.sev {
				t.Errorf("severity = %s, want %s", f.Severity, tt.sev)
			}
			if !strings.Contains(f.Message, tt.message) {
				t.Errorf("message %q does not contain %q", f.Message, tt.message)
			}
			if f.Fix == "" || strings.Contains(f.Fix, "\n") {
				t.Errorf("fix %q is not one line", f.Fix)
			}
			for _, g := range got {
				if g.Code == tt.code && g.Object == tt.object && g != f {
					t.Errorf("duplicate finding %+v", g)
				}
			}
		})
	}
}

func TestRunDeterministic(t *testing.T) {
	s := cleanSnapshot()
	s.Webhooks[0].ServiceExists = false
	s.Webhooks[1].ServiceExists = false
	s.Namespaces[0].HasRevLabel, s.Namespaces[0].RevLabel = true, "prod"
	workload(s, "old", "api").Proxies[0].WantImage = "x"
	first := Run(s)
	if len(first) < 4 {
		t.Fatalf("Run() = %d findings, want at least 4", len(first))
	}
	if first[0].Severity != Error || first[len(first)-1].Severity == Error {
		t.Errorf("findings not ordered errors first: %+v", first)
	}
	for range 10 {
		if diff := cmp.Diff(first, Run(s)); diff != "" {
			t.Fatalf("Run() not deterministic (-first +again):\n%s", diff)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		sevs []Severity
		want int
	}{
		{nil, 0},
		{[]Severity{Info}, 0},
		{[]Severity{Info, Warning}, 1},
		{[]Severity{Warning, Error, Info}, 2},
		{[]Severity{Error}, 2},
	}
	for _, tt := range tests {
		var fs []Finding
		for _, s := range tt.sevs {
			fs = append(fs, Finding{Severity: s})
		}
		if got := ExitCode(fs); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.sevs, got, tt.want)
		}
	}
}
