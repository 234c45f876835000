package parity

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox"
)

// allowedDifference is a field where meshroll's tag objects may differ from
// what istioctl generates, and why.
type allowedDifference struct {
	kind string         // "" = any kind
	path *regexp.Regexp // the flattened field path
	why  string
}

// allowedDifferences is the one list of them. Each entry must say why the
// difference is not one a user of istioctl would ever see on a real cluster.
func allowedDifferences() []allowedDifference {
	// None: the sandbox runs real istiod and rewrites nothing of Istio's, so
	// meshroll and istioctl must agree on every field.
	return nil
}

// allowed returns why a difference is allowed, or "".
func allowed(kind, path string) string {
	for _, a := range allowedDifferences() {
		if (a.kind == "" || a.kind == kind) && a.path.MatchString(path) {
			return a.why
		}
	}
	return ""
}

// TestTagParity compares, for each istioctl release the parity tests build,
// what `istioctl tag generate <tag> --revision <rev>` produces (the default
// tag included, which also yields istiod-default-validator, and from 1.28 a
// tag Service) with what meshroll's tag set writes, field by field after the
// API server's defaulting; then it checks that `istioctl uninstall --purge`
// treats meshroll's tag objects exactly as istioctl's own.
func TestTagParity(t *testing.T) {
	e := newEnv(t)
	for _, version := range sandbox.IstioctlReleases() {
		t.Run(version, func(t *testing.T) {
			ctl := builtIstioctl(t, version)
			rev := e.install(t, version)
			for _, tag := range []string{"parity", istio.DefaultRevision} {
				t.Run("tag "+tag, func(t *testing.T) {
					res := e.setTag(t, tag, rev)
					var wrote []string
					for _, ch := range res.Changes {
						if ch.Name != istio.InjectorConfigMapPrefix && ch.Action != controlplane.Deleted {
							wrote = append(wrote, objectRef{kind: ch.Kind, namespace: ch.Namespace, name: ch.Name}.String())
						}
					}
					generated := assertLikeIstioctl(t, e, ctl, tag, rev)
					slices.Sort(wrote)
					if !slices.Equal(wrote, generated) {
						t.Errorf("meshroll wrote %v, istioctl generates %v", wrote, generated)
					}
				})
			}
			t.Run("uninstall --purge", func(t *testing.T) {
				assertPurgeAlike(t, e, ctl, rev)
			})
		})
	}
}

// assertLikeIstioctl checks that the live objects of tag equal what istioctl
// generates for tag → rev (field by field, after defaulting, but for the
// allowed differences) and returns the generated objects' names.
func assertLikeIstioctl(t *testing.T, e *env, ctl istioctl, tag, rev string) []string {
	t.Helper()
	out := ctl.run(t, "tag", "generate", tag, "--revision", rev, "--overwrite")
	var names []string
	for _, gen := range parseYAML(t, out) {
		want := e.defaulted(t, gen)
		ref := refOf(want)
		names = append(names, ref.String())
		if !e.exists(t, ref) {
			t.Errorf("istioctl %s generates %s for tag %s; meshroll wrote none", ctl.version, ref, tag)
			continue
		}
		reportDiffs(t, ctl.version, ref, want, e.get(t, ref))
	}
	slices.Sort(names)
	if live := e.tagged(t, tag); !slices.Equal(live, names) {
		t.Errorf("tag %s consists of %v in the cluster; istioctl %s generates %v", tag, live, ctl.version, names)
	}
	return names
}

// reportDiffs fails on every difference not in allowedDifferences and logs
// the allowed ones with their reason.
func reportDiffs(t *testing.T, version string, ref objectRef, istioctlObj, meshrollObj *unstructured.Unstructured) {
	t.Helper()
	diffs, compared := diffObjects(istioctlObj, meshrollObj)
	var bad []string
	for _, d := range diffs {
		line := d.path + ": istioctl " + orAbsent(d.istioctl) + ", meshroll " + orAbsent(d.meshroll)
		if why := allowed(ref.kind, d.path); why != "" {
			t.Logf("%s: allowed difference %s (%s)", ref, line, why)
			continue
		}
		bad = append(bad, line)
	}
	t.Logf("%s: %d fields compared with istioctl %s, %d differ, %d not allowed", ref, compared, version, len(diffs), len(bad))
	if len(bad) > 0 {
		t.Errorf("%s differs from what istioctl %s generates:\n  %s", ref, version, strings.Join(bad, "\n  "))
	}
}

func orAbsent(v string) string {
	if v == "" {
		return "(absent)"
	}
	return v
}

// assertPurgeAlike makes a tag with istioctl and one with meshroll on rev
// and checks that `istioctl uninstall --purge` would delete each object of
// meshroll's exactly when it would delete istioctl's counterpart; then the
// same for the default tag's validator, made by each tool in turn.
func assertPurgeAlike(t *testing.T, e *env, ctl istioctl, rev string) {
	t.Helper()
	const mine, theirs = "purge-meshroll", "purge-istioctl"
	e.setTag(t, mine, rev)
	ctl.run(t, "tag", "set", theirs, "--revision", rev, "--overwrite", "--skip-confirmation")
	pruned := purgeDryRun(t, ctl)
	pairs := [][2]objectRef{{
		{kind: "MutatingWebhookConfiguration", name: istio.TagWebhookPrefix + mine},
		{kind: "MutatingWebhookConfiguration", name: istio.TagWebhookPrefix + theirs},
	}}
	if svc := (objectRef{kind: "Service", namespace: istio.SystemNamespace, name: "istiod-revision-tag-" + theirs}); e.exists(t, svc) {
		pairs = append(pairs, [2]objectRef{{kind: "Service", namespace: istio.SystemNamespace, name: "istiod-revision-tag-" + mine}, svc})
	}
	for _, p := range pairs {
		if !e.exists(t, p[0]) {
			t.Errorf("meshroll made no %s (istioctl made %s)", p[0], p[1])
		}
		if pruned[p[0]] != pruned[p[1]] {
			t.Errorf("istioctl %s uninstall --purge deletes meshroll's %s: %t, istioctl's %s: %t", ctl.version, p[0], pruned[p[0]], p[1], pruned[p[1]])
		}
	}

	validator := objectRef{kind: "ValidatingWebhookConfiguration", name: controlplane.DefaultValidatorName}
	e.setTag(t, istio.DefaultRevision, rev)
	byMeshroll := purgeDryRun(t, ctl)[validator]
	ctl.run(t, "tag", "set", istio.DefaultRevision, "--revision", rev, "--overwrite", "--skip-confirmation")
	byIstioctl := purgeDryRun(t, ctl)[validator]
	if byMeshroll != byIstioctl {
		t.Errorf("istioctl %s uninstall --purge deletes %s when meshroll made it: %t, when istioctl made it: %t", ctl.version, validator, byMeshroll, byIstioctl)
	}
	e.setTag(t, istio.DefaultRevision, rev)
	t.Logf("purge deletes tags: meshroll's %t, istioctl's %t; the default validator: meshroll's %t, istioctl's %t",
		pruned[pairs[0][0]], pruned[pairs[0][1]], byMeshroll, byIstioctl)
}
