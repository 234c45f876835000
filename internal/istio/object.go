package istio

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Kinds that order first when applying: CRDs must exist before their
// objects, Namespaces before what lives in them.
const (
	kindCRD       = "CustomResourceDefinition"
	kindNamespace = "Namespace"
)

// namespaced reports whether an object of this kind lives in a namespace.
// Rendering has no cluster to ask, so the cluster-scoped kinds Istio's charts
// (and common additions) use are listed here; every other kind gets the
// release namespace when the template left it out, as `helm install` would.
func namespaced(obj *unstructured.Unstructured) bool {
	switch obj.GetKind() {
	case kindCRD, kindNamespace, "ClusterRole", "ClusterRoleBinding",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
		"PriorityClass", "StorageClass", "PersistentVolume", "APIService",
		"IngressClass", "GatewayClass", "RuntimeClass", "PodSecurityPolicy":
		return false
	}
	return true
}

// ParseManifest splits a multi-document YAML stream into objects, skipping
// empty documents (templates switched off by a condition render as comments
// or nothing). source names the template or file in errors. Rendering and
// reading back written manifests share it, so both accept the same input.
func ParseManifest(source, manifest string) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to split manifest %q: %w", source, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("failed to parse document %d of manifest %q: %w", i, source, err)
		}
		if len(m) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{Object: m}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("failed to parse document %d of manifest %q: apiVersion, kind and metadata.name are required", i, source)
		}
		objs = append(objs, obj)
	}
}

// objectKey identifies an object the way the API server does.
type objectKey struct {
	group, kind, namespace, name string
}

func keyOf(obj *unstructured.Unstructured) objectKey {
	gvk := obj.GroupVersionKind()
	return objectKey{group: gvk.Group, kind: gvk.Kind, namespace: obj.GetNamespace(), name: obj.GetName()}
}

// objectSet collects rendered objects, dropping repeated CRDs (a chart may
// ship them both in crds/ and as templates) and refusing other duplicates,
// which would fight each other when applied.
type objectSet struct {
	seen map[objectKey]bool
	objs []*unstructured.Unstructured
}

func newObjectSet() *objectSet { return &objectSet{seen: map[objectKey]bool{}} }

func (s *objectSet) add(objs []*unstructured.Unstructured) error {
	for _, obj := range objs {
		k := keyOf(obj)
		if s.seen[k] {
			if k.kind == kindCRD {
				continue
			}
			return fmt.Errorf("failed to collect object %q: rendered twice", describe(obj))
		}
		s.seen[k] = true
		s.objs = append(s.objs, obj)
	}
	return nil
}

// sorted returns the objects in apply order: CRDs, Namespaces, then by kind,
// namespace and name, so output is deterministic across runs and versions.
func (s *objectSet) sorted() []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), s.objs...)
	rank := func(kind string) int {
		switch kind {
		case kindCRD:
			return 0
		case kindNamespace:
			return 1
		default:
			return 2
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := keyOf(out[i]), keyOf(out[j])
		if ra, rb := rank(a.kind), rank(b.kind); ra != rb {
			return ra < rb
		}
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		if a.namespace != b.namespace {
			return a.namespace < b.namespace
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.group < b.group
	})
	return out
}

// describe names an object in messages and golden files: "Kind namespace/name"
// or "Kind name" for cluster-scoped objects.
func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + " " + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetName()
}
