package check

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// shapes are the cluster shapes of issue #14, each a mutation of the clean
// fixture with the findings it must yield (code → object) and nothing else
// beyond what the clean fixture yields.
var shapes = []struct {
	name   string
	mutate func(s *inventory.Snapshot)
	want   map[string]string // code → object
	sev    map[string]Severity
}{
	{name: "opt-out namespace with a revision label is no conflict (defect 1)",
		mutate: func(s *inventory.Snapshot) { s.Namespaces[2].RevLabel, s.Namespaces[2].HasRevLabel = "1-23-2", true }},
	{name: "enabled plus revision label is a conflict whose fix keeps today's injection",
		mutate: func(s *inventory.Snapshot) { s.Namespaces[0].RevLabel, s.Namespaces[0].HasRevLabel = "1-22-1", true },
		want:   map[string]string{CodeNamespaceBothLabels: "Namespace/legacy"}},
	{name: "pinned proxy image is not stale (defect 2)",
		mutate: func(s *inventory.Snapshot) {
			g := &workload(s, "prod", "shop").Proxies[0]
			g.Image, g.WantImage, g.WantImageReason = "my.registry/proxy:1.23.2-p1", "my.registry/proxy:1.23.2-p1", "pinned by annotation sidecar.istio.io/proxyImage"
		}},
	{name: "image auto pods are not stale sidecars (defect 3)",
		mutate: func(s *inventory.Snapshot) {
			w := workload(s, "prod", "shop")
			w.Template = &inventory.Template{ProxyImage: istio.AutoImage, Injection: istio.Injection{Injected: true, Revision: "1-23-2"}}
		}},
	{name: "distroless sidecar is not stale (defect 4)",
		mutate: func(s *inventory.Snapshot) {
			g := &workload(s, "prod", "shop").Proxies[0]
			g.Image, g.WantImage = newImage+"-distroless", newImage+"-distroless"
		}},
	{name: "ambient namespace with sidecar injection (defect 5)",
		mutate: func(s *inventory.Snapshot) { s.Namespaces[3].DataplaneMode = "ambient" },
		want:   map[string]string{CodeNamespaceAmbientSidecar: "Namespace/prod"}},
	{name: "ambient beside an injection opt-out is fine",
		mutate: func(s *inventory.Snapshot) { s.Namespaces[2].DataplaneMode = "ambient" }},
	{name: "unattributed sidecar is reported, not credited (defect 6)",
		mutate: func(s *inventory.Snapshot) {
			g := &workload(s, "prod", "shop").Proxies[0]
			g.Revision, g.Attribution, g.WantImage = inventory.RevisionUnknown, inventory.EvidenceNone, ""
		},
		want: map[string]string{CodeProxyRevisionUnknown: "Deployment/prod/shop"}},
	{name: "hand-injected unattributed sidecar: a restart would re-create it, so none is suggested",
		mutate: func(s *inventory.Snapshot) {
			w := workload(s, "prod", "shop")
			w.Template = &inventory.Template{ProxyImage: newImage, Injection: istio.Injection{Injected: true, Revision: "1-23-2"}}
			g := &w.Proxies[0]
			g.Revision, g.Attribution, g.WantImage = inventory.RevisionUnknown, inventory.EvidenceNone, ""
		},
		want: map[string]string{CodeProxyRevisionUnknown: "Deployment/prod/shop"}},
	{name: "tag with installer labels is deleted by istioctl's purge",
		mutate: func(s *inventory.Snapshot) {
			s.Tags[1].InstallerLabels = []string{"install.operator.istio.io/owning-resource", "operator.istio.io/component"}
		},
		want: map[string]string{CodeTagInstallerLabels: "Tag/prod"}},
	{name: "unlabelled namespace in an injected mesh",
		mutate: func(s *inventory.Snapshot) {
			s.Namespaces[2] = inventory.Namespace{Name: "plain", Injection: istio.Injection{Reason: "no injection label"}}
			workload(s, "plain", "db").Proxies[0].ExpectedReason = "no injection label"
		},
		want: map[string]string{CodeNamespaceNotInjected: "Namespace/plain"}, sev: map[string]Severity{CodeNamespaceNotInjected: Info}},
	{name: "unlabelled namespace injected by enableNamespacesByDefault",
		mutate: func(s *inventory.Snapshot) {
			s.EnableNamespacesByDefault = true
			s.Namespaces[2] = inventory.Namespace{Name: "plain", Injection: istio.Injection{Injected: true, Revision: "1-23-2", Via: "default",
				Reason: "enableNamespacesByDefault injects unlabelled namespaces with the default injector"}}
		},
		want: map[string]string{CodeNamespaceInjectedDefault: "Namespace/plain"}},
	{name: "istio-injection value nobody matches",
		mutate: func(s *inventory.Snapshot) { s.Namespaces[0].InjectionLabel = "true" },
		want:   map[string]string{CodeNamespaceInjectionValue: "Namespace/legacy"}},
	{name: "gateway template with image auto in a namespace nothing injects",
		mutate: func(s *inventory.Snapshot) {
			w := workload(s, "plain", "db")
			w.Template = &inventory.Template{ProxyImage: istio.AutoImage, Injection: istio.Injection{Reason: "namespace label istio-injection=disabled opts out"}}
		},
		want: map[string]string{CodeProxyImageAuto: "Deployment/plain/db"}, sev: map[string]Severity{CodeProxyImageAuto: Warning}},
	{name: "bare pod with image auto never starts",
		mutate: func(s *inventory.Snapshot) {
			s.Workloads = append(s.Workloads, inventory.Workload{Kind: "Pod", Namespace: "plain", Name: "gw", RestartReason: "bare pod",
				Proxies: []inventory.ProxyGroup{{Image: istio.AutoImage, Pods: 1, ExpectedReason: "namespace label istio-injection=disabled opts out"}}})
		},
		want: map[string]string{CodeProxyImageAuto: "Pod/plain/gw"}, sev: map[string]Severity{CodeProxyImageAuto: Error}},
	{name: "stale sidecars roll up per namespace",
		mutate: func(s *inventory.Snapshot) {
			workload(s, "old", "api").Proxies[0].WantImage = "docker.io/istio/proxyv2:1.22.2"
		},
		want: map[string]string{CodeProxyStale: "Deployment/old/api", CodeNamespaceProxiesStale: "Namespace/old"}},
	{name: "opted-out pod whose rev label differs from the namespace's (#16 defect 3)",
		mutate: func(s *inventory.Snapshot) {
			w := workload(s, "prod", "shop")
			w.TemplateRev = "1-22-1"
			w.Template = &inventory.Template{Injection: istio.Injection{Reason: "pod label sidecar.istio.io/inject=false opts out"}}
		},
		want: map[string]string{CodePodRevOverridden: "Deployment/prod/shop"}, sev: map[string]Severity{CodePodRevOverridden: Info}},
}

