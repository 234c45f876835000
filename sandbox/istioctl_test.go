package sandbox

import (
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/istio"
)

func TestIstioctlReleasesAreInstallable(t *testing.T) {
	for _, v := range IstioctlReleases() {
		if _, err := istio.LookupRelease(v); err != nil {
			t.Errorf("istioctl release %s: %v", v, err)
		}
	}
}

func TestIstioctlLDFlags(t *testing.T) {
	rel := istio.Release{Version: "1.24.2", ModuleVersion: "v0.0.0-20241214032803-7754674f65d3"}
	flags := istioctlLDFlags(rel)
	for _, want := range []string{
		"-X istio.io/istio/pkg/version.buildVersion=1.24.2",
		"-X istio.io/istio/pkg/version.buildGitRevision=7754674f65d3",
		"-X istio.io/istio/pkg/version.buildStatus=Clean",
		"-X istio.io/istio/pkg/version.buildHub=docker.io/istio",
	} {
		if !strings.Contains(flags, want) {
			t.Errorf("ldflags %q lack %q", flags, want)
		}
	}
}

func TestIstioctlHash(t *testing.T) {
	a := istio.Release{Version: "1.24.2", ModuleVersion: "v0.0.0-20241214032803-7754674f65d3"}
	b := istio.Release{Version: "1.24.2", ModuleVersion: "v0.0.0-20241214032803-000000000000"}
	if istioctlHash(a) != istioctlHash(a) {
		t.Error("hash of one release is not stable")
	}
	if istioctlHash(a) == istioctlHash(b) {
		t.Error("another module version reuses the cached binary")
	}
}
