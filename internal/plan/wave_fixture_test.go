package plan

import "fmt"

// dep is a restartable Deployment candidate in namespace ns.
func dep(ns, name string) Candidate {
	return Candidate{Ref: WorkloadRef{Kind: "Deployment", Namespace: ns, Name: name}, Restartable: true, Pods: 2}
}

// labelled returns c with namespace labels set from "k=v" pairs.
func labelled(c Candidate, kv ...string) Candidate {
	c.Labels = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Labels[kv[i]] = kv[i+1]
	}
	return c
}

// stuck is a candidate a restart cannot move.
func stuck(kind, ns, name, reason string) Candidate {
	return Candidate{Ref: WorkloadRef{Kind: kind, Namespace: ns, Name: name}, Reason: reason}
}

// many returns n Deployments spread over ten namespaces.
func many(n int) []Candidate {
	out := make([]Candidate, n)
	for i := range out {
		out[i] = dep(fmt.Sprintf("ns-%02d", i%10), fmt.Sprintf("app-%05d", i))
	}
	return out
}

// ref is shorthand for a Deployment ref.
func ref(ns, name string) WorkloadRef {
	return WorkloadRef{Kind: "Deployment", Namespace: ns, Name: name}
}

// waveStrings renders a plan's waves as lists of "ns/name" (Deployments) or
// the full ref string for other kinds, for compact expectations.
func waveStrings(p WavePlan) [][]string {
	var out [][]string
	for _, w := range p.Waves {
		var ws []string
		for _, r := range w.Workloads {
			if r.Kind == "Deployment" {
				ws = append(ws, r.Namespace+"/"+r.Name)
			} else {
				ws = append(ws, r.String())
			}
		}
		out = append(out, ws)
	}
	return out
}

// waveSizes returns the number of workloads in each wave.
func waveSizes(p WavePlan) []int {
	var out []int
	for _, w := range p.Waves {
		out = append(out, len(w.Workloads))
	}
	return out
}
