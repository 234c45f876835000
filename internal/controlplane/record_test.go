package controlplane

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

func recordObj(apiVersion, kind, ns, name string, labels map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetLabels(labels)
	return u
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"empty", Record{Revision: "1-24-2", Version: "1.24.2", State: StateInstalling}},
		{"objects", Record{Revision: "rm-1-25-1", Version: "1.25.1", State: StateInstalled, Objects: []ObjectRef{
			{Version: "v1", Kind: "ServiceAccount", Namespace: "istio-system", Name: "istiod-rm-1-25-1"},
			{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: "istio-sidecar-injector-rm-1-25-1"},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, err := tt.rec.ConfigMap("istio-system")
			if err != nil {
				t.Fatal(err)
			}
			if cm.Name != "meshroll-revision-"+tt.rec.Revision || cm.Namespace != "istio-system" {
				t.Errorf("configmap %s/%s", cm.Namespace, cm.Name)
			}
			if cm.Labels[LabelManagedBy] != "meshroll" || cm.Labels[istio.LabelRev] != tt.rec.Revision {
				t.Errorf("labels = %v", cm.Labels)
			}
			got, err := DecodeRecord(cm)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.rec
			if want.Objects == nil {
				want.Objects = []ObjectRef{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	tests := []struct {
		name, objects string
	}{
		{"not json", "{"},
		{"missing kind", `[{"version":"v1","name":"x"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm, _ := Record{Revision: "r"}.ConfigMap("istio-system")
			cm.Data["objects"] = tt.objects
			if _, err := DecodeRecord(cm); err == nil {
				t.Error("DecodeRecord succeeded, want an error")
			}
		})
	}
}

func TestOwned(t *testing.T) {
	rev := "rm-1-25-1"
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
		want bool
	}{
		{"crd never", recordObj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "gateways.networking.istio.io", map[string]string{istio.LabelRev: rev}), false},
		{"namespace never", recordObj("v1", "Namespace", "", "istio-system", nil), false},
		{"labelled", recordObj("v1", "ConfigMap", "istio-system", "istio-sidecar-injector-"+rev, map[string]string{istio.LabelRev: rev}), true},
		{"named", recordObj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "istiod-clusterrole-"+rev+"-istio-system", nil), true},
		{"shared service account", recordObj("v1", "ServiceAccount", "istio-system", "istio-reader-service-account", nil), false},
		{"other revision", recordObj("v1", "ConfigMap", "istio-system", "istio-1-24-2", map[string]string{istio.LabelRev: "1-24-2"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Owned(tt.obj, rev); got != tt.want {
				t.Errorf("Owned = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestRecordMerge(t *testing.T) {
	a := ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "istio-system", Name: "a"}
	b := ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "istio-system", Name: "b"}
	c := ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "istio-system", Name: "a"}
	got := Record{Revision: "r", Objects: []ObjectRef{a, b}}.Merge([]ObjectRef{b, c, a})
	if diff := cmp.Diff([]ObjectRef{a, b, c}, got.Objects); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
}

func TestCheckPath(t *testing.T) {
	v := func(s string) plan.Version {
		x, err := plan.ParseVersion(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	var available []plan.Version
	for _, s := range []string{"1.22.5", "1.23.2", "1.24.2", "1.25.1", "1.26.1"} {
		available = append(available, v(s))
	}
	tests := []struct {
		name      string
		installed []string
		to        string
		ok        bool
	}{
		{"nothing installed", nil, "1.26.1", true},
		{"one minor", []string{"1.23.2"}, "1.24.2", true},
		{"two minors in one canary hop", []string{"1.23.2"}, "1.25.1", true},
		{"three minors need two hops", []string{"1.23.2"}, "1.26.1", false},
		{"downgrade", []string{"1.25.1"}, "1.23.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var installed []InstalledRevision
			for _, s := range tt.installed {
				installed = append(installed, InstalledRevision{Name: istio.RevisionName(s), Version: v(s)})
			}
			_, err := CheckPath(installed, v(tt.to), available)
			if (err == nil) != tt.ok {
				t.Errorf("CheckPath err = %v, want ok=%t", err, tt.ok)
			}
		})
	}
}
