package charts_test

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// grants is a ClusterRole's rules as group → resource → verbs.
type grants map[string]map[string][]string

func clusterRole(t *testing.T) grants {
	t.Helper()
	g := grants{}
	cr := find(t, render(t, nil), "ClusterRole", "meshroll")
	rules, _, _ := unstructured.NestedSlice(cr.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		groups, _, _ := unstructured.NestedStringSlice(m, "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(m, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		for _, grp := range groups {
			if g[grp] == nil {
				g[grp] = map[string][]string{}
			}
			for _, res := range resources {
				g[grp][res] = append(g[grp][res], verbs...)
			}
		}
	}
	return g
}

func (g grants) allows(group, resource, verb string) bool {
	return slices.Contains(g[group][resource], verb)
}

// resourceOf is the plural resource name of a kind Istio's charts render.
func resourceOf(kind string) string {
	k := strings.ToLower(kind)
	if strings.HasSuffix(k, "y") {
		return strings.TrimSuffix(k, "y") + "ies"
	}
	return k + "s"
}

// TestClusterRoleCoversIstioCharts renders every chart meshroll installs
// (base, istiod, gateway of each supported release) and checks the
// ClusterRole lets the engine apply every object (get, create, patch) and
// remove it again with prune (delete; CRDs and Namespaces are never deleted).
// A new kind in a future Istio chart fails here before it fails in a cluster.
func TestClusterRoleCoversIstioCharts(t *testing.T) {
	if testing.Short() {
		t.Skip("renders Istio's charts from the Go module cache (run without -short)")
	}
	g := clusterRole(t)
	cacheDir, err := istio.DefaultRenderCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range []string{"1.23.2", "1.24.2"} {
		objs, err := istio.Render(t.Context(), istio.RenderOptions{
			Version:    v,
			Components: []istio.Component{istio.Base, istio.Istiod, istio.Gateway},
			Cache:      istio.NewRenderCache(cacheDir),
		})
		if err != nil {
			t.Fatalf("render %s: %v", v, err)
		}
		for _, o := range objs {
			gvk := o.GroupVersionKind()
			res := resourceOf(gvk.Kind)
			verbs := []string{"get", "create", "patch"}
			if gvk.Kind != "CustomResourceDefinition" && gvk.Kind != "Namespace" {
				verbs = append(verbs, "delete")
			}
			for _, verb := range verbs {
				key := gvk.Group + "/" + res + "/" + verb
				if seen[key] {
					continue
				}
				seen[key] = true
				if !g.allows(gvk.Group, res, verb) {
					t.Errorf("istio %s renders %s %s: the ClusterRole lacks %q on %s in group %q", v, gvk.Kind, o.GetName(), verb, res, gvk.Group)
				}
			}
		}
	}
	if len(seen) < 20 {
		t.Errorf("only %d (resource, verb) pairs seen: did the render come back empty?", len(seen))
	}
}

// TestClusterRoleLeastPrivilege: no wildcard anywhere, no Secrets
// cluster-wide (only the Role for the webhook's one Secret), and no verb the
// engine never uses on workloads (it never creates or deletes them).
func TestClusterRoleLeastPrivilege(t *testing.T) {
	g := clusterRole(t)
	for grp, rs := range g {
		for res, verbs := range rs {
			if grp == "*" || res == "*" || slices.Contains(verbs, "*") {
				t.Errorf("wildcard in group %q resource %q verbs %v", grp, res, verbs)
			}
		}
	}
	if len(g[""]["secrets"]) != 0 {
		t.Errorf("ClusterRole grants %v on secrets cluster-wide", g[""]["secrets"])
	}
	for _, res := range []string{"statefulsets", "daemonsets"} {
		for _, verb := range []string{"create", "delete", "update"} {
			if g.allows("apps", res, verb) {
				t.Errorf("ClusterRole grants %s on %s: the engine only patches workloads", verb, res)
			}
		}
	}
	if g.allows("", "pods", "delete") {
		t.Error("ClusterRole grants delete on pods: restarts go through the pod template")
	}
}
