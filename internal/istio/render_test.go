package istio

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenVersions are the releases whose charts are in the module cache (CI
// fetches them through the proxy).
var goldenVersions = []string{"1.23.2", "1.24.2", "1.25.1", "1.26.1", "1.29.1"}

var allComponents = []Component{Base, Istiod, Gateway}

func renderAll(t testing.TB, version string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(context.Background(), RenderOptions{Version: version, Components: allComponents})
	if err != nil {
		t.Fatalf("Render(%s) error = %v", version, err)
	}
	return objs
}

func objectList(objs []*unstructured.Unstructured) string {
	var b strings.Builder
	for _, o := range objs {
		b.WriteString(describe(o))
		b.WriteByte('\n')
	}
	return b.String()
}

func find(objs []*unstructured.Unstructured, kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestRenderGolden(t *testing.T) {
	for _, version := range goldenVersions {
		t.Run(version, func(t *testing.T) {
			t.Parallel()
			objs := renderAll(t, version)
			rev := RevisionName(version)
			got := objectList(objs)
			golden := filepath.Join("testdata", "render-"+version+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("failed to read golden file (run with -update): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("object list mismatch (-golden +got):\n%s", diff)
			}

			// CRDs are present (1.23 keeps them in crds/, later versions template them), once each.
			crds := 0
			for _, o := range objs {
				if o.GetKind() == kindCRD {
					crds++
				}
			}
			if crds < 10 || find(objs, kindCRD, "", "virtualservices.networking.istio.io") == nil {
				t.Errorf("rendered %d CRDs, want Istio's CRDs including virtualservices", crds)
			}

			istiod := find(objs, "Deployment", SystemNamespace, "istiod-"+rev)
			if istiod == nil {
				t.Fatalf("no istiod Deployment istiod-%s", rev)
			}
			containers, _, _ := unstructured.NestedSlice(istiod.Object, "spec", "template", "spec", "containers")
			if len(containers) == 0 {
				t.Fatal("istiod Deployment has no containers")
			}
			if img := containers[0].(map[string]any)["image"]; img != "docker.io/istio/pilot:"+version {
				t.Errorf("istiod image = %v, want docker.io/istio/pilot:%s", img, version)
			}

			cm := find(objs, "ConfigMap", SystemNamespace, InjectorConfigMapPrefix+"-"+rev)
			if cm == nil {
				t.Fatalf("no injector ConfigMap %s-%s", InjectorConfigMapPrefix, rev)
			}
			values, _, _ := unstructured.NestedString(cm.Object, "data", "values")
			img, err := ProxyImage(values)
			if err != nil {
				t.Fatal(err)
			}
			if want := "docker.io/istio/proxyv2:" + version; img != want {
				t.Errorf("ProxyImage(injector values) = %q, want %q", img, want)
			}
			if ImageVersion(img) != version {
				t.Errorf("ImageVersion(%q) = %q, want %q", img, ImageVersion(img), version)
			}

			webhooks := 0
			for _, o := range objs {
				switch o.GetKind() {
				case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
					webhooks++
					if got := o.GetLabels()[LabelRev]; got != rev {
						t.Errorf("%s label %s = %q, want %q", describe(o), LabelRev, got, rev)
					}
				}
			}
			if webhooks == 0 {
				t.Error("no webhook configurations rendered")
			}

			gw := find(objs, "Deployment", DefaultGatewayNamespace, DefaultGatewayName)
			if gw == nil {
				t.Fatal("no gateway Deployment")
			}
			if got, _, _ := unstructured.NestedString(gw.Object, "spec", "template", "metadata", "labels", LabelRev); got != rev {
				t.Errorf("gateway pod template label %s = %q, want %q", LabelRev, got, rev)
			}
			for _, o := range objs {
				if namespaced(o) && o.GetNamespace() == "" {
					t.Errorf("%s has no namespace", describe(o))
				}
			}
		})
	}
}

func TestRenderOptions(t *testing.T) {
	const version = "1.23.2"
	tests := []struct {
		name  string
		opts  RenderOptions
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{
			name: "defaults render base and istiod only",
			opts: RenderOptions{Version: version},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for _, o := range objs {
					if o.GetNamespace() == DefaultGatewayNamespace {
						t.Errorf("gateway object %s rendered without Gateway component", describe(o))
					}
				}
				if find(objs, "Deployment", SystemNamespace, "istiod-1-23-2") == nil {
					t.Error("no istiod Deployment")
				}
			},
		},
		{
			name: "gateway with ClusterIP service in its own namespace",
			opts: RenderOptions{Version: version, Components: []Component{Gateway}, GatewayName: "gw-blue", GatewayNamespace: "edge",
				Set: []string{"service.type=ClusterIP"}, Values: map[string]any{"pilot": map[string]any{"replicaCount": 3}}},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				svc := find(objs, "Service", "edge", "gw-blue")
				if svc == nil {
					t.Fatalf("no gateway Service in:\n%s", objectList(objs))
				}
				if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "ClusterIP" {
					t.Errorf("service type = %q, want ClusterIP", typ)
				}
			},
		},
		{
			name: "default revision",
			opts: RenderOptions{Version: version, Revision: DefaultRevision, Components: []Component{Istiod}},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if find(objs, "Deployment", SystemNamespace, "istiod") == nil {
					t.Errorf("no istiod Deployment in:\n%s", objectList(objs))
				}
				if find(objs, "ConfigMap", SystemNamespace, InjectorConfigMapPrefix) == nil {
					t.Error("no unsuffixed injector ConfigMap")
				}
			},
		},
		{
			name: "templated CRDs are not duplicated",
			opts: RenderOptions{Version: version, Components: []Component{Base}, Set: []string{"base.enableCRDTemplates=true"}},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				seen := map[string]bool{}
				for _, o := range objs {
					if seen[describe(o)] {
						t.Errorf("duplicate %s", describe(o))
					}
					seen[describe(o)] = true
				}
			},
		},
		{
			name: "user values override meshroll's, revision tags render",
			opts: RenderOptions{Version: version, Namespace: "mesh", Components: []Component{Istiod},
				Values: map[string]any{"global": map[string]any{"hub": "my.registry/istio"}, "revisionTags": []any{"prod"}}},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				d := find(objs, "Deployment", "mesh", "istiod-1-23-2")
				if d == nil {
					t.Fatalf("no istiod Deployment in mesh:\n%s", objectList(objs))
				}
				containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
				if img := containers[0].(map[string]any)["image"]; img != "my.registry/istio/pilot:1.23.2" {
					t.Errorf("image = %v, want my.registry/istio/pilot:1.23.2", img)
				}
				if find(objs, "MutatingWebhookConfiguration", "", TagWebhookPrefix+"prod-mesh") == nil {
					t.Errorf("no revision tag webhook in:\n%s", objectList(objs))
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Render(context.Background(), tt.opts)
			if err != nil {
				t.Fatalf("Render() error = %v", err)
			}
			tt.check(t, objs)
		})
	}
}