func TestShapes(t *testing.T) {
	for _, tt := range shapes {
		t.Run(tt.name, func(t *testing.T) {
			s := cleanSnapshot()
			tt.mutate(s)
			got := map[string]string{}
			for _, f := range Run(s) {
				got[f.Code] = f.Object
				if want, ok := tt.sev[f.Code]; ok && f.Severity != want {
					t.Errorf("%s severity = %s, want %s", f.Code, f.Severity, want)
				}
				if tt.want[f.Code] != f.Object {
					t.Errorf("unexpected finding %+v", f)
				}
			}
			for code, obj := range tt.want {
				if got[code] != obj {
					t.Errorf("missing %s on %s", code, obj)
				}
			}
			assertFixesSafe(t, s, Run(s))
		})
	}
}

// TestOptedOutPodMessage pins the opted-out pod's message (#16 defect 3).
func TestOptedOutPodMessage(t *testing.T) {
	s := cleanSnapshot()
	shapes[len(shapes)-1].mutate(s)
	for _, f := range Run(s) {
		if f.Code == CodePodRevOverridden && !strings.Contains(f.Message, "no revision injects them") {
			t.Errorf("message %q does not say nothing injects the pods", f.Message)
		}
	}
}

// TestFindingsJSONIsAList pins #14 defect 7: a clean mesh is `[]`, never null.
func TestFindingsJSONIsAList(t *testing.T) {
	b, err := json.Marshal(Run(cleanSnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[]" {
		t.Errorf("Run(clean) as JSON = %s, want []", b)
	}
}

// assertFixesSafe checks the three promises every fix keeps: it never removes
// an opt-out, never restarts a workload whose pods a restart cannot change,
// and never names a revision or tag that is not installed.
func assertFixesSafe(t *testing.T, s *inventory.Snapshot, findings []Finding) {
	t.Helper()
	inj := s.Injectors()
	for _, f := range findings {
		fields := strings.Fields(f.Fix)
		for i, w := range fields {
			if w == "label" && i+2 < len(fields) && fields[i+1] == "namespace" {
				ns := s.Namespace(fields[i+2])
				for _, arg := range fields[i+3:] {
					if ns != nil && arg == istio.LabelInjection+"-" && ns.InjectionLabel != "enabled" {
						t.Errorf("%s fix %q removes the opt-out %s=%s", f.Code, f.Fix, istio.LabelInjection, ns.InjectionLabel)
					}
					if v, ok := strings.CutPrefix(arg, istio.LabelRev+"="); ok {
						if _, installed := inj.Resolve(v); !installed {
							t.Errorf("%s fix %q names %q, which is not installed", f.Code, f.Fix, v)
						}
					}
				}
			}
			if w == "restart" && i > 0 && fields[i-1] == "rollout" {
				for _, target := range fields[i+1:] {
					kind, name, ok := strings.Cut(target, "/")
					if !ok {
						continue
					}
					wl := findWorkload(s, kind, name)
					if wl == nil {
						t.Errorf("%s fix %q restarts an unknown workload %s", f.Code, f.Fix, target)
						continue
					}
					if !slices.ContainsFunc(wl.Proxies, func(p inventory.ProxyGroup) bool { return changedByRestart(wl, p) }) {
						t.Errorf("%s fix %q restarts %s, whose pods a restart cannot change", f.Code, f.Fix, target)
					}
				}
			}
		}
	}
}

func findWorkload(s *inventory.Snapshot, kind, name string) *inventory.Workload {
	for i := range s.Workloads {
		if strings.EqualFold(s.Workloads[i].Kind, kind) && s.Workloads[i].Name == name {
			return &s.Workloads[i]
		}
	}
	return nil
}
