package e2e

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/inventory"
)

// problemCode maps each planted problem to the finding `meshroll check` must
// report for it.
var problemCode = map[demo.ProblemKind]string{
	demo.ProblemBothLabels:               check.CodeNamespaceBothLabels,
	demo.ProblemMissingRevision:          check.CodeNamespaceRevisionMissing,
	demo.ProblemPodLabelOverridden:       check.CodePodRevOverridden,
	demo.ProblemStaleProxy:               check.CodeProxyStale,
	demo.ProblemNotRestartable:           check.CodeWorkloadNotRestartable,
	demo.ProblemCompletedPodsPinRevision: check.CodeTerminatedPodsPin,
}

// TestSeededMesh installs Istio 1.23.2 from its real charts, seeds the demo
// mesh (every labelling style, every workload kind, planted problems) and
// asserts that status and check report exactly what was seeded.
func TestSeededMesh(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	plan, err := demo.Mesh(t.Context(), e.controlplane(), demo.MeshOptions{Version: "1.23.2", Namespaces: 20, Workloads: 200, Log: t.Output()})
	if err != nil {
		t.Fatalf("demo.Mesh: %v", err)
	}
	exp := plan.Expect()
	snap := e.snapshot(t)

	t.Run("control plane", func(t *testing.T) {
		// Other tests of this package may have installed more revisions in the
		// shared sandbox; the seeded one must be exactly as installed.
		r := snap.Revision("1-23-2")
		if r == nil {
			t.Fatalf("revisions = %+v, want 1-23-2 among them", snap.Revisions)
		}
		if r.Version != "1.23.2" || r.ReadyReplicas < 1 || !r.ServiceExists {
			t.Errorf("revision = %+v", r)
		}
		if r.ProxyImage != "docker.io/istio/proxyv2:1.23.2" {
			t.Errorf("proxy image = %q", r.ProxyImage)
		}
		if strings.Join(r.Tags, ",") != "default" {
			t.Errorf("tags on 1-23-2 = %v, want [default]", r.Tags)
		}
		var def []string
		for _, tag := range snap.Tags {
			if tag.Name == "default" {
				def = append(def, tag.Revision)
			}
		}
		if strings.Join(def, ",") != "1-23-2" {
			t.Errorf("default tag points at %v, want [1-23-2]", def)
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		for _, want := range exp.Namespaces {
			got := snap.Namespace(want.Name)
			if got == nil {
				t.Errorf("namespace %s missing from the snapshot", want.Name)
				continue
			}
			if got.Injection.Revision != want.Revision {
				t.Errorf("namespace %s (%s): injecting revision %q, want %q (%s)", want.Name, want.Style, got.Injection.Revision, want.Revision, got.Injection.Reason)
			}
		}
	})

	t.Run("workloads", func(t *testing.T) {
		byRef := map[string]*inventory.Workload{}
		for i := range snap.Workloads {
			w := &snap.Workloads[i]
			byRef[w.Kind+"/"+w.Namespace+"/"+w.Name] = w
		}
		kinds := map[demo.Kind]int{}
		for _, want := range exp.Workloads {
			ref := fmt.Sprintf("%s/%s/%s", want.Kind, want.Namespace, want.Name)
			got := byRef[ref]
			if got == nil {
				t.Errorf("%s missing from the snapshot", ref)
				continue
			}
			kinds[want.Kind]++
			if got.Restartable != want.Restartable {
				t.Errorf("%s restartable = %t (%s), want %t", ref, got.Restartable, got.RestartReason, want.Restartable)
			}
			pods, term := got.Total()
			wantPods := want.Pods
			if want.PerNode {
				wantPods *= nodes
			}
			if pods+term != wantPods {
				t.Errorf("%s has %d pods (+%d terminated), want %d", ref, pods, term, wantPods)
			}
			for _, p := range got.Proxies {
				if p.Revision != want.Revision || p.Image != want.ProxyImage {
					t.Errorf("%s pods on revision %q image %q, want %q %q", ref, p.Revision, p.Image, want.Revision, want.ProxyImage)
				}
			}
		}
		for k, n := range exp.Kinds {
			if kinds[k] != n {
				t.Errorf("%d %s workloads found, want %d", kinds[k], k, n)
			}
		}
	})

	t.Run("summary", func(t *testing.T) {
		// Count only the seeded namespaces: istiod's own pod has no sidecar.
		seeded := &inventory.Snapshot{}
		for _, w := range snap.Workloads {
			if strings.HasPrefix(w.Namespace, plan.Options.Prefix+"-") {
				seeded.Workloads = append(seeded.Workloads, w)
			}
		}
		got := map[string]int{}
		for _, c := range seeded.Summary().ByRevision {
			got[c.Key] = c.Pods
		}
		want := exp.PodsByRevision(nodes)
		for rev, n := range want {
			if got[rev] != n {
				t.Errorf("pods on revision %q = %d, want %d", rev, got[rev], n)
			}
		}
		for rev, n := range got {
			if _, ok := want[rev]; !ok {
				t.Errorf("unexpected revision %q with %d pods", rev, n)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		findings := check.Run(snap)
		planted := map[string]bool{} // code + object
		objects := map[string]bool{}
		for _, p := range exp.Problems {
			code, ok := problemCode[p.Kind]
			if !ok {
				t.Fatalf("no finding code mapped for planted problem %s", p.Kind)
			}
			obj := "Namespace/" + p.Namespace
			if p.Workload != "" {
				kind, name, _ := strings.Cut(p.Workload, "/")
				obj = kind + "/" + p.Namespace + "/" + name
			}
			planted[code+" "+obj] = true
			objects[obj] = true
			if p.Kind == demo.ProblemStaleProxy { // rolled up per namespace too
				planted[check.CodeNamespaceProxiesStale+" Namespace/"+p.Namespace] = true
				objects["Namespace/"+p.Namespace] = true
			}
		}
		// Unlabelled namespaces (pod-level opt-in included) whose pods run
		// without sidecars get the istioctl-analyze style note.
		for _, ns := range plan.Namespaces {
			if ns.Style == demo.StyleNone || ns.Style == demo.StylePodLevel {
				objects["Namespace/"+ns.Name] = true
			}
		}
		found := map[string]bool{}
		for _, f := range findings {
			found[f.Code+" "+f.Object] = true
			if !strings.Contains(f.Object, "/"+plan.Options.Prefix+"-") {
				continue // not seeded by this test
			}
			if !objects[f.Object] {
				t.Errorf("false finding on an object with no planted problem: %+v", f)
			}
		}
		var missing []string
		for k := range planted {
			if !found[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("planted problem not reported: %s", k)
		}
		if check.ExitCode(findings) == 0 {
			t.Error("check exit code 0 on a mesh with planted problems")
		}
		if t.Failed() {
			for _, f := range findings {
				t.Logf("finding: %s %s %s: %s", f.Severity, f.Code, f.Object, f.Message)
			}
		}
	})
}
