package v1alpha1_test

import (
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithAPIOnly())) }

// TestSpecValidatedAtAdmission: the CRD's CEL rules reject a bad spec on
// the real API server, before any engine or controller sees it, with a
// message naming the problem and the fix; a good spec passes.
func TestSpecValidatedAtAdmission(t *testing.T) {
	dyn, err := dynamic.NewForConfig(sandboxtest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	installCRD(t, dyn)
	good := func() *v1alpha1.MeshUpgrade {
		return &v1alpha1.MeshUpgrade{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"},
			ObjectMeta: metav1.ObjectMeta{Name: "cel"},
			Spec: v1alpha1.MeshUpgradeSpec{From: "1-23-2", To: "1-24-2", Version: "1.24.2", PrometheusURL: "http://127.0.0.1:9090",
				Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 1}, {Percent: 100}}, Parallelism: 5},
				Gates:    []v1alpha1.Gate{{Name: "error-rate", Prometheus: &v1alpha1.PrometheusGate{Query: "up", Op: "<", Threshold: "1"}}}},
		}
	}
	cases := []struct {
		name string
		edit func(*v1alpha1.MeshUpgrade)
		want string // "" = accepted
	}{
		{"good", func(*v1alpha1.MeshUpgrade) {}, ""},
		{"same revision", func(m *v1alpha1.MeshUpgrade) { m.Spec.To = m.Spec.From }, "from and to name the same revision"},
		{"wave with count and percent", func(m *v1alpha1.MeshUpgrade) { m.Spec.Strategy.Waves[0].Percent = 10 }, "either a count or a percent"},
		{"empty wave", func(m *v1alpha1.MeshUpgrade) { m.Spec.Strategy.Waves[0] = v1alpha1.WaveSize{} }, "either a count or a percent"},
		{"gate without a check", func(m *v1alpha1.MeshUpgrade) { m.Spec.Gates[0].Prometheus = nil }, "exactly one of prometheus and probe"},
		{"gate with two checks", func(m *v1alpha1.MeshUpgrade) {
			m.Spec.Gates[0].Probe = &v1alpha1.ProbeGate{URL: "http://127.0.0.1:8080"}
		}, "exactly one of prometheus and probe"},
		{"duplicate gate", func(m *v1alpha1.MeshUpgrade) { m.Spec.Gates = append(m.Spec.Gates, m.Spec.Gates[0]) }, "gate names must be unique"},
		{"reserved gate name", func(m *v1alpha1.MeshUpgrade) { m.Spec.Gates[0].Name = "readiness" }, "readiness is reserved"},
		{"prometheus gate without a server", func(m *v1alpha1.MeshUpgrade) { m.Spec.PrometheusURL = "" }, "needs spec.prometheusURL"},
		{"bad version", func(m *v1alpha1.MeshUpgrade) { m.Spec.Version = "v1.24" }, "spec.version"},
		{"parallelism 0", func(m *v1alpha1.MeshUpgrade) { m.Spec.Strategy.Parallelism = 0 }, "spec.strategy.parallelism"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mu := good()
			c.edit(mu)
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(mu)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dyn.Resource(v1alpha1.GroupVersionResource).Create(t.Context(), &unstructured.Unstructured{Object: obj},
				metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case c.want == "" && err != nil:
				t.Errorf("a good spec was refused: %v", err)
			case c.want != "" && err == nil:
				t.Errorf("accepted; want a refusal mentioning %q", c.want)
			case c.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("refused with %v; want an Invalid error mentioning %q", err, c.want)
			}
		})
	}
}

// installCRD creates the MeshUpgrade CRD as generated and waits until the
// server serves it.
func installCRD(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	var crd unstructured.Unstructured
	if err := yaml.Unmarshal(v1alpha1.CRD, &crd.Object); err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	if _, err := crds.Create(t.Context(), &crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("the generated CRD was refused (a CEL rule over its cost budget?): %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := dyn.Resource(v1alpha1.GroupVersionResource).List(t.Context(), metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MeshUpgrade CRD not served after 30s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
