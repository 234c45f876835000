package demo

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// workloadIn finds the expectation of a workload by namespace style and name.
func workloadIn(t *testing.T, p *Plan, e Expectation, style Style, name string) WorkloadExpectation {
	t.Helper()
	for _, x := range e.Workloads {
		for _, ns := range p.Namespaces {
			if ns.Name == x.Namespace && ns.Style == style && x.Name == name {
				return x
			}
		}
	}
	t.Fatalf("no workload %q in a %q namespace", name, style)
	return WorkloadExpectation{}
}

func TestExpectPlantedWorkloads(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := p.Expect()
	tests := []struct {
		style Style
		name  string
		want  WorkloadExpectation
	}{
		{StyleRevision, "legacy-proxy", WorkloadExpectation{Kind: KindPod, Pods: 1, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.1", Stale: true}},
		{StyleRevision, "ledger-db", WorkloadExpectation{Kind: KindStatefulSet, Pods: 2, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2"}},
		{StyleRevision, "schema-migrate", WorkloadExpectation{Kind: KindJob, Pods: 1, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2", Completes: true}},
		{StyleInjectionEnabled, "pinned-rev", WorkloadExpectation{Kind: KindDeployment, Pods: 2, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2", Restartable: true}},
		{StyleInjectionDisabled, "pinned-rev", WorkloadExpectation{Kind: KindDeployment, Pods: 2, Restartable: true}},
		{StyleInjectionEnabled, "opted-out", WorkloadExpectation{Kind: KindDeployment, Pods: 2, Restartable: true}},
		{StyleInjectionEnabled, "node-agent", WorkloadExpectation{Kind: KindDaemonSet, Pods: 1, PerNode: true, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2", Restartable: true}},
		{StyleNone, "log-shipper", WorkloadExpectation{Kind: KindDaemonSet, Pods: 1, PerNode: true, Restartable: true}},
		{StyleTag, "nightly-report", WorkloadExpectation{Kind: KindCronJob, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2", Restartable: false}},
		{StyleBothLabels, "storefront", WorkloadExpectation{Kind: KindDeployment, Pods: 2, Revision: "1-23-2",
			ProxyImage: "docker.io/istio/proxyv2:1.23.2", Restartable: true}},
		{StyleMissingRevision, "forgotten", WorkloadExpectation{Kind: KindDeployment, Pods: 2, Restartable: true}},
	}
	for _, tt := range tests {
		t.Run(string(tt.style)+"/"+tt.name, func(t *testing.T) {
			got := workloadIn(t, p, e, tt.style, tt.name)
			tt.want.Namespace, tt.want.Name = got.Namespace, tt.name
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("expectation mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpectNamespaces(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := map[Style]NamespaceExpectation{
		StyleInjectionEnabled:  {Revision: "1-23-2", Via: "default"},
		StyleRevision:          {Revision: "1-23-2", Via: "1-23-2"},
		StyleTag:               {Revision: "1-23-2", Via: "default"},
		StylePodLevel:          {},
		StyleNone:              {},
		StyleInjectionDisabled: {},
		StyleBothLabels:        {Revision: "1-23-2", Via: "default"},
		StyleMissingRevision:   {},
	}
	for _, ns := range p.Expect().Namespaces {
		w := want[ns.Style]
		if ns.Revision != w.Revision || ns.Via != w.Via {
			t.Errorf("namespace %s (%s): got revision %q via %q, want %q via %q", ns.Name, ns.Style, ns.Revision, ns.Via, w.Revision, w.Via)
		}
	}
}

func TestExpectCounts(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := p.Expect()
	total := 0
	for _, n := range e.Kinds {
		total += n
	}
	if total != len(p.Workloads) {
		t.Errorf("kinds sum to %d, want %d", total, len(p.Workloads))
	}
	for _, nodes := range []int{3, 10} {
		byRev := e.PodsByRevision(nodes)
		if byRev[""]+byRev["1-23-2"] != e.Pods(nodes) || len(byRev) != 2 {
			t.Errorf("nodes=%d: pods by revision %v do not add up to %d", nodes, byRev, e.Pods(nodes))
		}
	}
	if e.Pods(10)-e.Pods(3) != 7*e.Kinds[KindDaemonSet] {
		t.Errorf("DaemonSet pods do not scale with nodes: %d on 3, %d on 10", e.Pods(3), e.Pods(10))
	}
}

func TestExpectProblems(t *testing.T) {
	p, err := Build(fullOptions())
	if err != nil {
		t.Fatal(err)
	}
	e := p.Expect()
	tests := []struct {
		kind ProblemKind
		want []string // substrings of "namespace workload", one per problem, in order
	}{
		{ProblemBothLabels, []string{"both-labels"}},
		{ProblemMissingRevision, []string{"missing-revision"}},
		{ProblemStaleProxy, []string{"Pod/legacy-proxy"}},
		{ProblemPodLabelOverridden, []string{"Deployment/pinned-rev", "Deployment/pinned-rev", "Deployment/pinned-rev"}},
	}
	styleOf := map[string]Style{}
	for _, ns := range p.Namespaces {
		styleOf[ns.Name] = ns.Style
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			got := e.ProblemsOf(tt.kind)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %+v, want %d", len(got), got, len(tt.want))
			}
			for i, pr := range got {
				s := string(styleOf[pr.Namespace]) + " " + pr.Workload
				if !strings.Contains(s, tt.want[i]) {
					t.Errorf("problem %d: %q does not contain %q", i, s, tt.want[i])
				}
			}
		})
	}
	notRestartable := map[string]bool{}
	for _, pr := range e.ProblemsOf(ProblemNotRestartable) {
		notRestartable[pr.Namespace+"/"+pr.Workload] = true
	}
	for _, w := range e.Workloads {
		ref := w.Namespace + "/" + string(w.Kind) + "/" + w.Name
		// Completed Jobs pin their revision instead (CompletedPodsPinRevision),
		// and CronJobs migrate on their next run: neither needs a restart.
		want := w.Revision != "" && !w.Restartable && !w.Completes && w.Kind != KindCronJob
		if notRestartable[ref] != want {
			t.Errorf("%s: NotRestartable planted = %v, want %v", ref, notRestartable[ref], want)
		}
	}
	jobs := 0
	for _, w := range e.Workloads {
		if w.Kind == KindJob && w.Revision != "" {
			jobs++
		}
	}
	if n := len(e.ProblemsOf(ProblemCompletedPodsPinRevision)); n != jobs || n == 0 {
		t.Errorf("got %d CompletedPodsPinRevision problems, want one per injected Job (%d)", n, jobs)
	}
}
