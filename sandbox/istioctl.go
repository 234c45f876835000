package sandbox

import (
	"context"
	"io"

	"github.com/meshroll/meshroll/internal/istio"
)

// IstioctlReleases are the Istio releases whose istioctl meshroll's parity
// tests put side by side with meshroll: the oldest minor that ships the
// `default` chart (1.24, whose validator istioctl renders from it) and the
// newest release whose istioctl builds from the module proxy here. The
// prebuild step of `make test` and the tests read this one list, so a test
// never starts a cold build the prebuild did not do.
func IstioctlReleases() []string { return []string{"1.24.2", "1.29.1"} }

// istioctlMain is istioctl inside the istio.io/istio module. `version
// --remote=false --short` prints "client version: 1.24.2" without a cluster.
func istioctlMain() istioMain {
	return istioMain{
		name:        "istioctl",
		pkg:         "./istioctl/cmd/istioctl",
		versionArgs: []string{"version", "--remote=false", "--short"},
		coldBuild:   "~4 min",
	}
}

// istioctlLDFlags stamps rel into istioctl (see istioLDFlags).
func istioctlLDFlags(rel istio.Release) string { return istioLDFlags(rel) }

// istioctlHash keys one istioctl build (see istioMain.hash).
func istioctlHash(rel istio.Release) string { return istioctlMain().hash(rel) }

// EnsureIstioctl returns the path of an istioctl binary built from the
// istio.io/istio module of the given release, building it on first use
// (about four minutes cold on two cores) and returning at once afterwards.
// Concurrent callers share one build.
func EnsureIstioctl(ctx context.Context, version string, out io.Writer) (string, error) {
	return istioctlMain().ensure(ctx, version, out)
}
