package parity

import (
	"sort"
	"testing"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// TestTagMovesAcrossTools moves tags istioctl made with meshroll and tags
// meshroll made with istioctl, the default tag included, and checks that
// neither tool is left confused: `istioctl tag list` and `meshroll tag list`
// show the same revision for every tag, and each moved tag is exactly what
// istioctl would write for its new revision (no field of the other tool left
// behind).
func TestTagMovesAcrossTools(t *testing.T) {
	e := newEnv(t)
	releases := sandbox.IstioctlReleases()
	oldCtl, newCtl := builtIstioctl(t, releases[0]), builtIstioctl(t, releases[len(releases)-1])
	oldRev, newRev := e.install(t, oldCtl.version), e.install(t, newCtl.version)
	ctlFor := map[string]istioctl{oldRev: oldCtl, newRev: newCtl}

	steps := []struct {
		tag, rev string
		by       string // "istioctl" or "meshroll"
	}{
		{"made-by-istioctl", oldRev, "istioctl"},
		{"made-by-istioctl", newRev, "meshroll"},
		{"made-by-meshroll", oldRev, "meshroll"},
		{"made-by-meshroll", newRev, "istioctl"},
		{"made-by-istioctl", oldRev, "meshroll"}, // back: the newer release's tag Service must go
		{istio.DefaultRevision, oldRev, "istioctl"},
		{istio.DefaultRevision, newRev, "meshroll"},
		{istio.DefaultRevision, oldRev, "meshroll"},
		{istio.DefaultRevision, newRev, "istioctl"},
	}
	for _, s := range steps {
		ctl := ctlFor[s.rev]
		if s.by == "istioctl" {
			ctl.run(t, "tag", "set", s.tag, "--revision", s.rev, "--overwrite", "--skip-confirmation")
		} else {
			e.setTag(t, s.tag, s.rev)
		}
		t.Logf("%s set tag %s -> %s", s.by, s.tag, s.rev)
		// Each tool's answer is judged by the istioctl of the tag's
		// revision, the one a user would run against it.
		assertLikeIstioctl(t, e, ctl, s.tag, s.rev)
		assertListsAgree(t, newCtl)
	}
}

// assertListsAgree checks that both tools list the same tags with the same
// revisions.
func assertListsAgree(t *testing.T, ctl istioctl) {
	t.Helper()
	theirs, ours := tagLists(t, ctl)
	tags := map[string]bool{}
	for k := range theirs {
		tags[k] = true
	}
	for k := range ours {
		tags[k] = true
	}
	names := make([]string, 0, len(tags))
	for k := range tags {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, tag := range names {
		a, inA := theirs[tag]
		b, inB := ours[tag]
		switch {
		case !inA:
			t.Errorf("tag %s: meshroll lists it (revision %s), istioctl %s does not", tag, b.Revision, ctl.version)
		case !inB:
			t.Errorf("tag %s: istioctl %s lists it (revision %s), meshroll does not", tag, ctl.version, a.Revision)
		case a.Revision != b.Revision:
			t.Errorf("tag %s: istioctl %s lists revision %s, meshroll %s", tag, ctl.version, a.Revision, b.Revision)
		}
	}
}
