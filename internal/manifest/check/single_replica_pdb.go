package check

import "fmt"

// singleReplicaPDB reports workloads that can run a single replica yet are
// covered by a PDB that requires one available pod: the only pod can never
// be evicted, so node drains stall. Istio's istiod chart ships like this by
// default (autoscaleMin 1, PDB minAvailable 1), hence a warning.
type singleReplicaPDB struct{}

// Name implements Checker.
func (singleReplicaPDB) Name() string { return "single-replica-pdb" }

// Code implements Checker.
func (singleReplicaPDB) Code() string { return "MV019" }

// Run implements Checker.
func (c singleReplicaPDB) Run(in *Input) []Finding {
	var ws []workload
	var out []Finding
	for _, u := range in.Objects {
		if !isPDB(u) {
			continue
		}
		blocksOne := false
		if ma, ok := intOrString(u, "spec", "minAvailable"); ok && ma.String() != "0" && ma.String() != "0%" {
			blocksOne = true
		}
		if mu, ok := intOrString(u, "spec", "maxUnavailable"); ok {
			// A percentage of one pod rounds up to one, so only zero blocks.
			blocksOne = mu.String() == "0" || mu.String() == "0%"
		}
		if !blocksOne {
			continue
		}
		if ws == nil {
			ws = workloads(in)
		}
		for _, w := range pdbTargets(u, ws) {
			if w.minReplicas <= 1 {
				out = append(out, finding(c, Warning, ref(w.obj),
					fmt.Sprintf("runs %d replica and %s keeps it from being evicted", w.minReplicas, ref(u)),
					"run at least 2 replicas (replicas or HPA minReplicas) or drop the PDB"))
			}
		}
	}
	return out
}
