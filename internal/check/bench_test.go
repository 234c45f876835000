package check

import (
	"fmt"
	"testing"

	"github.com/meshroll/meshroll/internal/inventory"
)

// syntheticSnapshot grows the clean fixture to n workloads over 200 namespaces,
// with a stale image on every tenth one so the checks have work to report.
func syntheticSnapshot(n int) *inventory.Snapshot {
	s := cleanSnapshot()
	s.Workloads = nil
	for i := range n {
		ns := s.Namespaces[i%len(s.Namespaces)].Name
		g := inventory.ProxyGroup{Revision: "1-23-2", Image: newImage, WantImage: newImage, Version: "1.23.2", Expected: "1-23-2", Pods: 3}
		if i%10 == 0 {
			g.Image, g.Version = oldImage, "1.22.1"
		}
		s.Workloads = append(s.Workloads, deployment(ns, fmt.Sprintf("app-%d", i), g))
	}
	return s
}

func BenchmarkCheck(b *testing.B) {
	s := syntheticSnapshot(5000)
	b.ReportAllocs()
	for b.Loop() {
		_ = Run(s)
	}
}

func TestCheckSynthetic(t *testing.T) {
	fs := Run(syntheticSnapshot(5000))
	stale := 0
	for _, f := range fs {
		if f.Code == CodeProxyStale {
			stale++
		}
	}
	if stale != 500 {
		t.Errorf("stale findings = %d, want 500", stale)
	}
}
