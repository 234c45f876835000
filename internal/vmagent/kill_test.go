package vmagent_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// TestKilledAtRandomPoints SIGKILLs meshroll-agent (the real binary) at
// random instants of 12 installs, going back and forth between two versions
// with a slowed download: half the kills at a random time from the
// assignment on (mostly during the download), half a random 0-400 ms after
// the journal says the switch began (symlink, restart, health check). After
// each kill a new agent process must finish the move: Ready on the target,
// which serves, with exactly one sidecar process. MESHROLL_KILL_SEED replays
// a run.
func TestKilledAtRandomPoints(t *testing.T) {
	m := newMirror(t)
	f := newFixture(t, m)
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MESHROLL_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (MESHROLL_KILL_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	m.SetRate(2 << 20) // ~1.3 s per download
	journal := filepath.Join(f.vm.Config.Root, "journal.json")
	steps := map[vmagent.Step]int{}
	targets := []vmagent.Assignment{newRev, oldRev}
	for i := range 12 {
		want := targets[i%2]
		// Both versions stay on disk (retain 3); removing the target's slot
		// in half the rounds makes those download again.
		if i%4 < 2 {
			_ = os.RemoveAll(filepath.Join(f.vm.Config.Root, "versions", want.String()))
		}
		if err := f.vm.Override(want); err != nil {
			t.Fatal(err)
		}
		agent := startAgent(t, f)
		if i%2 == 0 {
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		} else {
			waitFor(t, 20*time.Second, "the switch to begin", func() bool {
				j, err := vmagent.ReadJournal(journal)
				return err == nil && j.Step == vmagent.StepSwitch || agentDone(f, want)
			})
			time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		}
		_ = agent.Process.Kill()
		_ = agent.Wait()
		j, err := vmagent.ReadJournal(journal)
		if err != nil {
			t.Fatalf("round %d: journal unreadable after kill -9: %v", i, err)
		}
		steps[j.Step]++
		t.Logf("round %d: killed at step %s phase %s", i, j.Step, j.Phase)
		again := startAgent(t, f)
		waitFor(t, 30*time.Second, "the restarted agent to finish "+want.String(), func() bool { return agentDone(f, want) })
		_ = again.Process.Kill()
		_ = again.Wait()
		if got := f.serving(); got != want.Version {
			t.Fatalf("round %d: sidecar serves %q, want %s", i, got, want.Version)
		}
		if n := sidecarCount(t, f); n != 1 {
			t.Fatalf("round %d: %d sidecar processes run, want 1", i, n)
		}
	}
	t.Logf("kill points by journal step: %v", steps)
	if steps[vmagent.StepSwitch]+steps[vmagent.StepRollback] == 0 || steps[vmagent.StepPrepare] == 0 {
		t.Fatalf("kills hit %v: want some during the download and some during the switch", steps)
	}
}

// startAgent runs meshroll-agent on the fixture's config.
func startAgent(t *testing.T, f *fixture) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(agentBinary, "-config", f.vm.ConfigPath)
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// agentDone says the journal is idle and Ready on want.
func agentDone(f *fixture, want vmagent.Assignment) bool {
	j, err := vmagent.ReadJournal(filepath.Join(f.vm.Config.Root, "journal.json"))
	if err != nil || j.Step != vmagent.StepIdle || j.Phase != vmagent.PhaseReady {
		return false
	}
	target, err := os.Readlink(filepath.Join(f.vm.Config.Root, "current"))
	return err == nil && filepath.Base(target) == want.String()
}

// sidecarCount counts processes running a binary from the VM's versions/.
func sidecarCount(_ *testing.T, f *fixture) int { return len(vmagent.SidecarPIDs(f.vm.Config.Root)) }
