package istio

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chartutil"
)

// chartCacheDir resolves a chart source's CacheDir: "" means
// os.UserCacheDir()/meshroll/charts.
func chartCacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	user, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to find user cache directory for charts (set a cache directory): %w", err)
	}
	return filepath.Join(user, "meshroll", "charts"), nil
}

// cachedRelease returns sourceDir/version when it already holds every chart,
// or fills a staging directory with fetch and renames it into place, so a
// reader never sees a half-written release and concurrent fetchers of the
// same release both end with a complete one. Every chart source that
// downloads or unpacks (repository, OCI registry, embedded archives) shares it.
func cachedRelease(sourceDir, version string, fetch func(stage string) error) (string, error) {
	dest := filepath.Join(sourceDir, version)
	if repoCacheComplete(dest) {
		return dest, nil
	}
	if err := os.MkdirAll(sourceDir, 0o755); err != nil {
		return "", fmt.Errorf("failed to create chart cache directory %q: %w", sourceDir, err)
	}
	stage, err := os.MkdirTemp(sourceDir, ".download-"+version+"-")
	if err != nil {
		return "", fmt.Errorf("failed to create chart cache directory %q: %w", sourceDir, err)
	}
	defer os.RemoveAll(stage) // a no-op after the rename below succeeds

	if err := fetch(stage); err != nil {
		return "", err
	}
	if err := os.Rename(stage, dest); err != nil {
		// Another process may have finished the same download first.
		if repoCacheComplete(dest) {
			return dest, nil
		}
		return "", fmt.Errorf("failed to store charts of istio %s in %q: %w", version, dest, err)
	}
	return dest, nil
}

// expandChart unpacks the chart archive raw, whose chart is called name, at
// stage/comp (the layout of manifests/charts that render.go expects); from
// names the archive in errors.
func expandChart(stage string, raw []byte, name string, comp Component, from string) error {
	// chartutil.Expand unpacks into <dir>/<chart name> with path checks;
	// the result then moves to the layout render.go expects.
	unpack, err := os.MkdirTemp(stage, ".unpack-")
	if err != nil {
		return fmt.Errorf("failed to create directory in %q: %w", stage, err)
	}
	if err := chartutil.Expand(unpack, bytes.NewReader(raw)); err != nil {
		return fmt.Errorf("failed to unpack chart %s: %w", from, err)
	}
	target := filepath.Join(stage, filepath.FromSlash(string(comp)))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("failed to create directory %q: %w", filepath.Dir(target), err)
	}
	if err := os.Rename(filepath.Join(unpack, name), target); err != nil {
		return fmt.Errorf("failed to place chart %s at %q: %w", from, target, err)
	}
	if err := os.Remove(unpack); err != nil {
		return fmt.Errorf("failed to remove %q: %w", unpack, err)
	}
	return nil
}
