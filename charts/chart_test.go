package charts_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/webhook"
)

// allOn turns on every optional part, so lint and validation see every
// template.
func allOn() map[string]any {
	return map[string]any{
		"serviceMonitor":   map[string]any{"enabled": true},
		"grafanaDashboard": map[string]any{"enabled": true},
	}
}

// TestLint is `helm lint --strict` through the Helm SDK, with the default
// values and with every optional template on: not one message.
func TestLint(t *testing.T) {
	for name, vals := range map[string]map[string]any{"defaults": nil, "all-on": allOn()} {
		t.Run(name, func(t *testing.T) {
			l := lint.AllWithKubeVersion(charts.MeshrollDir, vals, charts.DefaultNamespace, nil)
			for _, m := range l.Messages {
				// An icon is optional for a chart that is not published to a hub.
				if m.Severity == support.InfoSev && strings.Contains(m.Err.Error(), "icon is recommended") {
					continue
				}
				t.Errorf("helm lint: %s", m)
			}
		})
	}
}

// TestCRDsInSync keeps crds/ equal to what `make generate` writes to
// api/v1alpha1/crd: a new or changed CRD there fails here until copied
// (make generate copies them).
func TestCRDsInSync(t *testing.T) {
	want := readDir(t, "../api/v1alpha1/crd")
	got := readDir(t, filepath.Join(charts.MeshrollDir, "crds"))
	if len(want) == 0 {
		t.Fatal("no CRDs under api/v1alpha1/crd")
	}
	for name, b := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("charts/meshroll/crds/%s missing: run make generate", name)
		} else if !bytes.Equal(g, b) {
			t.Errorf("charts/meshroll/crds/%s differs from api/v1alpha1/crd/%s: run make generate", name, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("charts/meshroll/crds/%s has no source under api/v1alpha1/crd: remove it", name)
		}
	}
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

// TestRenderValidates runs `meshroll manifest validate` on the chart's
// render (CRDs included): exit 0, no finding at all.
func TestRenderValidates(t *testing.T) {
	for name, vals := range map[string]map[string]any{"defaults": nil, "all-on": allOn()} {
		t.Run(name, func(t *testing.T) {
			manifest, err := charts.Render(t.Context(), charts.InstallOptions{Values: vals})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "meshroll.yaml")
			if err := os.WriteFile(file, []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			if code := cli.Main(t.Context(), []string{"manifest", "validate", file}, &out, &errOut); code != 0 {
				t.Errorf("manifest validate exit %d:\n%s%s", code, out.String(), errOut.String())
			}
		})
	}
}

// TestBadValues: values.schema.json turns a typo or a wrong type into one
// error naming the field, before anything is rendered.
func TestBadValues(t *testing.T) {
	for _, tt := range []struct {
		vals map[string]any
		want string
	}{
		{map[string]any{"replicas": "two"}, "replicas"},
		{map[string]any{"replica": 2}, "replica"},
		{map[string]any{"ports": map[string]any{"webhook": 70000}}, "webhook"},
		{map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}, "pullPolicy"},
	} {
		_, err := charts.Render(t.Context(), charts.InstallOptions{Values: tt.vals})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("values %v: error %v, want one naming %q", tt.vals, err, tt.want)
		}
	}
}

// TestWebhookMatchesRegister: the chart's MutatingWebhookConfiguration is
// field for field what webhook.Register applies for the chart's Service
// (caBundle aside, which only the controller writes), so Helm and the
// controller never fight over a field.
func TestWebhookMatchesRegister(t *testing.T) {
	objs := render(t, nil)
	mwc := find(t, objs, "MutatingWebhookConfiguration", webhook.ConfigName)
	hooks, _, _ := unstructured.NestedSlice(mwc.Object, "webhooks")
	if len(hooks) != 1 {
		t.Fatalf("chart has %d webhooks, want 1", len(hooks))
	}
	cfg, err := webhook.Configuration(webhook.Registration{
		Service:  &webhook.ServiceRef{Namespace: charts.DefaultNamespace, Name: "meshroll-webhook"},
		CABundle: []byte("x"),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cfg.Webhooks[0])
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(want, "clientConfig", "caBundle")
	got, _ := json.Marshal(hooks[0])
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(got, wantJSON) {
		t.Errorf("chart webhook differs from webhook.Register's:\nchart:    %s\nregister: %s", got, wantJSON)
	}
}

// TestHardening pins what the issue asks of the Deployment.
func TestHardening(t *testing.T) {
	objs := render(t, nil)
	d := find(t, objs, "Deployment", "meshroll")
	if n, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(n) != "2" {
		t.Errorf("replicas %v, want 2", n)
	}
	pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec")
	if v, _, _ := unstructured.NestedString(pod, "securityContext", "seccompProfile", "type"); v != "RuntimeDefault" {
		t.Errorf("pod seccompProfile %q, want RuntimeDefault", v)
	}
	if v, _, _ := unstructured.NestedBool(pod, "securityContext", "runAsNonRoot"); !v {
		t.Error("pod runAsNonRoot not set")
	}
	cs, _, _ := unstructured.NestedSlice(pod, "containers")
	c := cs[0].(map[string]any)
	if v, _, _ := unstructured.NestedBool(c, "securityContext", "readOnlyRootFilesystem"); !v {
		t.Error("container readOnlyRootFilesystem not set")
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		if p, _, _ := unstructured.NestedString(c, probe, "httpGet", "path"); p != "/healthz" && p != "/readyz" {
			t.Errorf("%s path %q, want /healthz or /readyz", probe, p)
		}
	}
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	if !slices.Contains(args, "--leader-election-namespace="+charts.DefaultNamespace) {
		t.Errorf("args %v lack --leader-election-namespace=%s", args, charts.DefaultNamespace)
	}
	if _, _, err := unstructured.NestedMap(c, "resources", "limits"); err != nil {
		t.Error(err)
	}
	find(t, objs, "PodDisruptionBudget", "meshroll")
}

// render returns the chart's objects for vals.
func render(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	manifest, err := charts.Render(t.Context(), charts.InstallOptions{Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, manifest)
}

func decode(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatal(err)
		}
		if len(m) > 0 {
			out = append(out, &unstructured.Unstructured{Object: m})
		}
	}
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("rendered chart has no %s %q", kind, name)
	return nil
}
