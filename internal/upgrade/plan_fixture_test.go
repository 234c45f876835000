package upgrade

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/inventory"
)

// Revisions of the fixtures.
const (
	revOld = "1-23-2"
	revNew = "1-24-2"
)

// freezeNow is the fixtures' clock, deliberately not in UTC.
var freezeNow = time.Date(2025, 3, 1, 11, 0, 0, 0, time.FixedZone("CET", 3600))

// meshSnapshot is a mesh on revOld with revNew installed and the tag "prod"
// on revOld:
//
//	a  istio.io/rev=1-23-2  Deployments api, web           → Namespace
//	b  istio.io/rev=prod    Deployment web                 → Tag prod
//	c  unlabelled           Deployment pinned (pod label)  → Pod
//	                        Job migrate (pod label, not restartable) → Skipped
//	d  istio.io/rev=prod    Deployment web                 → Tag prod
//	e  istio.io/rev=1-23-2  Job only                       → Skipped
//	f  istio.io/rev=1-24-2  Deployment late (pods on old)  → Restart
func meshSnapshot() *inventory.Snapshot {
	d := func(ns, name string) inventory.Workload {
		return inventory.Workload{Kind: "Deployment", Namespace: ns, Name: name, Restartable: true,
			Proxies: []inventory.ProxyGroup{{Revision: revOld, Image: "proxyv2:1.23.2", Pods: 2}}}
	}
	job := func(ns, name string) inventory.Workload {
		w := d(ns, name)
		w.Kind, w.Restartable, w.RestartReason = "Job", false, "Job pods are never restarted"
		w.Proxies[0].Pods = 1
		w.TemplateRev = revOld
		return w
	}
	pinned := d("c", "pinned")
	pinned.TemplateRev = revOld
	rev := func(name, v string) inventory.Namespace {
		return inventory.Namespace{Name: name, RevLabel: v, HasRevLabel: true}
	}
	return &inventory.Snapshot{
		Revisions: []inventory.Revision{
			{Name: revOld, InjectorWebhooks: []string{"istio-sidecar-injector-" + revOld}, ProxyImage: "proxyv2:1.23.2"},
			{Name: revNew, InjectorWebhooks: []string{"istio-sidecar-injector-" + revNew}, ProxyImage: "proxyv2:1.24.2"},
		},
		Tags: []inventory.Tag{{Name: "prod", Revision: revOld}},
		Namespaces: []inventory.Namespace{
			rev("a", revOld), rev("b", "prod"), {Name: "c"}, rev("d", "prod"), rev("e", revOld), rev("f", revNew),
		},
		Workloads: []inventory.Workload{
			d("a", "api"), d("a", "web"), d("b", "web"), pinned, job("c", "migrate"), d("d", "web"),
			job("e", "cleanup"), d("f", "late"),
		},
	}
}

// meshUpgrade is a MeshUpgrade of revOld → revNew with the given waves and
// parallelism 2.
func meshUpgrade(name string, waves ...v1alpha1.WaveSize) *v1alpha1.MeshUpgrade {
	return &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 3},
		Spec: v1alpha1.MeshUpgradeSpec{
			From: revOld, To: revNew,
			Strategy: v1alpha1.Strategy{Waves: waves, Parallelism: 2},
		},
	}
}

// running is another MeshUpgrade in phase p, created at created, moving to
// to, whose plan is ws.
func running(name string, p v1alpha1.Phase, created time.Time, to string, ws ...v1alpha1.WorkloadStatus) v1alpha1.MeshUpgrade {
	return v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1alpha1.MeshUpgradeSpec{From: revOld, To: to},
		Status:     v1alpha1.MeshUpgradeStatus{Phase: p, Workloads: ws},
	}
}

// ws is a planned Deployment in wave w moved by m with outcome o.
func ws(ns, name string, w int, m v1alpha1.Mechanism, o v1alpha1.Outcome) v1alpha1.WorkloadStatus {
	return v1alpha1.WorkloadStatus{Kind: "Deployment", Namespace: ns, Name: name, Wave: w, Mechanism: m, Outcome: o}
}

// sizeCount and sizePercent are wave sizes.
func sizeCount(n int) v1alpha1.WaveSize { return v1alpha1.WaveSize{Count: n} }

func sizePercent(n int) v1alpha1.WaveSize { return v1alpha1.WaveSize{Percent: n} }
