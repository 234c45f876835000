package sandbox

import (
	"context"
	"io"
)

// PilotDiscoveryReleases are the Istio releases whose istiod the sandbox's
// tests run for real (see package istiod): the prebuild step of `make test`
// builds exactly these, so a test never starts a cold build the prebuild did
// not do. Add a release here when a test installs it (the parity tests
// install every istioctl release, 1.29.1 included).
func PilotDiscoveryReleases() []string {
	return []string{"1.23.2", "1.24.2", "1.25.1", "1.26.1", "1.29.1"}
}

// pilotDiscoveryMain is istiod's binary inside the istio.io/istio module.
// `version --short` prints the bare release without a cluster.
func pilotDiscoveryMain() istioMain {
	return istioMain{
		name:        "pilot-discovery",
		pkg:         "./pilot/cmd/pilot-discovery",
		versionArgs: []string{"version", "--short"},
		coldBuild:   "2–6 min, ~1 min once istioctl of the release was built",
	}
}

// EnsurePilotDiscovery returns the path of a pilot-discovery (istiod) binary
// built from the istio.io/istio module of the given release, building it on
// first use (two minutes with an empty build cache on two idle cores, up to
// six on busy ones; one when the release's istioctl was built before, since
// they share most dependencies) and
// returning at once afterwards. Concurrent callers, also in other test
// binaries, share one build.
func EnsurePilotDiscovery(ctx context.Context, version string, out io.Writer) (string, error) {
	return pilotDiscoveryMain().ensure(ctx, version, out)
}
