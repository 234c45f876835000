package check

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// pdbBlocksEviction reports PodDisruptionBudgets that never allow an
// eviction: maxUnavailable 0, minAvailable 100%, or minAvailable at least the
// replicas of a multi-replica workload. Node drains (and so cluster upgrades)
// then hang until someone deletes the PDB by hand.
type pdbBlocksEviction struct{}

// Name implements Checker.
func (pdbBlocksEviction) Name() string { return "pdb-blocks-eviction" }

// Code implements Checker.
func (pdbBlocksEviction) Code() string { return "MV016" }

// intOrString reads an int-or-string field; ok is false when absent.
func intOrString(u *unstructured.Unstructured, path ...string) (intstr.IntOrString, bool) {
	v, ok, _ := unstructured.NestedFieldNoCopy(u.Object, path...)
	if !ok || v == nil {
		return intstr.IntOrString{}, false
	}
	if s, isStr := v.(string); isStr {
		return intstr.FromString(s), true
	}
	return intstr.FromInt32(int32(toInt(v))), true
}

// isPDB reports whether u is a PodDisruptionBudget.
func isPDB(u *unstructured.Unstructured) bool {
	return is(u, "policy", "PodDisruptionBudget")
}

// Run implements Checker.
func (c pdbBlocksEviction) Run(in *Input) []Finding {
	var ws []workload
	var out []Finding
	for _, u := range in.Objects {
		if !isPDB(u) {
			continue
		}
		if mu, ok := intOrString(u, "spec", "maxUnavailable"); ok {
			if mu.String() == "0" || strings.TrimSpace(mu.String()) == "0%" {
				out = append(out, finding(c, Error, ref(u), "maxUnavailable is "+mu.String()+": no pod can ever be evicted",
					"set maxUnavailable to 1 (or a percentage above 0)"))
			}
			continue
		}
		ma, ok := intOrString(u, "spec", "minAvailable")
		if !ok {
			continue
		}
		if ma.Type == intstr.String {
			if ma.StrVal == "100%" {
				out = append(out, finding(c, Error, ref(u), "minAvailable is 100%: no pod can ever be evicted",
					"lower minAvailable below 100% or use maxUnavailable: 1"))
			}
			continue
		}
		if ws == nil {
			ws = workloads(in)
		}
		for _, w := range pdbTargets(u, ws) {
			// One replica is singleReplicaPDB's business (a warning): it is
			// how Istio's own istiod chart ships by default.
			if w.minReplicas > 1 && int64(ma.IntVal) >= w.minReplicas {
				out = append(out, finding(c, Error, ref(u),
					fmt.Sprintf("minAvailable %d ≥ the %d replicas of %s: no pod can ever be evicted", ma.IntVal, w.minReplicas, ref(w.obj)),
					"lower minAvailable below the replica count or raise replicas (HPA minReplicas)"))
			}
		}
	}
	return out
}
