package inventory

import "sort"

// Summary is the at-a-glance view of a snapshot: how much of the mesh runs
// on each revision and each proxy version, which is what an operator wants
// to see before and during a migration.
type Summary struct {
	// ByRevision counts per injecting revision ("" = pods without a sidecar).
	ByRevision []Count `json:"byRevision"`
	// ByVersion counts per proxy version ("" = pods without a sidecar).
	ByVersion []Count `json:"byVersion"`
}

// Count is how many namespaces, workloads and pods share one key.
type Count struct {
	Key        string `json:"key"`
	Namespaces int    `json:"namespaces"`
	Workloads  int    `json:"workloads"`
	// Pods includes terminated pods, which pin the revision too.
	Pods int `json:"pods"`
}

// Summary counts the snapshot's pods per revision and per proxy version. A
// workload or namespace counts once under every key any of its pods has.
func (s *Snapshot) Summary() Summary {
	return Summary{
		ByRevision: s.count(func(p *ProxyGroup) string { return p.Revision }),
		ByVersion:  s.count(func(p *ProxyGroup) string { return p.Version }),
	}
}

func (s *Snapshot) count(key func(*ProxyGroup) string) []Count {
	type acc struct {
		count      Count
		namespaces map[string]struct{}
		lastWL     int
	}
	accs := map[string]*acc{}
	for wi := range s.Workloads {
		w := &s.Workloads[wi]
		for pi := range w.Proxies {
			p := &w.Proxies[pi]
			k := key(p)
			a := accs[k]
			if a == nil {
				a = &acc{count: Count{Key: k}, namespaces: map[string]struct{}{}, lastWL: -1}
				accs[k] = a
			}
			a.count.Pods += p.Pods + p.Terminated
			if a.lastWL != wi {
				a.lastWL = wi
				a.count.Workloads++
			}
			a.namespaces[w.Namespace] = struct{}{}
		}
	}
	out := make([]Count, 0, len(accs))
	for _, a := range accs {
		a.count.Namespaces = len(a.namespaces)
		out = append(out, a.count)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
