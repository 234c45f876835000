package istio

import "testing"

func TestInjection(t *testing.T) {
	// Two revisions, a tag "prod" on 1-23-2 and the default tag on 1-22-1.
	inj := Injectors{
		Revisions: map[string]bool{"1-22-1": true, "1-23-2": true},
		Tags:      map[string]string{"prod": "1-23-2", "default": "1-22-1", "dangling": ""},
		Default:   "1-22-1",
	}
	noDefault := Injectors{Revisions: map[string]bool{"1-23-2": true}}
	auto := inj
	auto.EnableNamespacesByDefault = true
	legacy := Injectors{Revisions: map[string]bool{"default": true, "canary": true}, Default: "default"}

	type m = map[string]string
	tests := []struct {
		name     string
		inj      Injectors
		target   InjectionTarget
		wantRev  string // "" means not injected
		wantVia  string
		wantInjd bool
	}{
		{name: "no labels anywhere", inj: inj, target: InjectionTarget{Namespace: "a"}},
		{name: "istio-injection=enabled → default", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "istio-injection=enabled ignores pod istio.io/rev", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, PodLabels: m{LabelRev: "1-23-2"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "istio-injection=enabled wins over namespace istio.io/rev", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled", LabelRev: "1-23-2"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "istio-injection=enabled without a default injector", inj: noDefault,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}}},
		{name: "istio-injection=disabled opts out", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "disabled"}, PodLabels: m{LabelRev: "1-23-2"}}},
		{name: "istio-injection=disabled beats namespace rev", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "disabled", LabelRev: "1-23-2"}}},
		{name: "istio-injection=disabled beats pod inject=true", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "disabled"}, PodLabels: m{LabelSidecarInject: "true"}}},
		{name: "namespace rev names a revision", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "1-23-2"}},
			wantRev: "1-23-2", wantVia: "1-23-2", wantInjd: true},
		{name: "namespace rev names a tag", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}},
			wantRev: "1-23-2", wantVia: "prod", wantInjd: true},
		{name: "namespace rev=default follows the default tag", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "default"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "namespace rev=default on a legacy install", inj: legacy,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "default"}},
			wantRev: "default", wantVia: "default", wantInjd: true},
		{name: "namespace rev ignores pod rev", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}, PodLabels: m{LabelRev: "1-22-1"}},
			wantRev: "1-23-2", wantVia: "prod", wantInjd: true},
		{name: "namespace rev unknown", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "nope"}}},
		{name: "namespace rev names a tag without revision", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "dangling"}}},
		{name: "namespace rev unknown does not fall back to pod rev", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "nope"}, PodLabels: m{LabelRev: "1-23-2"}}},
		{name: "namespace rev: pod inject=true does not reach default", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "1-23-2"}, PodLabels: m{LabelSidecarInject: "true"}},
			wantRev: "1-23-2", wantVia: "1-23-2", wantInjd: true},
		{name: "pod rev names a revision", inj: inj,
			target:  InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "1-23-2"}},
			wantRev: "1-23-2", wantVia: "1-23-2", wantInjd: true},
		{name: "pod rev names a tag", inj: inj,
			target:  InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "prod"}},
			wantRev: "1-23-2", wantVia: "prod", wantInjd: true},
		{name: "pod rev unknown", inj: inj,
			target: InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "nope"}}},
		{name: "pod rev wins over pod inject=true", inj: inj,
			target:  InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "1-23-2", LabelSidecarInject: "true"}},
			wantRev: "1-23-2", wantVia: "1-23-2", wantInjd: true},
		{name: "pod rev unknown plus inject=true is not injected", inj: inj,
			target: InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "nope", LabelSidecarInject: "true"}}},
		{name: "pod inject=true → default", inj: inj,
			target:  InjectionTarget{Namespace: "a", PodLabels: m{LabelSidecarInject: "true"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "pod inject=true without default injector", inj: noDefault,
			target: InjectionTarget{Namespace: "a", PodLabels: m{LabelSidecarInject: "true"}}},
		{name: "pod inject=true as annotation only does not match the webhook", inj: inj,
			target: InjectionTarget{Namespace: "a", PodAnnotations: m{AnnotationSidecarInject: "true"}}},
		{name: "pod label inject=false opts out of namespace enabled", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, PodLabels: m{LabelSidecarInject: "false"}}},
		{name: "pod label inject=false opts out of namespace rev", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}, PodLabels: m{LabelSidecarInject: "false"}}},
		{name: "pod label inject=false opts out of pod rev", inj: inj,
			target: InjectionTarget{Namespace: "a", PodLabels: m{LabelRev: "prod", LabelSidecarInject: "false"}}},
		{name: "pod annotation inject=false opts out", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, PodAnnotations: m{AnnotationSidecarInject: "false"}}},
		{name: "pod annotation inject=false opts out of namespace rev", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}, PodAnnotations: m{AnnotationSidecarInject: "false"}}},
		{name: "pod label True wins over annotation false", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}, PodLabels: m{LabelSidecarInject: "True"}, PodAnnotations: m{AnnotationSidecarInject: "false"}},
			wantRev: "1-23-2", wantVia: "prod", wantInjd: true},
		{name: "pod label False passes the webhook but the injector refuses", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelRev: "prod"}, PodLabels: m{LabelSidecarInject: "False"}}},
		{name: "pod annotation yes is injected", inj: inj,
			target:  InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, PodAnnotations: m{AnnotationSidecarInject: "yes"}},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "pod annotation nonsense is not injected", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, PodAnnotations: m{AnnotationSidecarInject: "maybe"}}},
		{name: "hostNetwork never injected", inj: inj,
			target: InjectionTarget{Namespace: "a", NamespaceLabels: m{LabelInjection: "enabled"}, HostNetwork: true}},
		{name: "kube-system never injected", inj: inj,
			target: InjectionTarget{Namespace: "kube-system", NamespaceLabels: m{LabelInjection: "enabled"}}},
		{name: "enableNamespacesByDefault injects unlabelled", inj: auto,
			target:  InjectionTarget{Namespace: "a"},
			wantRev: "1-22-1", wantVia: "default", wantInjd: true},
		{name: "enableNamespacesByDefault respects pod inject label", inj: auto,
			target: InjectionTarget{Namespace: "a", PodLabels: m{LabelSidecarInject: "no"}}},
		{name: "enableNamespacesByDefault skips kube-public", inj: auto,
			target: InjectionTarget{Namespace: "kube-public"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.inj.Injection(tt.target)
			if got.Injected != tt.wantInjd || got.Revision != tt.wantRev || got.Via != tt.wantVia {
				t.Errorf("Injection() = %+v, want injected=%v revision=%q via=%q", got, tt.wantInjd, tt.wantRev, tt.wantVia)
			}
			if got.Reason == "" {
				t.Errorf("Injection() has no reason: %+v", got)
			}
		})
	}
}

func TestInjectorsResolve(t *testing.T) {
	inj := Injectors{
		Revisions: map[string]bool{"a": true, "both": true},
		Tags:      map[string]string{"t": "a", "both": "a"},
		Default:   "a",
	}
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"a", "a", true},
		{"t", "a", true},
		{"both", "both", true}, // a revision name wins over a tag of the same name
		{"default", "a", true},
		{"nope", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := inj.Resolve(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
