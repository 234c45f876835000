package istio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/registry"
)

// OCISource pulls charts from an OCI registry with Helm's own registry
// client (as `helm pull oci://…` does): Istio publishes base, istiod and
// gateway as <URL>/<chart>:<release>. A controller in a cluster has no Go
// toolchain, and many air-gapped clusters mirror charts into the registry
// they already run. Pulled charts are unpacked once per registry path and
// release into CacheDir.
type OCISource struct {
	// URL is oci://host[:port]/path, the repository prefix of the charts.
	URL string
	// CacheDir holds unpacked charts; "" means os.UserCacheDir()/meshroll/charts.
	CacheDir string
	// PlainHTTP talks HTTP instead of HTTPS (a registry on loopback).
	PlainHTTP bool
}

// ChartsDir returns a directory holding the release's base/,
// istio-control/istio-discovery/ and gateway/, pulling them unless an earlier
// call cached them.
func (s OCISource) ChartsDir(ctx context.Context, version string) (string, error) {
	base := strings.TrimRight(strings.TrimSpace(s.URL), "/")
	host := strings.TrimPrefix(base, "oci://")
	if !strings.HasPrefix(base, "oci://") || host == "" || strings.Contains(host, "://") {
		return "", fmt.Errorf("failed to use chart registry %q: want oci://host[:port]/path", s.URL)
	}
	if version == "" || strings.ContainsAny(version, `/\:@`) || version == "." || version == ".." {
		return "", fmt.Errorf("failed to pull istio charts from %q: invalid version %q", base, version)
	}
	cacheDir, err := chartCacheDir(s.CacheDir)
	if err != nil {
		return "", err
	}
	opts := []registry.ClientOption{registry.ClientOptWriter(io.Discard)}
	if s.PlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	client, err := registry.NewClient(opts...)
	if err != nil {
		return "", fmt.Errorf("failed to create registry client for %q: %w", base, err)
	}
	sum := sha256.Sum256([]byte(base))
	return cachedRelease(filepath.Join(cacheDir, "oci-"+hex.EncodeToString(sum[:8])), version, func(stage string) error {
		for _, c := range repoCharts() {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("failed to pull istio %s charts from %q: %w", version, base, err)
			}
			if err := pullChart(client, host+"/"+c.name+":"+version, c, version, stage); err != nil {
				return err
			}
		}
		return nil
	})
}

// pullChart pulls one chart, checks it is the chart and release asked for
// and unpacks it at stage/comp.
func pullChart(client *registry.Client, ref string, c repoChart, version, stage string) error {
	res, err := client.Pull(ref)
	if err != nil {
		var hint string
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			hint = " (a registry without TLS needs plain HTTP)"
		}
		return fmt.Errorf("failed to pull chart %q%s: %w", "oci://"+ref, hint, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(res.Chart.Data))
	if err != nil {
		return fmt.Errorf("failed to load chart %q: not a Helm chart archive: %w", "oci://"+ref, err)
	}
	if ch.Name() != c.name || ch.Metadata.Version != version {
		return fmt.Errorf("failed to load chart %q: the artifact holds chart %s %s", "oci://"+ref, ch.Name(), ch.Metadata.Version)
	}
	return expandChart(stage, res.Chart.Data, c.name, c.comp, "oci://"+ref)
}
