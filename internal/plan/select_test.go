package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

func TestSelect(t *testing.T) {
	tests := []struct {
		name     string
		nss      []inventory.Namespace
		wls      []inventory.Workload
		from, to string // default selOld → selNew
		sel      Selection

		wantMoves []moveView
		wantNS    []LabelMove
		wantTags  []LabelMove
		// wantErr lists substrings of the error; wantErrOnce must occur
		// exactly once in it.
		wantErr     []string
		wantErrOnce string
	}{
		{
			name:      "namespace labelled with the source revision is relabelled",
			nss:       []inventory.Namespace{nsRev("shop", selOld)},
			wls:       []inventory.Workload{deploy("shop", "web", selOld, 2)},
			wantMoves: []moveView{mv("shop", "web", MechanismNamespace, selOld, 2)},
			wantNS:    []LabelMove{lm("shop")},
		},
		{
			name: "one relabel per namespace, sorted by name",
			nss:  []inventory.Namespace{nsRev("b", selOld), nsRev("a", selOld)},
			wls: []inventory.Workload{
				deploy("a", "x", selOld, 1), deploy("a", "y", selOld, 1), deploy("b", "z", selOld, 3),
			},
			wantMoves: []moveView{
				mv("a", "x", MechanismNamespace, selOld, 1), mv("a", "y", MechanismNamespace, selOld, 1),
				mv("b", "z", MechanismNamespace, selOld, 3),
			},
			wantNS: []LabelMove{lm("a"), lm("b")},
		},
		{
			name:      "namespace labelled with a tag on the source moves the tag",
			nss:       []inventory.Namespace{nsRev("shop", "prod")},
			wls:       []inventory.Workload{deploy("shop", "web", selOld, 2)},
			wantMoves: []moveView{mv("shop", "web", MechanismTag, "prod", 2)},
			wantTags:  []LabelMove{lm("prod")},
		},
		{
			name:      "istio-injection=enabled moves the default tag",
			nss:       []inventory.Namespace{nsInjection("legacy", "enabled")},
			wls:       []inventory.Workload{deploy("legacy", "web", selOld, 1)},
			wantMoves: []moveView{mv("legacy", "web", MechanismTag, istio.DefaultRevision, 1)},
			wantTags:  []LabelMove{lm(istio.DefaultRevision)},
		},
		{
			name:      "unlabelled namespace and pod template naming the source: pod label",
			nss:       []inventory.Namespace{nsPlain("shop")},
			wls:       []inventory.Workload{templateRev(deploy("shop", "web", selOld, 2), selOld)},
			wantMoves: []moveView{mv("shop", "web", MechanismPod, selOld, 2)},
		},
		{
			name:      "pod template naming a tag on the source moves the tag",
			nss:       []inventory.Namespace{nsPlain("shop")},
			wls:       []inventory.Workload{templateRev(deploy("shop", "web", selOld, 2), "prod")},
			wantMoves: []moveView{mv("shop", "web", MechanismTag, "prod", 2)},
			wantTags:  []LabelMove{lm("prod")},
		},
		{
			name:      "pod template already naming the target only restarts",
			nss:       []inventory.Namespace{nsPlain("shop")},
			wls:       []inventory.Workload{templateRev(deploy("shop", "web", selOld, 2), selNew)},
			wantMoves: []moveView{mv("shop", "web", MechanismRestart, selNew, 2)},
		},
		{
			name:      "namespace already relabelled to the target only restarts",
			nss:       []inventory.Namespace{nsRev("shop", selNew)},
			wls:       []inventory.Workload{deploy("shop", "web", selOld, 2)},
			wantMoves: []moveView{mv("shop", "web", MechanismRestart, selNew, 2)},
		},
		{
			name:      "namespace on a tag that already points at the target only restarts",
			nss:       []inventory.Namespace{nsRev("shop", "canary")},
			wls:       []inventory.Workload{deploy("shop", "web", selOld, 2)},
			wantMoves: []moveView{mv("shop", "web", MechanismRestart, "canary", 2)},
		},
		{
			name:      "namespace label wins over the pod template label",
			nss:       []inventory.Namespace{nsRev("shop", "prod")},
			wls:       []inventory.Workload{templateRev(deploy("shop", "web", selOld, 2), selOld)},
			wantMoves: []moveView{mv("shop", "web", MechanismTag, "prod", 2)},
			wantTags:  []LabelMove{lm("prod")},
		},
		{
			name:      "unlabelled namespace and pod: the default injector's tag moves",
			nss:       []inventory.Namespace{nsPlain("shop")},
			wls:       []inventory.Workload{deploy("shop", "web", selOld, 1)},
			wantMoves: []moveView{mv("shop", "web", MechanismTag, istio.DefaultRevision, 1)},
			wantTags:  []LabelMove{lm(istio.DefaultRevision)},
		},
		{
			name: "workload missing from the namespace list is judged by its template",
			wls:  []inventory.Workload{templateRev(deploy("ghost", "web", selOld, 1), selOld)},
			wantMoves: []moveView{
				mv("ghost", "web", MechanismPod, selOld, 1),
			},
		},
		{
			name: "every mechanism at once, label moves deduplicated",
			nss: []inventory.Namespace{
				nsRev("a", selOld), nsRev("b", "prod"), nsInjection("c", "enabled"), nsPlain("d"), nsRev("e", "prod"),
			},
			wls: []inventory.Workload{
				deploy("a", "web", selOld, 1),
				deploy("b", "web", selOld, 1),
				deploy("c", "web", selOld, 1),
				templateRev(deploy("d", "pinned", selOld, 1), selOld),
				templateRev(deploy("d", "tagged", selOld, 1), "prod"),
				templateRev(deploy("d", "done", selOld, 1), selNew),
				deploy("e", "web", selOld, 1),
			},
			wantMoves: []moveView{
				mv("a", "web", MechanismNamespace, selOld, 1),
				mv("b", "web", MechanismTag, "prod", 1),
				mv("c", "web", MechanismTag, istio.DefaultRevision, 1),
				mv("d", "pinned", MechanismPod, selOld, 1),
				mv("d", "tagged", MechanismTag, "prod", 1),
				mv("d", "done", MechanismRestart, selNew, 1),
				mv("e", "web", MechanismTag, "prod", 1),
			},
			wantNS:   []LabelMove{lm("a")},
			wantTags: []LabelMove{lm(istio.DefaultRevision), lm("prod")},
		},
		{
			name: "non-restartable workloads are carried with their reason",
			nss:  []inventory.Namespace{nsRev("batch", selOld)},
			wls: []inventory.Workload{
				notRestartable(deploy("batch", "nightly", selOld, 1), "Job", "a Job's pods are never replaced; delete them after it finishes"),
				deploy("batch", "api", selOld, 2),
			},
			wantMoves: []moveView{
				{Ref: "Job batch/nightly", Mechanism: MechanismNamespace, Via: selOld, Restartable: false,
					Reason: "a Job's pods are never replaced; delete them after it finishes", Pods: 1},
				mv("batch", "api", MechanismNamespace, selOld, 2),
			},
			wantNS: []LabelMove{lm("batch")},
		},
		{
			name: "workloads without running pods on the source are not selected",
			nss:  []inventory.Namespace{nsRev("shop", selOld)},
			wls: []inventory.Workload{
				proxies(deploy("shop", "finished", selOld, 0), inventory.ProxyGroup{Revision: selOld, Image: proxyImage(selOld), Terminated: 3}),
				deploy("shop", "moved", selNew, 2),
				proxies(deploy("shop", "plain", "", 0), inventory.ProxyGroup{Pods: 2}),
				deploy("shop", "web", selOld, 1),
			},
			wantMoves: []moveView{mv("shop", "web", MechanismNamespace, selOld, 1)},
			wantNS:    []LabelMove{lm("shop")},
		},
		{
			name: "a half-moved workload counts all its pods",
			nss:  []inventory.Namespace{nsRev("shop", selOld)},
			wls: []inventory.Workload{proxies(deploy("shop", "web", selOld, 0),
				inventory.ProxyGroup{Revision: selNew, Image: proxyImage(selNew), Pods: 2},
				inventory.ProxyGroup{Revision: selOld, Image: proxyImage(selOld), Pods: 1})},
			wantMoves: []moveView{mv("shop", "web", MechanismNamespace, selOld, 3)},
			wantNS:    []LabelMove{lm("shop")},
		},
		{
			name: "from == to selects only stale sidecars, to restart",
			from: selNew, to: selNew,
			nss: []inventory.Namespace{nsRev("shop", selNew)},
			wls: []inventory.Workload{
				deploy("shop", "current", selNew, 2),
				proxies(deploy("shop", "stale", selNew, 0),
					inventory.ProxyGroup{Revision: selNew, Image: proxyImage(selNew), WantImage: proxyImage(selNew), Pods: 1},
					inventory.ProxyGroup{Revision: selNew, Image: "docker.io/istio/proxyv2:1.24.1", WantImage: proxyImage(selNew), Pods: 1}),
				deploy("shop", "other", selOld, 2),
			},
			wantMoves: []moveView{mv("shop", "stale", MechanismRestart, selNew, 2)},
		},
		{
			// A pinned or distroless sidecar runs exactly what its injector
			// gives it: restarting it changes nothing (#14 defects 2 and 4).
			name: "from == to leaves pinned and distroless sidecars alone",
			from: selNew, to: selNew,
			nss: []inventory.Namespace{nsRev("shop", selNew)},
			wls: []inventory.Workload{
				proxies(deploy("shop", "pinned", selNew, 0),
					inventory.ProxyGroup{Revision: selNew, Image: "my.registry/proxy:1.0", WantImage: "my.registry/proxy:1.0", Pods: 1}),
				proxies(deploy("shop", "distroless", selNew, 0),
					inventory.ProxyGroup{Revision: selNew, Image: proxyImage(selNew) + "-distroless", WantImage: proxyImage(selNew) + "-distroless", Pods: 1}),
				proxies(deploy("shop", "stale", selNew, 0),
					inventory.ProxyGroup{Revision: selNew, Image: "docker.io/istio/proxyv2:1.24.1", WantImage: proxyImage(selNew), Pods: 1}),
			},
			wantMoves: []moveView{mv("shop", "stale", MechanismRestart, selNew, 1)},
		},
		{
			name: "from == to with every sidecar current selects nothing",
			from: selNew, to: selNew,
			nss:     []inventory.Namespace{nsRev("shop", selNew)},
			wls:     []inventory.Workload{deploy("shop", "current", selNew, 2)},
			wantErr: []string{"matches no workload running " + selNew},
		},
		{
			name: "uninstalled source that still runs proxies can be left",
			from: selGone,
			nss:  []inventory.Namespace{nsRev("shop", selNew)},
			wls:  []inventory.Workload{deploy("shop", "web", selGone, 2)},
			wantMoves: []moveView{
				mv("shop", "web", MechanismRestart, selNew, 2),
			},
		},
		{
			name: "Namespaces restricts to the listed namespaces",
			nss:  []inventory.Namespace{nsRev("a", selOld), nsRev("b", selOld)},
			wls:  []inventory.Workload{deploy("a", "web", selOld, 1), deploy("b", "web", selOld, 1)},
			sel:  Selection{Namespaces: []string{"b"}},
			wantMoves: []moveView{
				mv("b", "web", MechanismNamespace, selOld, 1),
			},
			wantNS: []LabelMove{lm("b")},
		},
		{
			name: "ExcludeNamespaces and ExcludeWorkloads drop workloads",
			nss:  []inventory.Namespace{nsRev("a", selOld), nsRev("b", selOld), nsRev("c", selOld)},
			wls: []inventory.Workload{
				deploy("a", "web", selOld, 1), deploy("b", "web", selOld, 1),
				deploy("c", "keep", selOld, 1), deploy("c", "web", selOld, 1),
			},
			sel: Selection{ExcludeNamespaces: []string{"a"}, ExcludeWorkloads: []string{"Deployment b/web"}},
			wantMoves: []moveView{
				mv("c", "keep", MechanismNamespace, selOld, 1), mv("c", "web", MechanismNamespace, selOld, 1),
			},
			wantNS: []LabelMove{lm("c")},
		},
		{
			name:    "excluding one workload of a namespace that is relabelled is refused",
			nss:     []inventory.Namespace{nsRev("c", selOld)},
			wls:     []inventory.Workload{deploy("c", "keep", selOld, 1), deploy("c", "web", selOld, 1)},
			sel:     Selection{ExcludeWorkloads: []string{"Deployment c/web"}},
			wantErr: []string{"moving namespace c would also move 1 workload(s) outside the selection (Deployment c/web)"},
		},
		{
			name: "ExcludeWorkloads names the kind too",
			nss:  []inventory.Namespace{nsRev("a", selOld)},
			wls:  []inventory.Workload{deploy("a", "web", selOld, 1)},
			sel:  Selection{ExcludeWorkloads: []string{"StatefulSet a/web"}},
			wantMoves: []moveView{
				mv("a", "web", MechanismNamespace, selOld, 1),
			},
			wantNS: []LabelMove{lm("a")},
		},
		{
			name: "NamespaceSelector matches the full namespace labels",
			nss:  []inventory.Namespace{nsRev("pay", selOld), nsRev("shop", selOld)},
			wls:  []inventory.Workload{deploy("pay", "api", selOld, 1), deploy("shop", "web", selOld, 1)},
			sel: Selection{
				NamespaceSelector: labels.SelectorFromSet(labels.Set{"team": "payments"}),
				NamespaceLabels: map[string]map[string]string{
					"pay":  {"team": "payments", istio.LabelRev: selOld},
					"shop": {"team": "retail", istio.LabelRev: selOld},
				},
			},
			wantMoves: []moveView{mv("pay", "api", MechanismNamespace, selOld, 1)},
			wantNS:    []LabelMove{lm("pay")},
		},
		{
			name: "NamespaceSelector without full labels matches injection labels and the name",
			nss:  []inventory.Namespace{nsInjection("legacy", "enabled"), nsRev("shop", selOld)},
			wls:  []inventory.Workload{deploy("legacy", "web", selOld, 1), deploy("shop", "web", selOld, 1)},
			sel:  Selection{NamespaceSelector: labels.SelectorFromSet(labels.Set{istio.LabelInjection: "enabled"})},
			wantMoves: []moveView{
				mv("legacy", "web", MechanismTag, istio.DefaultRevision, 1),
			},
			wantTags: []LabelMove{lm(istio.DefaultRevision)},
		},
		{
			name: "NamespaceSelector on kubernetes.io/metadata.name",
			nss:  []inventory.Namespace{nsRev("a", selOld), nsRev("b", selOld)},
			wls:  []inventory.Workload{deploy("a", "web", selOld, 1), deploy("b", "web", selOld, 1)},
			sel:  Selection{NamespaceSelector: labels.SelectorFromSet(labels.Set{"kubernetes.io/metadata.name": "a"})},
			wantMoves: []moveView{
				mv("a", "web", MechanismNamespace, selOld, 1),
			},
			wantNS: []LabelMove{lm("a")},
		},
		{
			name: "both injection labels: refused, namespace named once",
			nss:  []inventory.Namespace{nsBoth("mixed", selOld), nsRev("shop", selOld)},
			wls: []inventory.Workload{
				deploy("mixed", "a", selOld, 1), deploy("mixed", "b", selOld, 1), deploy("mixed", "c", selOld, 1),
				deploy("shop", "web", selOld, 1),
			},
			wantErr:     []string{"labels conflict", "istio-injection=enabled", "istio.io/rev=" + selOld, "--exclude-namespace mixed"},
			wantErrOnce: "namespace mixed has both",
		},
		{
			name: "both injection labels on an excluded namespace do not matter",
			nss:  []inventory.Namespace{nsBoth("mixed", selOld), nsRev("shop", selOld)},
			wls:  []inventory.Workload{deploy("mixed", "a", selOld, 1), deploy("shop", "web", selOld, 1)},
			sel:  Selection{ExcludeNamespaces: []string{"mixed"}},
			wantMoves: []moveView{
				mv("shop", "web", MechanismNamespace, selOld, 1),
			},
			wantNS: []LabelMove{lm("shop")},
		},
		{
			name:    "a label that resolves to no revision is refused, naming the workload",
			nss:     []inventory.Namespace{nsRev("shop", "nightly")},
			wls:     []inventory.Workload{deploy("shop", "web", selOld, 1)},
			wantErr: []string{"Deployment shop/web", `"nightly"`, "does not resolve to " + selOld},
		},
		{
			name:    "target not installed",
			to:      "1-25-1",
			nss:     []inventory.Namespace{nsRev("shop", selOld)},
			wls:     []inventory.Workload{deploy("shop", "web", selOld, 1)},
			wantErr: []string{`target revision "1-25-1" is not installed`},
		},
		{
			name:    "source neither installed nor running",
			from:    selGone,
			nss:     []inventory.Namespace{nsRev("shop", selOld)},
			wls:     []inventory.Workload{deploy("shop", "web", selOld, 1)},
			wantErr: []string{`source revision "` + selGone + `" is neither installed nor running any proxy`},
		},
		{
			name:    "nothing runs the source",
			nss:     []inventory.Namespace{nsRev("shop", selNew)},
			wls:     []inventory.Workload{deploy("shop", "web", selNew, 1)},
			wantErr: []string{"matches no workload running " + selOld},
		},
		{
			name:    "filters leave nothing",
			nss:     []inventory.Namespace{nsRev("shop", selOld)},
			wls:     []inventory.Workload{deploy("shop", "web", selOld, 1)},
			sel:     Selection{Namespaces: []string{"elsewhere"}},
			wantErr: []string{"matches no workload running " + selOld},
		},
		{
			// Istio's injector webhooks skip namespaces labelled
			// istio-injection=disabled, so restarting these pods removes
			// their sidecars instead of moving them.
			name:    "istio-injection=disabled namespace is not moved by the default tag",
			nss:     []inventory.Namespace{nsInjection("optout", "disabled")},
			wls:     []inventory.Workload{deploy("optout", "web", selOld, 1)},
			wantErr: []string{"optout"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from, to := tc.from, tc.to
			if from == "" {
				from = selOld
			}
			if to == "" {
				to = selNew
			}
			got, err := Select(selSnapshot(tc.nss, tc.wls...), from, to, tc.sel)
			if len(tc.wantErr) > 0 || tc.wantErrOnce != "" {
				if err == nil {
					t.Fatalf("Select() = %+v, want an error", viewMoves(got.Moves))
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Select() error = %q, want it to contain %q", err, want)
					}
				}
				if tc.wantErrOnce != "" {
					if n := strings.Count(err.Error(), tc.wantErrOnce); n != 1 {
						t.Errorf("Select() error = %q contains %q %d times, want once", err, tc.wantErrOnce, n)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Select() error = %v", err)
			}
			if diff := cmp.Diff(tc.wantMoves, viewMoves(got.Moves)); diff != "" {
				t.Errorf("Select() moves (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantNS, got.Namespaces, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Select() namespaces (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTags, got.Tags, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Select() tags (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSelectCandidateLabels checks the namespace labels a Move carries for
// ordering selectors: the caller's full labels when given, else the
// injection labels plus the name.
func TestSelectCandidateLabels(t *testing.T) {
	nss := []inventory.Namespace{nsRev("shop", selOld), nsInjection("legacy", "enabled")}
	wls := []inventory.Workload{deploy("legacy", "web", selOld, 1), deploy("shop", "web", selOld, 1)}
	full := map[string]map[string]string{"shop": {"tier": "critical"}}

	tests := []struct {
		name     string
		nsLabels map[string]map[string]string
		want     map[string]map[string]string // by namespace
	}{
		{
			name: "fallback to injection labels",
			want: map[string]map[string]string{
				"legacy": {"kubernetes.io/metadata.name": "legacy", istio.LabelInjection: "enabled"},
				"shop":   {"kubernetes.io/metadata.name": "shop", istio.LabelRev: selOld},
			},
		},
		{
			name:     "full labels where the caller read them",
			nsLabels: full,
			want: map[string]map[string]string{
				"legacy": {"kubernetes.io/metadata.name": "legacy", istio.LabelInjection: "enabled"},
				"shop":   {"tier": "critical"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Select(selSnapshot(nss, wls...), selOld, selNew, Selection{NamespaceLabels: tc.nsLabels})
			if err != nil {
				t.Fatalf("Select() error = %v", err)
			}
			byNS := map[string]map[string]string{}
			for _, m := range got.Moves {
				byNS[m.Ref.Namespace] = m.Labels
			}
			if diff := cmp.Diff(tc.want, byNS); diff != "" {
				t.Errorf("candidate labels (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSelectDoesNotMutateSnapshot guards the frozen snapshot callers reuse.
func TestSelectDoesNotMutateSnapshot(t *testing.T) {
	s := selSnapshot([]inventory.Namespace{nsRev("shop", selOld)}, deploy("shop", "web", selOld, 1))
	before := *s
	before.Namespaces = append([]inventory.Namespace(nil), s.Namespaces...)
	before.Workloads = append([]inventory.Workload(nil), s.Workloads...)
	if _, err := Select(s, selOld, selNew, Selection{}); err != nil {
		t.Fatalf("Select() error = %v", err)
	}
	if diff := cmp.Diff(before, *s); diff != "" {
		t.Errorf("Select() changed the snapshot (-before +after):\n%s", diff)
	}
}

// TestDefect3SelectTemplateOnly: a workload with no pod whose template the
// source revision would inject (a Deployment at 0 replicas, a CronJob between
// runs) used to be neither migrated nor counted, so its next pod started on
// the old revision (or, after a prune, without a sidecar). It is now moved by
// its label alone; a CronJob by its template, never restarted.
func TestDefect3SelectTemplateOnly(t *testing.T) {
	tpl := func(w inventory.Workload, rev, image string) inventory.Workload {
		w.Template = &inventory.Template{ProxyImage: image, Injection: istio.Injection{Injected: rev != "", Revision: rev}}
		return w
	}
	idle := func(kind, ns, name string) inventory.Workload {
		return inventory.Workload{Kind: kind, Namespace: ns, Name: name, Restartable: kind == "Deployment", RestartReason: "x"}
	}
	nss := []inventory.Namespace{nsPlain("pinned"), nsRev("jobs", selOld)}
	wls := []inventory.Workload{
		deploy("jobs", "web", selOld, 1),
		tpl(templateRev(idle("Deployment", "pinned", "scaled-to-zero"), selOld), selOld, ""),
		tpl(idle("CronJob", "jobs", "nightly"), selOld, ""),
		tpl(idle("CronJob", "jobs", "by-hand"), selOld, proxyImage(selOld)),
		tpl(templateRev(idle("Deployment", "pinned", "already-new"), selNew), selNew, ""),
	}
	got, err := Select(selSnapshot(nss, wls...), selOld, selNew, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	want := []moveView{
		mv("jobs", "web", MechanismNamespace, selOld, 1),
		{Ref: "Deployment pinned/scaled-to-zero", Mechanism: MechanismPod, Via: selOld, Restartable: true},
		{Ref: "CronJob jobs/nightly", Mechanism: MechanismNamespace, Via: selOld, Restartable: true},
	}
	if diff := cmp.Diff(want, viewMoves(got.Moves), cmpopts.SortSlices(func(a, b moveView) bool { return a.Ref < b.Ref })); diff != "" {
		t.Errorf("Select() moves (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]LabelMove{lm("jobs")}, got.Namespaces); diff != "" {
		t.Errorf("Select() namespaces (-want +got):\n%s", diff)
	}
}
