package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadPatches(t *testing.T) {
	file := filepath.Join(t.TempDir(), "patches.yaml")
	content := `
- target: {kind: ConfigMap, name: istio-sidecar-injector-*}
  type: json
  patch:
  - {op: add, path: /data/extra, value: "x"}
- target: {kind: Deployment}
  type: merge
  patch: |
    {"spec": {"replicas": 3}}
- type: strategic
  patch: "metadata: {labels: {a: b}}"
`
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadPatches(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []Patch{
		{Target: Selector{Kind: "ConfigMap", Name: "istio-sidecar-injector-*"}, Type: PatchJSON, Patch: []byte(`[{"op":"add","path":"/data/extra","value":"x"}]`), Source: file, Entry: 1},
		{Target: Selector{Kind: "Deployment"}, Type: PatchMerge, Patch: []byte(`{"spec":{"replicas":3}}`), Source: file, Entry: 2},
		{Type: PatchStrategic, Patch: []byte(`{"metadata":{"labels":{"a":"b"}}}`), Source: file, Entry: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestLoadPatchesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not a list", "target: {}\n", `failed to parse patch file "p.yaml"`},
		{"yaml syntax", "- target: [\n", `failed to parse patch file "p.yaml"`},
		{"unknown key", "- type: merge\n  patch: {a: 1}\n- taget: {kind: X}\n  type: merge\n  patch: {a: 1}\n", `"p.yaml" entry 2: json: unknown field "taget"`},
		{"unknown target key", "- target: {kinds: X}\n  type: merge\n  patch: {a: 1}\n", `entry 1: json: unknown field "kinds"`},
		{"missing type", "- patch: {a: 1}\n", "entry 1: type is required"},
		{"bad type", "- type: apply\n  patch: {a: 1}\n", `entry 1: unknown type "apply"`},
		{"missing patch", "- type: merge\n", "entry 1: patch is required"},
		{"json patch not a list", "- type: json\n  patch: {op: add}\n", "entry 1: a json patch must be a list of operations"},
		{"merge patch not an object", "- type: merge\n  patch: [1]\n", "entry 1: a merge patch must be an object"},
		{"bad glob", "- target: {name: '[x'}\n  type: merge\n  patch: {a: 1}\n", "entry 1: invalid name glob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePatches("p.yaml", []byte(tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := LoadPatches(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSelectorMatches(t *testing.T) {
	o := istiod(t, "1-23-2", "1.23.2")
	for _, tc := range []struct {
		sel  Selector
		want bool
	}{
		{Selector{}, true},
		{Selector{Kind: "Deployment", Name: "istiod-*", Namespace: "istio-system", LabelSelector: "app=istiod,istio.io/rev"}, true},
		{Selector{Kind: "Service"}, false},
		{Selector{Name: "istiod"}, false},
		{Selector{Namespace: "default"}, false},
		{Selector{LabelSelector: "app!=istiod"}, false},
	} {
		if got := tc.sel.Matches(o); got != tc.want {
			t.Errorf("%s: got %v", tc.sel, got)
		}
	}
}
