package istio

import (
	_ "embed"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// releasesTSV maps each Istio release meshroll can install to the istio.io/istio
// pseudo-version the Go module proxy serves for it. Istio's release tags lack
// the "v" Go wants, so the proxy only knows these commits; the table is the
// single source of truth for "which releases can meshroll fetch charts for".
//
//go:embed releases.tsv
var releasesTSV string

// Release is one installable Istio release and the module version that
// carries its Helm charts.
type Release struct {
	// Version is the Istio release, e.g. "1.23.2".
	Version string
	// ModuleVersion is the istio.io/istio pseudo-version holding that
	// release's manifests/charts.
	ModuleVersion string
}

// Releases returns the known releases sorted by semantic version, oldest
// first, so callers can walk upgrade paths in order.
func Releases() []Release {
	var out []Release
	for _, line := range strings.Split(releasesTSV, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		out = append(out, Release{Version: fields[0], ModuleVersion: fields[1]})
	}
	sort.SliceStable(out, func(i, j int) bool { return compareVersions(out[i].Version, out[j].Version) < 0 })
	return out
}

// LookupRelease finds a release by its Istio version. The error lists the
// known versions because the usual cause is a typo or a release the module
// proxy does not serve.
func LookupRelease(version string) (Release, error) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	known := Releases()
	names := make([]string, 0, len(known))
	for _, r := range known {
		if r.Version == v {
			return r, nil
		}
		names = append(names, r.Version)
	}
	return Release{}, fmt.Errorf("failed to look up istio release %q: unknown version (known: %s)", version, strings.Join(names, ", "))
}

// RevisionName turns a release version into the revision name Istio's docs
// use for it ("1.23.2" → "1-23-2"): dots are not allowed in revision names
// because the revision ends up in object names and label values.
func RevisionName(version string) string {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	return strings.ToLower(strings.ReplaceAll(v, ".", "-"))
}

// revisionPattern is the DNS-1123 label rule Istio applies to revisions: they
// are embedded in object names (istiod-<rev>) and in istio.io/rev label values.
var revisionPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// maxRevisionLength keeps names like "istio-sidecar-injector-<rev>" and the
// label value istio.io/rev=<rev> within Kubernetes' 63-character label limit.
const maxRevisionLength = 63

// ValidateRevision checks a revision name against Istio's rules before it
// reaches a chart, where a bad name would only fail at apply time. "default"
// is accepted: it is how Istio names an install without a revision.
func ValidateRevision(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("invalid revision %q: must not be empty", name)
	case len(name) > maxRevisionLength:
		return fmt.Errorf("invalid revision %q: must be at most %d characters", name, maxRevisionLength)
	case !revisionPattern.MatchString(name):
		hint := ""
		if strings.Contains(name, ".") {
			hint = fmt.Sprintf(" (use %q for a version)", RevisionName(name))
		}
		return fmt.Errorf("invalid revision %q: must consist of lower case alphanumeric characters or '-' and start and end with an alphanumeric character%s", name, hint)
	}
	return nil
}

// compareVersions orders dotted numeric versions ("1.9.0" < "1.23.2");
// non-numeric parts compare as strings so the order stays total.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		var sa, sb string
		if i < len(pa) {
			sa = pa[i]
		}
		if i < len(pb) {
			sb = pb[i]
		}
		na, errA := strconv.Atoi(sa)
		nb, errB := strconv.Atoi(sb)
		switch {
		case errA == nil && errB == nil && na != nb:
			if na < nb {
				return -1
			}
			return 1
		case (errA != nil || errB != nil) && sa != sb:
			return strings.Compare(sa, sb)
		}
	}
	return 0
}

// versionPattern accepts the x.y.z release versions charts are tagged with.
var versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$`)
