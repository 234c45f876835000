package inventory

import (
	"fmt"
	"sort"

	"github.com/meshroll/meshroll/internal/istio"
)

// Workload kinds meshroll knows how to treat.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
	KindPod         = "Pod"
	KindReplicaSet  = "ReplicaSet"
)

// workloadAcc gathers one workload's pod counts during the join.
type workloadAcc struct {
	w       Workload
	groups  map[groupKey]*ProxyGroup
	revVote map[string]int // pod istio.io/rev label value → pods
}

type groupKey struct {
	revision, attribution, image, want, wantWhy, expected, reason string
}

// workloadOf walks a pod's controller chain up to the object a user manages:
// ReplicaSet → Deployment, Job → CronJob.
func workloadOf(k *podKey, o *owners) ref {
	r := ref{kind: k.ownerKind, namespace: k.namespace, name: k.ownerName}
	switch k.ownerKind {
	case "":
		r.kind = KindPod
	case KindReplicaSet:
		if up, ok := o.replicaSets[r]; ok {
			return up
		}
	case KindJob:
		if up, ok := o.jobs[r]; ok {
			return up
		}
	}
	return r
}

// restartability says whether `kubectl rollout restart` would replace every
// pod of a workload, which is how meshroll moves pods to a new revision.
func restartability(r ref, o *owners) (bool, string) {
	t := o.templates[r]
	switch r.kind {
	case KindDeployment:
		if t != nil && t.paused {
			return false, "Deployment is paused: a restart rolls out nothing until it is resumed (kubectl rollout resume)"
		}
		return true, "rollout restart replaces every pod of a Deployment"
	case KindDaemonSet:
		if t != nil && t.onDelete {
			return false, "DaemonSet uses updateStrategy OnDelete: pods are replaced only when deleted"
		}
		return true, "rollout restart replaces every pod of a DaemonSet"
	case KindStatefulSet:
		switch {
		case t == nil:
			return false, "StatefulSet not found"
		case t.onDelete:
			return false, "StatefulSet uses updateStrategy OnDelete: pods are replaced only when deleted"
		case t.partition > 0:
			return false, fmt.Sprintf("StatefulSet has rollingUpdate.partition %d: pods with a lower ordinal are not replaced by a restart", t.partition)
		}
		return true, "rollout restart replaces every pod of a RollingUpdate StatefulSet"
	case KindJob:
		return false, "a Job's pods run to completion; restarting cannot replace them"
	case KindCronJob:
		return false, "CronJob pods run to completion; the next scheduled run is injected by the current revision"
	case KindPod:
		return false, "bare pod: no controller recreates it; it must be deleted and recreated by hand"
	case KindReplicaSet:
		return false, "ReplicaSet without a Deployment: rollout restart does not support it"
	}
	return false, "owned by " + r.kind + ", which meshroll cannot restart"
}

