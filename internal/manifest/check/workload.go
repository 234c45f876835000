package check

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// workload is a replicated workload as the PDB and selector checks see it.
type workload struct {
	obj    *unstructured.Unstructured
	labels map[string]string // pod template labels
	// minReplicas is the fewest pods it can run: spec.replicas (default 1),
	// or the HPA's minReplicas when an HPA scales it.
	minReplicas int64
	scaled      bool // an HPA targets it
}

// workloads lists the Deployments, StatefulSets and ReplicaSets of the input
// with their lowest replica count, so PDB checks can tell whether a PDB can
// ever allow an eviction.
func workloads(in *Input) []workload {
	hpaMin := map[string]int64{}
	for _, u := range in.Objects {
		if u.GetKind() != "HorizontalPodAutoscaler" || group(u) != "autoscaling" {
			continue
		}
		kind, _, _ := nestedStr(u.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := nestedStr(u.Object, "spec", "scaleTargetRef", "name")
		min := int64(1)
		if v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "minReplicas"); ok && v != nil {
			min = toInt(v)
		}
		hpaMin[kind+"/"+u.GetNamespace()+"/"+name] = min
	}
	var out []workload
	for _, u := range in.Objects {
		switch u.GetKind() {
		case "Deployment", "StatefulSet", "ReplicaSet":
		default:
			continue
		}
		if group(u) != "apps" {
			continue
		}
		labels, _, ok := podTemplate(u)
		if !ok {
			continue
		}
		w := workload{obj: u, labels: labels, minReplicas: 1}
		if v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); ok && v != nil {
			w.minReplicas = toInt(v)
		}
		if m, ok := hpaMin[u.GetKind()+"/"+u.GetNamespace()+"/"+u.GetName()]; ok {
			w.minReplicas, w.scaled = m, true
		}
		out = append(out, w)
	}
	return out
}

// matchLabels reads a selector's matchLabels (PDB, workload) or a plain map
// (Service); expressions are ignored, which errs toward "matches nothing".
func matchLabels(u *unstructured.Unstructured, path ...string) (sel map[string]string, hasExpressions, found bool) {
	m, found, _ := unstructured.NestedMap(u.Object, path...)
	if !found {
		return nil, false, false
	}
	if ml, ok := m["matchLabels"].(map[string]any); ok {
		sel = make(map[string]string, len(ml))
		for k, v := range ml {
			s, _ := v.(string)
			sel[k] = s
		}
	}
	if e, ok := m["matchExpressions"].([]any); ok && len(e) > 0 {
		hasExpressions = true
	}
	return sel, hasExpressions, true
}

// pdbTargets returns the workloads of pdb's namespace that its selector matches.
func pdbTargets(pdb *unstructured.Unstructured, ws []workload) []workload {
	sel, _, _ := matchLabels(pdb, "spec", "selector")
	var out []workload
	for _, w := range ws {
		if w.obj.GetNamespace() == pdb.GetNamespace() && selectorMatches(sel, w.labels) {
			out = append(out, w)
		}
	}
	return out
}
