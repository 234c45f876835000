package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
)

// RecordPrefix prefixes the ConfigMap (in the istiod namespace) that records
// which objects an install applied, so remove deletes exactly those and never
// guesses from labels (Istio's charts do not label everything they create).
const RecordPrefix = "meshroll-revision-"

// LabelManagedBy marks objects meshroll owns.
const LabelManagedBy = "app.kubernetes.io/managed-by"

// Record data keys.
const (
	recordKeyRevision = "revision"
	recordKeyVersion  = "version"
	recordKeyObjects  = "objects"
	recordKeyState    = "state"
)

// Record states: an install writes Installing before its first
// revision-owned write and Installed once istiod is available.
const (
	StateInstalling = "installing"
	StateInstalled  = "installed"
)

// ObjectRef names one applied object; it is everything delete needs.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r ObjectRef) String() string {
	kind := r.Kind
	if r.Group != "" {
		kind += "." + r.Group
	}
	if r.Namespace == "" {
		return kind + "/" + r.Name
	}
	return kind + " " + r.Namespace + "/" + r.Name
}

func (r ObjectRef) key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// RefOf returns the reference to obj.
func RefOf(obj *unstructured.Unstructured) ObjectRef {
	gvk := obj.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Record is what one revision's install applied, kept in the cluster so that
// a later remove (or an install resumed after a crash) knows it exactly.
type Record struct {
	Revision string
	Version  string
	// State is StateInstalling until an install completes.
	State string
	// Objects are in apply order; remove deletes them in reverse.
	Objects []ObjectRef
}

// RecordName is the ConfigMap name of a revision's record.
func RecordName(rev string) string { return RecordPrefix + rev }

// Owned reports whether an install of rev owns obj and may delete it on
// remove. CRDs and namespaces are shared by every revision, and so are
// objects whose name does not carry the revision and that are not labelled
// with it (e.g. istio-reader-service-account): removing one revision must
// never break another.
func Owned(obj *unstructured.Unstructured, rev string) bool {
	switch obj.GetKind() {
	case "CustomResourceDefinition", "Namespace":
		return false
	}
	if obj.GetLabels()[istio.LabelRev] == rev {
		return true
	}
	return strings.Contains(obj.GetName(), rev)
}

// Merge returns r's objects followed by the refs it lacks, so a record only
// grows: an object applied by an earlier run stays tracked even when a later
// render no longer produces it (install never prunes).
func (r Record) Merge(refs []ObjectRef) Record {
	out := Record{Revision: r.Revision, Version: r.Version, State: r.State, Objects: append([]ObjectRef(nil), r.Objects...)}
	seen := map[string]bool{}
	for _, o := range out.Objects {
		seen[o.key()] = true
	}
	for _, o := range refs {
		if !seen[o.key()] {
			seen[o.key()] = true
			out.Objects = append(out.Objects, o)
		}
	}
	return out
}

// ConfigMap encodes the record as the ConfigMap ns/meshroll-revision-<rev>.
func (r Record) ConfigMap(ns string) (*corev1.ConfigMap, error) {
	objs := r.Objects
	if objs == nil {
		objs = []ObjectRef{}
	}
	b, err := json.Marshal(objs)
	if err != nil {
		return nil, fmt.Errorf("failed to encode record %q: %w", RecordName(r.Revision), err)
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      RecordName(r.Revision),
			Namespace: ns,
			Labels:    map[string]string{LabelManagedBy: FieldManager, istio.LabelRev: r.Revision},
		},
		Data: map[string]string{recordKeyRevision: r.Revision, recordKeyVersion: r.Version, recordKeyState: r.State, recordKeyObjects: string(b)},
	}, nil
}

// DecodeRecord reads a record back from its ConfigMap.
func DecodeRecord(cm *corev1.ConfigMap) (Record, error) {
	r := Record{Revision: cm.Data[recordKeyRevision], Version: cm.Data[recordKeyVersion], State: cm.Data[recordKeyState]}
	if r.Revision == "" {
		r.Revision = strings.TrimPrefix(cm.Name, RecordPrefix)
	}
	if s := cm.Data[recordKeyObjects]; s != "" {
		if err := json.Unmarshal([]byte(s), &r.Objects); err != nil {
			return r, fmt.Errorf("failed to decode record %q: %w", cm.Namespace+"/"+cm.Name, err)
		}
	}
	for i, o := range r.Objects {
		if o.Kind == "" || o.Version == "" || o.Name == "" {
			return r, fmt.Errorf("failed to decode record %q: object %d lacks kind, version or name", cm.Namespace+"/"+cm.Name, i)
		}
	}
	return r, nil
}

// ReadRecord returns the revision's record; found is false when there is none.
func ReadRecord(ctx context.Context, kc kubernetes.Interface, ns, rev string) (rec Record, found bool, err error) {
	cm, err := kc.CoreV1().ConfigMaps(ns).Get(ctx, RecordName(rev), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Record{Revision: rev}, false, nil
	}
	if err != nil {
		return Record{Revision: rev}, false, fmt.Errorf("failed to read record %q: %w", ns+"/"+RecordName(rev), err)
	}
	rec, err = DecodeRecord(cm)
	return rec, err == nil, err
}

// ListRecords returns every revision record in ns, sorted by revision.
func ListRecords(ctx context.Context, kc kubernetes.Interface, ns string) ([]Record, error) {
	list, err := kc.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + FieldManager})
	if err != nil {
		return nil, fmt.Errorf("failed to list revision records in %q: %w", ns, err)
	}
	var out []Record
	for i := range list.Items {
		if !strings.HasPrefix(list.Items[i].Name, RecordPrefix) {
			continue
		}
		r, err := DecodeRecord(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

// WriteRecord server-side applies the record's ConfigMap.
func WriteRecord(ctx context.Context, a *Applier, ns string, r Record) error {
	cm, err := r.ConfigMap(ns)
	if err != nil {
		return err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
	if err != nil {
		return fmt.Errorf("failed to encode record %q: %w", RecordName(r.Revision), err)
	}
	delete(m["metadata"].(map[string]any), "creationTimestamp")
	if _, err := a.Apply(ctx, []*unstructured.Unstructured{{Object: m}}); err != nil {
		return fmt.Errorf("failed to write record %q: %w", ns+"/"+RecordName(r.Revision), err)
	}
	return nil
}
