package istio

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, manifest, wantErr string
		want                    []string
	}{
		{name: "empty", manifest: ""},
		{name: "comments and separators only", manifest: "# off\n---\n---\n# also off\n"},
		{name: "two docs", manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: x\n---\n# c\napiVersion: v1\nkind: ClusterRole\nmetadata:\n  name: b\n",
			want: []string{"ConfigMap x/a", "ClusterRole b"}},
		{name: "missing kind", manifest: "apiVersion: v1\nmetadata:\n  name: a\n", wantErr: "apiVersion, kind and metadata.name are required"},
		{name: "bad yaml", manifest: "apiVersion: v1\nkind: [\n", wantErr: `failed to parse document 0 of manifest "t.yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ParseManifest("t.yaml", tt.manifest)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseManifest() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, describe(o))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

func obj(apiVersion, kind, ns, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(ns)
	o.SetName(name)
	return o
}

func TestObjectSetOrderAndDuplicates(t *testing.T) {
	s := newObjectSet()
	err := s.add([]*unstructured.Unstructured{
		obj("apps/v1", "Deployment", "b", "x"),
		obj("v1", "Service", "a", "x"),
		obj("v1", "Namespace", "", "z"),
		obj("apps/v1", "Deployment", "a", "y"),
		obj("apiextensions.k8s.io/v1", kindCRD, "", "b.io"),
		obj("apiextensions.k8s.io/v1", kindCRD, "", "a.io"),
		obj("apiextensions.k8s.io/v1", kindCRD, "", "a.io"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range s.sorted() {
		got = append(got, describe(o))
	}
	want := []string{
		"CustomResourceDefinition a.io", "CustomResourceDefinition b.io", "Namespace z",
		"Deployment a/y", "Deployment b/x", "Service a/x",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if err := s.add([]*unstructured.Unstructured{obj("v1", "Service", "a", "x")}); err == nil || !strings.Contains(err.Error(), `"Service a/x": rendered twice`) {
		t.Errorf("duplicate Service error = %v", err)
	}
}

func TestSchemaKeysAndRootRef(t *testing.T) {
	schema := []byte(`{"$schema":"x","additionalProperties":false,"$ref":"#/$defs/values","$defs":{"values":{"type":"object","properties":{"service":{},"revision":{}}}}}`)
	fixed, err := fixRootRef(schema)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(fixed), "additionalProperties") {
		t.Errorf("fixRootRef kept a $ref sibling: %s", fixed)
	}
	keys, err := schemaKeys(fixed)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"service": true, "revision": true}, keys); diff != "" {
		t.Errorf("schemaKeys (-want +got):\n%s", diff)
	}
	if keys, err := schemaKeys(nil); keys != nil || err != nil {
		t.Errorf("schemaKeys(nil) = %v, %v; want nil, nil", keys, err)
	}
	if _, err := fixRootRef([]byte("{")); err == nil {
		t.Error("fixRootRef(bad json) = nil error")
	}
}
