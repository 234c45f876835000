package plan

import (
	"slices"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
)

// Revisions of the Select fixtures: the mesh runs selOld and upgrades to selNew.
const (
	selOld = "1-23-2"
	selNew = "1-24-2"
	// selGone ran proxies once but its control plane was removed.
	selGone = "1-22-1"
)

// proxyImage is the sidecar image a revision injects now.
func proxyImage(rev string) string {
	return "docker.io/istio/proxyv2:" + strings.ReplaceAll(rev, "-", ".")
}

// selSnapshot is a mesh with both revisions installed, the default injector
// and the tags "default" and "prod" on selOld and "canary" on selNew. The
// namespaces and workloads are the case's; namespaces are sorted as the
// inventory sorts them.
func selSnapshot(nss []inventory.Namespace, wls ...inventory.Workload) *inventory.Snapshot {
	nss = slices.Clone(nss)
	slices.SortFunc(nss, func(a, b inventory.Namespace) int { return strings.Compare(a.Name, b.Name) })
	return &inventory.Snapshot{
		Revisions: []inventory.Revision{
			{Name: selOld, InjectorWebhooks: []string{"istio-sidecar-injector-" + selOld}, ProxyImage: proxyImage(selOld), Tags: []string{"default", "prod"}, Default: true},
			{Name: selNew, InjectorWebhooks: []string{"istio-sidecar-injector-" + selNew}, ProxyImage: proxyImage(selNew), Tags: []string{"canary"}},
		},
		Tags: []inventory.Tag{
			{Name: "canary", Revision: selNew, Webhook: "istio-revision-tag-canary"},
			{Name: "default", Revision: selOld, Webhook: "istio-revision-tag-default"},
			{Name: "prod", Revision: selOld, Webhook: "istio-revision-tag-prod"},
		},
		DefaultRevision: selOld,
		Namespaces:      nss,
		Workloads:       wls,
	}
}

// nsPlain is a namespace without injection labels.
func nsPlain(name string) inventory.Namespace { return inventory.Namespace{Name: name} }

// nsRev is a namespace labelled istio.io/rev=v.
func nsRev(name, v string) inventory.Namespace {
	return inventory.Namespace{Name: name, RevLabel: v, HasRevLabel: true}
}

// nsInjection is a namespace labelled istio-injection=v.
func nsInjection(name, v string) inventory.Namespace {
	return inventory.Namespace{Name: name, InjectionLabel: v, HasInjectionLabel: true}
}

// nsBoth carries both istio-injection=enabled and istio.io/rev=v.
func nsBoth(name, v string) inventory.Namespace {
	n := nsRev(name, v)
	n.InjectionLabel, n.HasInjectionLabel = "enabled", true
	return n
}

// deploy is a restartable Deployment whose pods all run rev's current image.
func deploy(ns, name, rev string, pods int) inventory.Workload {
	return inventory.Workload{
		Kind: "Deployment", Namespace: ns, Name: name, Restartable: true, RestartReason: "rolling update",
		Proxies: []inventory.ProxyGroup{{Revision: rev, Image: proxyImage(rev), WantImage: proxyImage(rev), Pods: pods}},
	}
}

// templateRev returns w with its pod template labelled istio.io/rev=v.
func templateRev(w inventory.Workload, v string) inventory.Workload {
	w.TemplateRev = v
	return w
}

// proxies returns w with its proxy groups replaced.
func proxies(w inventory.Workload, groups ...inventory.ProxyGroup) inventory.Workload {
	w.Proxies = groups
	return w
}

// notRestartable returns w as a workload a restart cannot move.
func notRestartable(w inventory.Workload, kind, reason string) inventory.Workload {
	w.Kind, w.Restartable, w.RestartReason = kind, false, reason
	return w
}

// moveView is the part of a Move the Select tables compare.
type moveView struct {
	Ref         string
	Mechanism   string
	Via         string
	Restartable bool
	Reason      string
	Pods        int
}

// mv is a restartable moveView of Deployment ns/name.
func mv(ns, name, mechanism, via string, pods int) moveView {
	return moveView{Ref: "Deployment " + ns + "/" + name, Mechanism: mechanism, Via: via, Restartable: true, Pods: pods}
}

func viewMoves(ms []Move) []moveView {
	var out []moveView
	for _, m := range ms {
		out = append(out, moveView{Ref: m.Ref.String(), Mechanism: m.Mechanism, Via: m.Via, Restartable: m.Restartable, Reason: m.Reason, Pods: m.Pods})
	}
	return out
}

// lm is a LabelMove from selOld to selNew.
func lm(name string) LabelMove { return LabelMove{Name: name, From: selOld, To: selNew} }