func TestRenderDoesNotMutateValues(t *testing.T) {
	values := map[string]any{"global": map[string]any{"logAsJson": true}, "pilot": map[string]any{"env": map[string]any{"A": "b"}}}
	before := copyValue(values)
	if _, err := Render(context.Background(), RenderOptions{Version: "1.29.1", Values: values, Components: allComponents}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, any(values)); diff != "" {
		t.Errorf("Render changed caller's values (-before +after):\n%s", diff)
	}
}

func TestRenderErrors(t *testing.T) {
	cacheDir, err := ModuleSource{}.ChartsDir(context.Background(), "1.23.2")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    RenderOptions
		wantErr string
	}{
		{name: "unknown version", opts: RenderOptions{Version: "1.23.9"}, wantErr: `failed to look up istio release "1.23.9": unknown version (known: `},
		{name: "malformed version", opts: RenderOptions{Version: "latest"}, wantErr: `version must look like 1.23.2`},
		{name: "bad revision", opts: RenderOptions{Version: "1.23.2", Revision: "1.23.2"}, wantErr: `invalid revision "1.23.2"`},
		{name: "unknown component", opts: RenderOptions{Version: "1.23.2", Components: []Component{"ztunnel"}}, wantErr: `failed to render component "ztunnel": unknown component`},
		{name: "bad namespace", opts: RenderOptions{Version: "1.23.2", Namespace: "Istio_System"}, wantErr: `invalid namespace "Istio_System"`},
		{name: "malformed set", opts: RenderOptions{Version: "1.23.2", Set: []string{"global.hub"}}, wantErr: `failed to parse --set "global.hub"`},
		{name: "unencodable values", opts: RenderOptions{Version: "1.23.2", Values: map[string]any{"x": func() {}}}, wantErr: `failed to encode values`},
		{name: "global not a map", opts: RenderOptions{Version: "1.23.2", Values: map[string]any{"global": "x"}}, wantErr: `"global" must be a map`},
		{name: "schema violation", opts: RenderOptions{Version: "1.23.2", Components: []Component{Gateway}, Set: []string{"kind=Pod"}}, wantErr: `failed to prepare values for chart "gateway" of istio 1.23.2`},
		{name: "missing chart dir", opts: RenderOptions{Version: "1.23.2", Source: DirSource{Dir: t.TempDir()}}, wantErr: `failed to find chart "base" of istio 1.23.2`},
		{name: "template failure", opts: RenderOptions{Version: "1.23.2", Source: DirSource{Dir: cacheDir}, Values: map[string]any{"profile": "nope"}}, wantErr: `unknown profile nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Render() error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRenderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir, err := ModuleSource{}.ChartsDir(context.Background(), "1.23.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(ctx, RenderOptions{Version: "1.23.2", Source: DirSource{Dir: dir}}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Render(canceled) error = %v, want context canceled", err)
	}
}

// BenchmarkRender measures a warm render of base+istiod+gateway for one
// release: "charts" reads an already known charts directory, "module" adds
// the `go mod download` lookup ModuleSource does against the module cache.
func BenchmarkRender(b *testing.B) {
	const version = "1.29.1"
	ctx := context.Background()
	dir, err := ModuleSource{}.ChartsDir(ctx, version)
	if err != nil {
		b.Fatal(err)
	}
	sources := []struct {
		name   string
		source ChartSource
	}{
		{name: "charts", source: DirSource{Dir: dir}},
		{name: "module", source: ModuleSource{}},
	}
	for _, src := range sources {
		b.Run(src.name, func(b *testing.B) {
			opts := RenderOptions{Version: version, Components: allComponents, Source: src.source}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(ctx, opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
