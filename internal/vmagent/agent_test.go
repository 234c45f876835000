package vmagent_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/vmagent"
	"github.com/meshroll/meshroll/internal/vmagent/vmagenttest"
)

// TestUpgradeThenRollbackOnFailedHealth installs a first version, upgrades
// to the next, then gets a release whose readiness fails: the agent goes
// back to the previous version, which serves again, and says why.
func TestUpgradeThenRollbackOnFailedHealth(t *testing.T) {
	f := newFixture(t, newMirror(t))
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
	f.expect(f.assign(newRev), vmagent.PhaseReady, newVersion, "")
	env, err := os.ReadFile(filepath.Join(f.vm.Config.Root, "current", "etc", "cluster.env"))
	if err != nil || !strings.Contains(string(env), "CA_ADDR=istiod-1-24-2.istio-system.svc:15012") {
		t.Fatalf("cluster.env of the new revision = %q (%v), want CA_ADDR of istiod-1-24-2", env, err)
	}
	st := f.assign(brokenRev)
	f.expect(st, vmagent.PhaseRolledBack, newVersion, "not healthy")
	if st[vmagent.AnnotationTarget] != brokenRev.String() || !strings.Contains(st[vmagent.AnnotationError], "rolled back to "+newRev.String()) {
		t.Fatalf("status = %v, want the failed target and the rollback named", st)
	}
	// The failed assignment is not retried; going back to a kept version
	// needs no download.
	f.expect(f.assign(brokenRev), vmagent.PhaseRolledBack, newVersion, "not healthy")
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
	if got := f.slots(); len(got) != 2 {
		t.Fatalf("versions on disk = %v, want the two good ones (the failed one is dropped)", got)
	}
}

// TestFaultsLeaveOldVersionServing runs each download fault against a VM on
// the old version: the old version keeps serving, nothing new is installed
// and the agent reports why.
func TestFaultsLeaveOldVersionServing(t *testing.T) {
	cases := []struct {
		name  string
		fault func(m *vmagenttest.Mirror)
		phase vmagent.Phase
		err   string
	}{
		// Without a pinned key: with one, the tampered checksum file fails its signature first.
		{"bad checksum", func(m *vmagenttest.Mirror) { m.SetFault(newVersion, vmagenttest.FaultChecksum) }, vmagent.PhaseFailed, "checksum mismatch"},
		{"bad signature", func(m *vmagenttest.Mirror) { m.SetFault(newVersion, vmagenttest.FaultSignature) }, vmagent.PhaseFailed, "does not verify with the pinned public key"},
		{"truncated download", func(m *vmagenttest.Mirror) { m.SetFault(newVersion, vmagenttest.FaultTruncate) }, vmagent.PhaseRetrying, "the next attempt resumes"},
		{"artifact server down", func(m *vmagenttest.Mirror) { m.Stop() }, vmagent.PhaseRetrying, "connection refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMirror(t)
			f := newFixture(t, m, func(c *vmagent.Config) { c.PublicKey = "" })
			if c.name == "bad signature" {
				f = newFixture(t, m)
			}
			f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
			c.fault(m)
			st := f.assign(newRev)
			f.expect(st, c.phase, oldVersion, c.err)
			if !strings.Contains(st[vmagent.AnnotationError], oldRev.String()+" still serving") {
				t.Fatalf("error %q does not say the old version still serves", st[vmagent.AnnotationError])
			}
			if got := f.slots(); len(got) != 1 {
				t.Fatalf("versions on disk = %v, want only the old one", got)
			}
		})
	}
}

// TestTruncatedDownloadResumes: after a cut, the next attempt asks for the
// rest (HTTP Range) and completes the upgrade.
func TestTruncatedDownloadResumes(t *testing.T) {
	m := newMirror(t)
	f := newFixture(t, m)
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
	m.SetFault(newVersion, vmagenttest.FaultTruncate)
	f.expect(f.assign(newRev), vmagent.PhaseRetrying, oldVersion, "the next attempt resumes")
	m.SetFault(newVersion, vmagenttest.FaultNone)
	f.restartAgent() // a restart also forgets the backoff
	f.expect(f.assign(newRev), vmagent.PhaseReady, newVersion, "")
	if m.Ranged.Load() == 0 {
		t.Fatal("the second download did not resume with a Range request")
	}
}

// TestBadInputChangesNothing: an unknown version, a revision that does not
// match its version and a malformed URL template are refused with a clear
// error and the VM is left exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	m := newMirror(t)
	f := newFixture(t, m)
	f.expect(f.assign(oldRev), vmagent.PhaseReady, oldVersion, "")
	before := f.slots()
	for _, c := range []struct {
		a   vmagent.Assignment
		err string
	}{
		{vmagent.Assignment{Revision: "9-9-9", Version: "9.9.9"}, "the mirror has no artifact for this version"},
		{vmagent.Assignment{Revision: "1-99-0", Version: newVersion}, `revision "1-99-0" is release 1.99.0 but the assigned version is 1.24.2`},
		{vmagent.Assignment{Revision: "canary", Version: "latest"}, `version "latest" is not a release`},
	} {
		f.expect(f.assign(c.a), vmagent.PhaseFailed, oldVersion, c.err)
		if got := f.slots(); strings.Join(got, ",") != strings.Join(before, ",") {
			t.Fatalf("%s: versions on disk = %v, want %v", c.a, got, before)
		}
	}
	for _, tmpl := range []string{"http://{{.Vers}}/x.tar.gz", "http://mirror/{{.Version", "ftp://mirror/{{.Version}}.tar.gz", "http://mirror/fixed.tar.gz"} {
		f.vm.Config.ArtifactURL = tmpl
		if err := f.vm.WriteConfig(); err != nil {
			t.Fatal(err)
		}
		_, err := vmagent.LoadConfig(f.vm.ConfigPath)
		if err == nil || !strings.Contains(err.Error(), "artifactURL") {
			t.Fatalf("template %q: err = %v, want an artifactURL error", tmpl, err)
		}
	}
	if got := f.serving(); got != oldVersion {
		t.Fatalf("sidecar serves %q, want %q", got, oldVersion)
	}
}
