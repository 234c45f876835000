package istio

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
)

// ArchiveSource renders Istio from chart archives (`helm package` output)
// named <chart>-<release>.tgz in FS: the archives built into the meshroll
// binary for the releases it supports (package charts), so a controller pod
// needs neither a Go toolchain nor a network path to a chart repository.
// Two releases' base, istiod and gateway weigh about 210 KiB. A release FS
// does not hold goes to Fallback; archives are unpacked once per release
// into CacheDir.
type ArchiveSource struct {
	FS fs.FS
	// CacheDir holds unpacked charts; "" means os.UserCacheDir()/meshroll/charts.
	CacheDir string
	// Fallback serves the releases FS lacks; nil refuses them, naming the
	// releases FS holds.
	Fallback ChartSource
}

// ChartsDir returns a directory holding the release's base/,
// istio-control/istio-discovery/ and gateway/.
func (s ArchiveSource) ChartsDir(ctx context.Context, version string) (string, error) {
	if version == "" || strings.ContainsAny(version, `/\`) || version == "." || version == ".." {
		return "", fmt.Errorf("failed to find embedded istio charts: invalid version %q", version)
	}
	if _, err := fs.Stat(s.FS, "base-"+version+".tgz"); err != nil {
		if s.Fallback != nil {
			return s.Fallback.ChartsDir(ctx, version)
		}
		return "", fmt.Errorf("failed to find istio %s charts: this binary carries %s; pass a chart repository (--repo)", version, strings.Join(s.Versions(), ", "))
	}
	cacheDir, err := chartCacheDir(s.CacheDir)
	if err != nil {
		return "", err
	}
	return cachedRelease(filepath.Join(cacheDir, "embedded"), version, func(stage string) error {
		for _, c := range repoCharts() {
			name := c.name + "-" + version + ".tgz"
			raw, err := fs.ReadFile(s.FS, name)
			if err != nil {
				return fmt.Errorf("failed to read embedded chart %q: %w", name, err)
			}
			if err := expandChart(stage, raw, c.name, c.comp, name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Versions lists the releases FS holds (those with a base chart).
func (s ArchiveSource) Versions() []string {
	names, _ := fs.Glob(s.FS, "base-*.tgz")
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(n, "base-"), ".tgz"))
	}
	sort.Strings(out)
	return out
}