// join turns pod tallies and owners into sorted workloads.
func join(t *podTally, o *owners, inj istio.Injectors, s *Snapshot) []Workload {
	accs := map[ref]*workloadAcc{}
	get := func(r ref) *workloadAcc {
		a := accs[r]
		if a == nil {
			ok, why := restartability(r, o)
			a = &workloadAcc{
				w:       Workload{Kind: r.kind, Namespace: r.namespace, Name: r.name, Restartable: ok, RestartReason: why},
				groups:  map[groupKey]*ProxyGroup{},
				revVote: map[string]int{},
			}
			accs[r] = a
		}
		return a
	}
	for r := range o.templates {
		get(r)
	}
	for k, c := range t.counts {
		a := get(workloadOf(&k, o))
		expect := inj.Injection(injectionTarget(&k, o.namespaces[k.namespace]))
		want, wantWhy := wantImage(s.Revision(k.revision), &k)
		gk := groupKey{revision: k.revision, attribution: k.attribution, image: k.image, want: want, wantWhy: wantWhy,
			expected: expect.Revision, reason: expect.Reason}
		g := a.groups[gk]
		if g == nil {
			g = &ProxyGroup{Revision: k.revision, Attribution: k.attribution, Image: k.image, Version: istio.ImageVersion(k.image),
				WantImage: want, WantImageReason: wantWhy, Expected: expect.Revision, ExpectedReason: expect.Reason}
			a.groups[gk] = g
		}
		g.Pods += c.pods
		g.Terminated += c.terminated
		if k.podRev.set {
			a.revVote[k.podRev.value] += c.pods + c.terminated
		}
	}
	out := make([]Workload, 0, len(accs))
	for r, a := range accs {
		a.w.TemplateRev = majority(a.revVote)
		if tp := o.templates[r]; tp != nil {
			a.w.TemplateRev = tp.rev.value
			a.w.Template = &Template{ProxyImage: tp.proxyImage, Replicas: tp.replicas,
				Injection: inj.Injection(injectionTarget(tp.key(r.namespace), o.namespaces[r.namespace]))}
		}
		for _, g := range a.groups {
			a.w.Proxies = append(a.w.Proxies, *g)
		}
		sort.Slice(a.w.Proxies, func(i, j int) bool {
			p, q := a.w.Proxies[i], a.w.Proxies[j]
			if p.Revision != q.Revision {
				return p.Revision < q.Revision
			}
			if p.Image != q.Image {
				return p.Image < q.Image
			}
			if p.WantImage != q.WantImage {
				return p.WantImage < q.WantImage
			}
			if p.Attribution != q.Attribution {
				return p.Attribution < q.Attribution
			}
			if p.Expected != q.Expected {
				return p.Expected < q.Expected
			}
			return p.ExpectedReason < q.ExpectedReason
		})
		out = append(out, a.w)
	}
	sort.Slice(out, func(i, j int) bool {
		p, q := &out[i], &out[j]
		if p.Namespace != q.Namespace {
			return p.Namespace < q.Namespace
		}
		if p.Kind != q.Kind {
			return p.Kind < q.Kind
		}
		return p.Name < q.Name
	})
	return out
}

// injectionTarget rebuilds what the injection webhooks would see for a tallied pod.
func injectionTarget(k *podKey, nsLabels map[string]string) istio.InjectionTarget {
	t := istio.InjectionTarget{Namespace: k.namespace, NamespaceLabels: nsLabels, HostNetwork: k.hostNetwork,
		PodLabels: map[string]string{}, PodAnnotations: map[string]string{}}
	if k.podRev.set {
		t.PodLabels[istio.LabelRev] = k.podRev.value
	}
	if k.injectLabel.set {
		t.PodLabels[istio.LabelSidecarInject] = k.injectLabel.value
	}
	if k.injectAnno.set {
		t.PodAnnotations[istio.AnnotationSidecarInject] = k.injectAnno.value
	}
	return t
}

// majority picks the most common value (ties: smallest), so a workload caught
// mid-rollout reports a stable template label.
func majority(votes map[string]int) string {
	best, bestN := "", 0
	for v, n := range votes {
		if n > bestN || (n == bestN && v < best) {
			best, bestN = v, n
		}
	}
	return best
}

// wantImage is the image rev's injector would write into a pod with k's
// overrides now, and which override decided it; "" when rev is unknown or
// its injector values could not be read.
func wantImage(rev *Revision, k *podKey) (image, why string) {
	if k.pinned != "" {
		return k.pinned, "pinned by annotation " + istio.AnnotationProxyImage
	}
	if rev == nil || rev.ImageSpec == nil {
		return "", ""
	}
	imageType, source := k.imageType.Type, k.imageType.Source
	if imageType == "" && rev.ProxyImageType != "" {
		imageType, source = rev.ProxyImageType, "mesh config defaultConfig.image.imageType"
	}
	image = rev.ImageSpec.Image(imageType)
	if image != rev.ProxyImage {
		why = "image type " + imageType + " from " + source
	}
	return image, why
}
