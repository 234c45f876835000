package vmagent_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// BenchmarkAssignToHealthy is the time from a new assignment to the agent
// reporting the sidecar healthy on it, for one agent: with the download
// (fresh: the target is not on disk) and without (cached: a version kept on
// disk, so switch, restart and health check only). The 50-agent figure is
// logged by test/e2e/vm.
func BenchmarkAssignToHealthy(b *testing.B) {
	for _, fresh := range []bool{true, false} {
		name := "cached"
		if fresh {
			name = "fresh"
		}
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, newMirror(b))
			targets := []vmagent.Assignment{newRev, oldRev}
			if st := f.assign(oldRev); st[vmagent.AnnotationPhase] != string(vmagent.PhaseReady) {
				b.Fatalf("first install: %v", st)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				want := targets[i%2]
				if fresh {
					b.StopTimer()
					_ = os.RemoveAll(filepath.Join(f.vm.Config.Root, "versions", want.String()))
					_ = os.RemoveAll(filepath.Join(f.vm.Config.Root, "downloads"))
					_ = os.MkdirAll(filepath.Join(f.vm.Config.Root, "downloads"), 0o755)
					b.StartTimer()
				}
				if st := f.assign(want); st[vmagent.AnnotationPhase] != string(vmagent.PhaseReady) {
					b.Fatalf("assign %s: %v", want, st)
				}
			}
		})
	}
}
