package demo

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInjectorResolve(t *testing.T) {
	inj := Injector{Revisions: []string{"1-23-2"}, Tags: map[string]string{"default": "1-23-2"}}
	m := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name string
		ns   map[string]string
		pod  map[string]string
		want Injection
	}{
		{"legacy namespace label goes through the default tag", m("istio-injection", "enabled"), nil,
			Injection{Revision: "1-23-2", Via: "default", Selector: "legacy"}},
		{"namespace revision label", m("istio.io/rev", "1-23-2"), nil,
			Injection{Revision: "1-23-2", Via: "1-23-2", Selector: "namespace"}},
		{"namespace tag label", m("istio.io/rev", "default"), nil,
			Injection{Revision: "1-23-2", Via: "default", Selector: "namespace"}},
		{"pod revision label in unlabelled namespace", nil, m("istio.io/rev", "1-23-2"),
			Injection{Revision: "1-23-2", Via: "1-23-2", Selector: "object"}},
		{"pod tag label in unlabelled namespace", nil, m("istio.io/rev", "default"),
			Injection{Revision: "1-23-2", Via: "default", Selector: "object"}},
		{"pod inject=true in unlabelled namespace", nil, m("sidecar.istio.io/inject", "true"),
			Injection{Revision: "1-23-2", Via: "default", Selector: "legacy"}},
		{"pod opt-out in injected namespace", m("istio-injection", "enabled"), m("sidecar.istio.io/inject", "false"), Injection{}},
		{"both namespace labels: istio-injection wins", m("istio-injection", "enabled", "istio.io/rev", "1-23-2"), nil,
			Injection{Revision: "1-23-2", Via: "default", Selector: "legacy"}},
		{"pod label overridden by namespace label", m("istio-injection", "enabled"), m("istio.io/rev", "1-23-2"),
			Injection{Revision: "1-23-2", Via: "default", Selector: "legacy"}},
		{"pod label ignored in disabled namespace", m("istio-injection", "disabled"), m("istio.io/rev", "1-23-2"), Injection{}},
		{"namespace points at a missing revision", m("istio.io/rev", "1-22-0"), nil, Injection{}},
		{"missing revision wins over pod label", m("istio.io/rev", "1-22-0"), m("istio.io/rev", "1-23-2"), Injection{}},
		{"unlabelled everything", nil, nil, Injection{}},
		{"pod inject=true with revision label uses the revision", nil, m("sidecar.istio.io/inject", "true", "istio.io/rev", "1-23-2"),
			Injection{Revision: "1-23-2", Via: "1-23-2", Selector: "object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, inj.Resolve(tt.ns, tt.pod)); diff != "" {
				t.Errorf("Resolve() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectorResolveWithoutDefaultTag(t *testing.T) {
	inj := Injector{Revisions: []string{"1-23-2"}, Tags: map[string]string{"prod": "1-23-2"}}
	if got := inj.Resolve(map[string]string{"istio-injection": "enabled"}, nil); got != (Injection{}) {
		t.Errorf("istio-injection=enabled without a default revision or tag: got %+v, want no injection", got)
	}
	if got := inj.Resolve(map[string]string{"istio.io/rev": "prod"}, nil); got.Revision != "1-23-2" {
		t.Errorf("tag prod: got %+v, want revision 1-23-2", got)
	}
}
