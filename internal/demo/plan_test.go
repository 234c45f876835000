package demo

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fullOptions is the issue's mix: ≥ 200 workloads in ≥ 20 namespaces.
func fullOptions() Options {
	return Options{Revision: "1-23-2", Tag: "default", Namespaces: 20, Workloads: 200}
}

func TestBuildRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no revision", Options{Tag: "default", Namespaces: 2, Workloads: 4}},
		{"no tag", Options{Revision: "1-23-2", Namespaces: 2, Workloads: 4}},
		{"no namespaces", Options{Revision: "1-23-2", Tag: "default", Workloads: 4}},
		{"fewer workloads than namespaces", Options{Revision: "1-23-2", Tag: "default", Namespaces: 5, Workloads: 4}},
		{"negative replicas", Options{Revision: "1-23-2", Tag: "default", Namespaces: 1, Workloads: 4, Replicas: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.opts); err == nil {
				t.Errorf("Build(%+v) succeeded, want an error", tt.opts)
			}
		})
	}
}

func TestBuildCountsAndMix(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		allStyles  bool
		wantKinds  []Kind
		wantProbls []ProblemKind
	}{
		{"issue mix", fullOptions(), true,
			[]Kind{KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob, KindPod},
			[]ProblemKind{ProblemBothLabels, ProblemMissingRevision, ProblemPodLabelOverridden, ProblemStaleProxy,
				ProblemNotRestartable, ProblemCompletedPodsPinRevision}},
		{"larger", Options{Revision: "1-23-2", Tag: "default", Namespaces: 37, Workloads: 1000, Replicas: 3}, true,
			[]Kind{KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob, KindPod},
			[]ProblemKind{ProblemBothLabels, ProblemMissingRevision, ProblemPodLabelOverridden, ProblemStaleProxy,
				ProblemNotRestartable, ProblemCompletedPodsPinRevision}},
		{"small integration plan", Options{Revision: "1-23-2", Tag: "default", Namespaces: 4, Workloads: 20}, false,
			[]Kind{KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob, KindPod},
			[]ProblemKind{ProblemPodLabelOverridden, ProblemStaleProxy, ProblemNotRestartable, ProblemCompletedPodsPinRevision}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(tt.opts)
			if err != nil {
				t.Fatalf("Build() error: %v", err)
			}
			if len(p.Namespaces) != tt.opts.Namespaces || len(p.Workloads) != tt.opts.Workloads {
				t.Fatalf("got %d namespaces and %d workloads, want %d and %d", len(p.Namespaces), len(p.Workloads), tt.opts.Namespaces, tt.opts.Workloads)
			}
			styles := map[Style]bool{}
			for _, ns := range p.Namespaces {
				styles[ns.Style] = true
			}
			if tt.allStyles {
				for _, s := range []Style{StyleInjectionEnabled, StyleRevision, StyleTag, StylePodLevel, StyleNone,
					StyleInjectionDisabled, StyleBothLabels, StyleMissingRevision} {
					if !styles[s] {
						t.Errorf("style %q missing", s)
					}
				}
			}
			kinds := map[Kind]int{}
			perNamespace := map[string]int{}
			seen := map[string]bool{}
			for _, w := range p.Workloads {
				kinds[w.Kind]++
				perNamespace[w.Namespace]++
				if seen[w.Ref()] {
					t.Errorf("duplicate workload %s", w.Ref())
				}
				seen[w.Ref()] = true
			}
			for _, k := range tt.wantKinds {
				if kinds[k] == 0 {
					t.Errorf("kind %s missing", k)
				}
			}
			if kinds[KindDeployment] <= len(p.Workloads)/2 {
				t.Errorf("got %d Deployments of %d workloads, want most", kinds[KindDeployment], len(p.Workloads))
			}
			if kinds[KindDaemonSet] > 2 {
				t.Errorf("got %d DaemonSets, want at most 2", kinds[KindDaemonSet])
			}
			for _, ns := range p.Namespaces {
				if perNamespace[ns.Name] == 0 {
					t.Errorf("namespace %s has no workload", ns.Name)
				}
			}
			e := p.Expect()
			for _, k := range tt.wantProbls {
				if len(e.ProblemsOf(k)) == 0 {
					t.Errorf("problem %s not planted", k)
				}
			}
		})
	}
}

func TestBuildEveryLabellingStyle(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	styles := map[Style]bool{}
	for _, ns := range p.Namespaces {
		styles[ns.Style] = true
	}
	// How pods come to be injected, or not: every path must occur at least once.
	got := map[string]int{}
	for _, w := range p.Workloads {
		var style Style
		for _, ns := range p.Namespaces {
			if ns.Name == w.Namespace {
				style = ns.Style
			}
		}
		switch {
		case w.PodLabels["sidecar.istio.io/inject"] == "false" && style != StyleNone && w.PreInjectedImage == "":
			got["pod opt-out in injected namespace"]++
		case w.Injection.Selector == "object" && w.PodLabels["istio.io/rev"] == "1-23-2":
			got["pod istio.io/rev=<revision>"]++
		case w.Injection.Selector == "object" && w.PodLabels["istio.io/rev"] == "default":
			got["pod istio.io/rev=<tag>"]++
		case w.Injection.Selector == "legacy" && style == StylePodLevel:
			got["pod sidecar.istio.io/inject=true"]++
		case w.Injection.Selector == "legacy":
			got["namespace istio-injection=enabled"]++
		case w.Injection.Selector == "namespace" && w.Injection.Via == "1-23-2":
			got["namespace istio.io/rev=<revision>"]++
		case w.Injection.Selector == "namespace" && w.Injection.Via == "default":
			got["namespace istio.io/rev=<tag>"]++
		case w.Injection.Revision == "":
			got["not injected"]++
		}
	}
	for _, want := range []string{"pod opt-out in injected namespace", "pod istio.io/rev=<revision>", "pod istio.io/rev=<tag>",
		"pod sidecar.istio.io/inject=true", "namespace istio-injection=enabled", "namespace istio.io/rev=<revision>",
		"namespace istio.io/rev=<tag>", "not injected"} {
		if got[want] == 0 {
			t.Errorf("no workload injected through %q (got %v)", want, got)
		}
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two builds differ (-first +second):\n%s", diff)
	}
}

func TestBuildNamesAreValid(t *testing.T) {
	p, err := Build(Options{Revision: "1-23-2", Tag: "default", Namespaces: 60, Workloads: 2000, Prefix: "a-long-prefix"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range p.Namespaces {
		if len(ns.Name) > 63 {
			t.Errorf("namespace name %q too long", ns.Name)
		}
	}
	for _, w := range p.Workloads {
		if len(w.Name) > 52 { // CronJob names are limited to 52 characters
			t.Errorf("workload name %q too long", w.Name)
		}
	}
}

// ExampleBuild shows the shape of the issue's mix.
func ExampleBuild() {
	p, _ := Build(Options{Revision: "1-23-2", Tag: "default", Namespaces: 20, Workloads: 200})
	e := p.Expect()
	fmt.Println(len(p.Namespaces), "namespaces")
	for _, k := range []Kind{KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob, KindPod} {
		fmt.Println(k, e.Kinds[k])
	}
	fmt.Println("pods by revision on 5 nodes:", e.PodsByRevision(5))
	// Output:
	// 20 namespaces
	// Deployment 146
	// StatefulSet 19
	// DaemonSet 2
	// Job 10
	// CronJob 11
	// Pod 12
	// pods by revision on 5 nodes: map[:109 1-23-2:253]
}
