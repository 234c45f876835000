//go:build linux

package podproc

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"
)

// runShell starts script under sh as the process of a pod with grace.
func runShell(t *testing.T, script string, grace time.Duration) *instance {
	t.Helper()
	dir := t.TempDir()
	s := spec{key: "ns/pod", ip: netip.MustParseAddr("127.0.0.1"), binary: "/bin/sh", args: []string{"-c", script}, grace: grace}
	in, err := start(s, filepath.Join(dir, "work"), filepath.Join(dir, "pod.log"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Kill() })
	time.Sleep(100 * time.Millisecond) // the trap is set
	return in
}

// TestStopWaitsGraceThenKills: a process that ignores SIGTERM (a server
// draining too long) is killed when the pod's grace period ends, not before.
func TestStopWaitsGraceThenKills(t *testing.T) {
	in := runShell(t, "trap '' TERM; sleep 30", 500*time.Millisecond)
	began := time.Now()
	in.stop(context.Background())
	if took := time.Since(began); took < 500*time.Millisecond || took > 5*time.Second || !in.Exited() {
		t.Errorf("stop took %s (exited %t); want the 500ms grace, then a kill", took, in.Exited())
	}
}

// TestStopReturnsWhenProcessExits: a process that exits on SIGTERM is not
// held for the grace period, and a second stop returns at once.
func TestStopReturnsWhenProcessExits(t *testing.T) {
	in := runShell(t, "sleep 30", time.Minute)
	began := time.Now()
	in.stop(context.Background())
	in.stop(context.Background())
	if took := time.Since(began); took > 5*time.Second || !in.Exited() {
		t.Errorf("stop took %s (exited %t); want it back as soon as the process exits", took, in.Exited())
	}
}
