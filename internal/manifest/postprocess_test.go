package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const cronJobYAML = `
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: ns1}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: cj}}
        spec:
          containers: [{name: c, image: i}]
`

func TestPostProcessStampsLabels(t *testing.T) {
	for _, tc := range []struct {
		name           string
		templateLabels bool
		wantTemplate   map[string]string
	}{
		{"metadata only by default", false, map[string]string{"app": "istiod", "istio.io/rev": "1-23-2"}},
		{"templates when asked", true, map[string]string{"app": "istiod", "istio.io/rev": "1-23-2", "team": "platform"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []*unstructured.Unstructured{
				istiod(t, "1-23-2", "1.23.2"),
				u(t, cronJobYAML),
				u(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa, namespace: ns1}"),
			}
			_ = unstructured.SetNestedStringMap(in[0].Object, map[string]string{"app": "istiod", "istio.io/rev": "1-23-2"}, "spec", "template", "metadata", "labels")
			before := in[0].DeepCopy()
			pp := PostProcess{
				Labels:         map[string]string{"team": "platform", "app": "overridden"},
				Annotations:    map[string]string{"owner": "mesh@example.com"},
				TemplateLabels: tc.templateLabels,
			}
			out, err := pp.Apply(in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before.Object, in[0].Object); diff != "" {
				t.Fatalf("input mutated:\n%s", diff)
			}
			for _, o := range out {
				if o.GetLabels()["team"] != "platform" || o.GetLabels()["app"] != "overridden" || o.GetAnnotations()["owner"] != "mesh@example.com" {
					t.Errorf("%s: labels %v annotations %v", describe(o), o.GetLabels(), o.GetAnnotations())
				}
			}
			if o := out[0]; o.GetLabels()["istio.io/rev"] != "1-23-2" {
				t.Errorf("existing label lost: %v", o.GetLabels())
			}
			got, _, _ := unstructured.NestedStringMap(out[0].Object, "spec", "template", "metadata", "labels")
			want := tc.wantTemplate
			if tc.templateLabels {
				want["app"] = "overridden"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("deployment template labels (-want +got):\n%s", diff)
			}
			cj, _, _ := unstructured.NestedStringMap(out[1].Object, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
			if (cj["team"] == "platform") != tc.templateLabels {
				t.Errorf("cronjob template labels %v", cj)
			}
			ann, _, _ := unstructured.NestedStringMap(out[0].Object, "spec", "template", "metadata", "annotations")
			if len(ann) != 0 {
				t.Errorf("annotations stamped on template: %v", ann)
			}
		})
	}
}

func TestPostProcessPatches(t *testing.T) {
	vs := "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs, namespace: ns1}\nspec: {hosts: [a, b]}"
	for _, tc := range []struct {
		name  string
		patch Patch
		obj   string
		check func(t *testing.T, o *unstructured.Unstructured)
	}{{
		name: "strategic merges containers by name",
		patch: Patch{Target: Selector{Kind: "Deployment", Name: "istiod-*"}, Type: PatchStrategic,
			Patch: []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"discovery","env":[{"name":"PILOT_X","value":"1"}]}]}}}}`)},
		obj: istiodTemplate,
		check: func(t *testing.T, o *unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			c := cs[0].(map[string]any)
			if c["image"] == nil || len(c["env"].([]any)) != 3 {
				t.Errorf("container %v", c)
			}
		},
	}, {
		name: "merge replaces lists",
		patch: Patch{Target: Selector{Kind: "Deployment"}, Type: PatchMerge,
			Patch: []byte(`{"spec":{"template":{"spec":{"priorityClassName":"system-cluster-critical"}}}}`)},
		obj: istiodTemplate,
		check: func(t *testing.T, o *unstructured.Unstructured) {
			if v, _, _ := unstructured.NestedString(o.Object, "spec", "template", "spec", "priorityClassName"); v != "system-cluster-critical" {
				t.Errorf("priorityClassName %q", v)
			}
		},
	}, {
		name: "json patch edits in place",
		patch: Patch{Target: Selector{LabelSelector: "app=istiod"}, Type: PatchJSON,
			Patch: []byte(`[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"my/pilot:1"}]`)},
		obj: istiodTemplate,
		check: func(t *testing.T, o *unstructured.Unstructured) {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if cs[0].(map[string]any)["image"] != "my/pilot:1" {
				t.Errorf("containers %v", cs)
			}
		},
	}, {
		name: "strategic on a custom resource falls back to merge",
		patch: Patch{Target: Selector{Kind: "VirtualService", Namespace: "ns1"}, Type: PatchStrategic,
			Patch: []byte(`{"spec":{"hosts":["c"]}}`)},
		obj: vs,
		check: func(t *testing.T, o *unstructured.Unstructured) {
			h, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "hosts")
			if !cmp.Equal(h, []string{"c"}) {
				t.Errorf("hosts %v", h)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			obj := u(t, strings.NewReplacer("@REV@", "1-23-2", "@VERSION@", "1.23.2").Replace(tc.obj))
			out, err := PostProcess{Patches: []Patch{tc.patch}}.Apply([]*unstructured.Unstructured{obj})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, out[0])
		})
	}
}

func TestPostProcessPatchErrors(t *testing.T) {
	objs := []*unstructured.Unstructured{istiod(t, "1-23-2", "1.23.2")}
	for _, tc := range []struct {
		name  string
		patch Patch
		want  string
	}{
		{"matches nothing", Patch{Source: "p.yaml", Entry: 2, Target: Selector{Kind: "Deployment", Name: "istiod-1-22-*"}, Type: PatchMerge, Patch: []byte(`{"a":1}`)},
			`p.yaml entry 2 (merge kind=Deployment,name=istiod-1-22-*): it matches no object`},
		{"does not apply", Patch{Source: "p.yaml", Entry: 1, Type: PatchJSON, Patch: []byte(`[{"op":"remove","path":"/spec/nope"}]`)},
			`failed to apply p.yaml entry 1 (json any object) to "Deployment istio-system/istiod-1-23-2"`},
		{"invalid selector", Patch{Target: Selector{LabelSelector: "a in ("}, Type: PatchMerge, Patch: []byte(`{}`)}, "invalid label selector"},
		{"no type", Patch{Patch: []byte(`{}`)}, "type is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PostProcess{Patches: []Patch{tc.patch}}.Apply(objs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestPostProcessRealRender(t *testing.T) {
	objs := rendered(t, "1.23.2")
	patches, err := parsePatches("patches.yaml", []byte(`
