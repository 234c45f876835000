package vmagent_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// TestDiskFullKeepsOldVersion puts the VM's root on a small tmpfs that holds
// the old version but has too little room left for the new one: the agent
// refuses before writing the download (its free-space check), reports that
// the install directory is full and the old version keeps serving. It needs
// to mount a tmpfs (root); without that it skips, saying so.
func TestDiskFullKeepsOldVersion(t *testing.T) {
	m := newMirror(t)
	root := filepath.Join(t.TempDir(), "vm")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", root).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s): the disk-full case needs root", err, strings.TrimSpace(string(out)))
	}
	f := newFixtureAt(t, root, m)
	// Cleanups run last-in first-out: stop the sidecar, then unmount.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", root).Run() })
	t.Cleanup(func() { _ = vmagent.Stop(t.Context(), f.vm.Config) })
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")

	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		t.Fatal(err)
	}
	used := int64(st.Blocks-st.Bfree) * st.Bsize
	size := used + 2*int64(len(artifacts[newVersion]))
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), root).CombinedOutput(); err != nil {
		t.Fatalf("failed to shrink the tmpfs: %v: %s", err, out)
	}
	f.expect(f.assign(newRev), vmagent.PhaseFailed, oldVersion, "free disk space")
	if got := f.slots(); len(got) != 1 {
		t.Fatalf("versions on disk = %v, want only the old one", got)
	}
}
