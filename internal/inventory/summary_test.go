package inventory

import (
	"fmt"
	"testing"
)

// syntheticSnapshot is a 5,000-workload mesh halfway through a migration.
func syntheticSnapshot(workloads int) *Snapshot {
	s := &Snapshot{}
	for i := range workloads {
		ns := fmt.Sprintf("ns-%03d", i%200)
		g := []ProxyGroup{{Revision: "1-22-1", Image: img122, Version: "1.22.1", Expected: "1-23-2", Pods: 3}}
		if i%2 == 0 {
			g = []ProxyGroup{{Revision: "1-23-2", Image: img123, Version: "1.23.2", Expected: "1-23-2", Pods: 2, Terminated: 1}}
		}
		s.Workloads = append(s.Workloads, Workload{Kind: KindDeployment, Namespace: ns, Name: fmt.Sprintf("app-%d", i), Restartable: true, Proxies: g})
		s.Pods += 3
	}
	return s
}

func BenchmarkSummary(b *testing.B) {
	s := syntheticSnapshot(5000)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Summary()
	}
}

func TestSummarySynthetic(t *testing.T) {
	sum := syntheticSnapshot(5000).Summary()
	if len(sum.ByRevision) != 2 || sum.ByRevision[0].Pods+sum.ByRevision[1].Pods != 15000 || sum.ByRevision[0].Namespaces != 100 {
		t.Errorf("Summary() = %+v", sum)
	}
}