- target: {kind: Deployment, name: istiod-*, namespace: istio-system}
  type: strategic
  patch:
    spec:
      template:
        spec:
          priorityClassName: system-cluster-critical
          containers:
          - name: discovery
            env:
            - {name: PILOT_ENABLE_STATUS, value: "true"}
`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := PostProcess{Labels: map[string]string{"example.com/team": "mesh"}, Patches: patches}.Apply(objs)
	if err != nil {
		t.Fatal(err)
	}
	d := Compute(objs, out, DiffOptions{IgnorePaths: []string{`metadata.labels["example.com/team"]`}})
	if d.Summary.Changed != 1 || len(d.Objects[0].Fields) != 2 {
		t.Fatalf("post-process changed more than the patch: %+v", d.Objects)
	}
	if d.Objects[0].Fields[0].Path != "spec.template.spec.containers[name=discovery].env[name=PILOT_ENABLE_STATUS]" {
		t.Fatalf("fields %+v", d.Objects[0].Fields)
	}
}

func BenchmarkPostProcessSplit(b *testing.B) {
	objs := rendered(b, "1.23.2")
	pp := PostProcess{
		Labels: map[string]string{"example.com/team": "mesh"},
		Patches: []Patch{{Target: Selector{Kind: "Deployment", Name: "istiod-*"}, Type: PatchStrategic,
			Patch: []byte(`{"spec":{"template":{"spec":{"priorityClassName":"system-cluster-critical"}}}}`)}},
	}
	b.ResetTimer()
	for b.Loop() {
		out, err := pp.Apply(objs)
		if err != nil {
			b.Fatal(err)
		}
		if crds, rest := Split(out); len(crds) == 0 || len(rest) == 0 {
			b.Fatal("split failed")
		}
	}
}
