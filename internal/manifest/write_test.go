package manifest

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestEncodeIsDeterministic(t *testing.T) {
	objs := rendered(t, "1.23.2")
	a, err := Encode(objs)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := Encode(objs)
		if err != nil || !bytes.Equal(a, b) {
			t.Fatal("encoding changed between runs")
		}
	}
	back, err := parseDocs("encoded", a)
	if err != nil || len(back) != len(objs) {
		t.Fatalf("parsed %d of %d objects: %v", len(back), len(objs), err)
	}
	if n := bytes.Count(a, []byte("\n---\n")); n != len(objs)-1 {
		t.Fatalf("%d separators for %d objects", n, len(objs))
	}
}

func TestWriteReadDirRoundTrip(t *testing.T) {
	objs := rendered(t, "1.23.2")
	meta := ChartMeta{Version: "1.23.2"}
	for _, tc := range []struct {
		name   string
		split  bool
		layout Layout
		files  []string // a few of the files that must exist
	}{
		{"single file", false, LayoutDirs, []string{ManifestFile}},
		{"split dirs", true, LayoutDirs, []string{"crds/0001-customresourcedefinition-authorizationpolicies.security.istio.io.yaml", "resources/0001-clusterrole-istio-reader-clusterrole-1-23-2-istio-system.yaml"}},
		{"one chart", false, LayoutCharts, []string{"istio/Chart.yaml"}},
		{"split charts", true, LayoutCharts, []string{"istio-crd/Chart.yaml", "istio/Chart.yaml", "istio-crd/templates/0001-customresourcedefinition-authorizationpolicies.security.istio.io.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			written, err := Write(dir, objs, tc.split, tc.layout, meta)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("missing %s: %v", f, err)
				}
			}
			for _, f := range written {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("reported file %s: %v", f, err)
				}
			}
			back, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			assertSameObjects(t, objs, back)
			if tc.layout == LayoutCharts {
				assertSameObjects(t, objs, helmTemplate(t, dir))
			}
		})
	}
}

// assertSameObjects compares two sets in order and by content.
func assertSameObjects(t *testing.T, want, got []*unstructured.Unstructured) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("got %d objects, want %d", len(got), len(want))
	}
	for i := range want {
		if KeyOf(want[i]) != KeyOf(got[i]) {
			t.Fatalf("object %d is %s, want %s", i, KeyOf(got[i]), KeyOf(want[i]))
		}
	}
	if d := Compute(want, got, DiffOptions{}); d.Summary.Changes() != 0 {
		t.Fatalf("objects changed in the round trip: %+v", d.Objects)
	}
}

// helmTemplate renders every chart under dir with Helm's engine, as
// `helm template` would, and returns the objects CRDs first.
func helmTemplate(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	charts, _ := filepath.Glob(filepath.Join(dir, "*", "Chart.yaml"))
	var objs []*unstructured.Unstructured
	for _, c := range charts {
		ch, err := loader.LoadDir(filepath.Dir(c))
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != "1.23.2" || ch.Metadata.AppVersion != "1.23.2" || ch.Metadata.APIVersion != "v2" {
			t.Errorf("chart metadata %+v", ch.Metadata)
		}
		vals, err := chartutil.ToRenderValues(ch, nil, chartutil.ReleaseOptions{Name: ch.Name(), Namespace: "istio-system"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, err := engine.Render(ch, vals)
		if err != nil {
			t.Fatalf("helm render of %s: %v", c, err)
		}
		names := make([]string, 0, len(out))
		for n := range out {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			docs, err := parseDocs(n, []byte(out[n]))
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, docs...)
		}
	}
	crds, rest := Split(objs)
	return append(crds, rest...)
}

func TestWriteIsAtomic(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	good := u(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ns1}")
	bad := good.DeepCopy()
	bad.SetName("b")
	bad.Object["spec"] = map[string]any{"x": func() {}} // cannot be encoded
	objs := []*unstructured.Unstructured{good, bad}

	if _, err := Write(dir, objs, true, LayoutDirs, ChartMeta{}); err == nil {
		t.Fatal("want an error")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("failure left %v behind", entries)
	}

	// A previous output survives a failed rewrite untouched.
	if _, err := Write(dir, objs[:1], false, LayoutDirs, ChartMeta{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	if _, err := Write(dir, objs, false, LayoutCharts, ChartMeta{Version: "1.0.0"}); err == nil {
		t.Fatal("want an error")
	}
	after, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("previous output changed: %v", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Fatalf("failure left %v behind", entries)
	}
}

func TestWriteRefusesForeignDirectory(t *testing.T) {
	objs := []*unstructured.Unstructured{u(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ns1}")}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(dir, objs, false, LayoutDirs, ChartMeta{})
	if err == nil || !strings.Contains(err.Error(), "not written by meshroll") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Fatal("foreign file removed")
	}

	// An empty directory, and one meshroll wrote, are replaced.
	out := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(out, objs, true, LayoutDirs, ChartMeta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(out, objs, false, LayoutDirs, ChartMeta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, ResourceDir)); err == nil {
		t.Fatal("stale files of the previous layout remain")
	}
}

func TestWriteOptionErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if _, err := Write(dir, nil, true, LayoutCharts, ChartMeta{}); err == nil || !strings.Contains(err.Error(), "chart version is required") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Write(dir, nil, true, "kustomize", ChartMeta{}); err == nil || !strings.Contains(err.Error(), `unknown layout "kustomize"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestReadDirAnyYAML(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"b/svc.yml":      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns1}\n---\n# empty\n",
		"a/crd.yaml":     "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x.example.com}\n",
		"a/readme.md":    "not yaml",
		".hidden/x.yaml": "not: an object",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"x.example.com", "s"}, names(objs)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("kind: Service\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("err = %v", err)
	}
}
