package check

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// chartVersions are the Istio releases whose real charts must validate with
// no errors: a validator that rejects Istio's own output is useless.
var chartVersions = []string{"1.23.2", "1.24.2", "1.25.1", "1.26.1", "1.29.1"}

// renderCache renders each release once per test binary; rendering costs
// about a second and the benchmark reuses it.
type renderCache struct {
	mu   sync.Mutex
	objs map[string][]*unstructured.Unstructured
}

func (r *renderCache) get(tb testing.TB, version string) []*unstructured.Unstructured {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if objs, ok := r.objs[version]; ok {
		return objs
	}
	objs, err := istio.Render(context.Background(), istio.RenderOptions{
		Version:    version,
		Revision:   istio.RevisionName(version),
		Components: []istio.Component{istio.Base, istio.Istiod, istio.Gateway},
	})
	if err != nil {
		tb.Skipf("cannot render istio %s (charts not in the module cache and no proxy?): %v", version, err)
	}
	if r.objs == nil {
		r.objs = map[string][]*unstructured.Unstructured{}
	}
	r.objs[version] = objs
	return objs
}

// rendered is shared by TestIstioCharts and BenchmarkValidate.
var rendered = &renderCache{}

func TestIstioCharts(t *testing.T) {
	if testing.Short() {
		t.Skip("renders real charts")
	}
	for _, v := range chartVersions {
		t.Run(v, func(t *testing.T) {
			in := FromObjects(rendered.get(t, v), "")
			findings := Run(in, All())
			counts := map[Severity]int{}
			for _, f := range findings {
				counts[f.Severity]++
				switch f.Severity {
				case Error:
					t.Errorf("%s %s %s: %s", f.Code, f.Check, f.Object, f.Message)
				case Warning:
					t.Logf("warning %s %s %s: %s", f.Code, f.Check, f.Object, f.Message)
				}
			}
			t.Logf("istio %s: %d objects, %d errors, %d warnings, %d info", v, len(in.Objects), counts[Error], counts[Warning], counts[Info])
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	in := FromObjects(rendered.get(b, "1.26.1"), "")
	checks := All()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Run(in, checks)
	}
}

// TestIstioCRDSchemas checks that Istio custom resources are validated
// against schemas derived from the rendered CRDs.
func TestIstioCRDSchemas(t *testing.T) {
	if testing.Short() {
		t.Skip("renders real charts")
	}
	crds := rendered.get(t, "1.26.1")
	tests := []struct {
		name string
		se   string
		want int
	}{
		{"valid", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, namespace: a}\nspec:\n  hosts: [x.example.com]\n  ports: [{name: http, number: 80, protocol: HTTP}]\n", 0},
		{"typo", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: e, namespace: a}\nspec:\n  hostz: [x.example.com]\n", 2}, // unknown field and missing required hosts
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := parseFixture(t, tt.se)
			in.Objects = append(in.Objects, crds...)
			errs := 0
			for _, f := range (schemaValid{}).Run(in) {
				if f.Severity != Info {
					errs++
					t.Log(f.Object, f.Message)
				}
			}
			if errs != tt.want {
				t.Errorf("got %d schema findings, want %d", errs, tt.want)
			}
		})
	}
}
