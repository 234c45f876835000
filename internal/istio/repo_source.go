package istio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart/loader"
	"sigs.k8s.io/yaml"
)

// repoIndex is the part of a Helm repository's index.yaml meshroll reads.
// helm's pkg/repo has the full type, but importing it pulls in the OCI
// registry client and its dependencies (oras, containerd), which this
// module does not carry.
type repoIndex struct {
	APIVersion string                        `json:"apiVersion"`
	Entries    map[string][]repoChartVersion `json:"entries"`
}

// repoChartVersion is one entry of index.yaml: a chart at a version and
// where to download it.
type repoChartVersion struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	URLs    []string `json:"urls"`
	Digest  string   `json:"digest"`
}

// RepoSource fetches charts from a Helm chart repository (an index.yaml plus
// chart tarballs), which is how most users install Istio
// (https://istio-release.storage.googleapis.com/charts). The charts are
// unpacked once per repository and release into CacheDir, so later renders of
// the same release need no network.
type RepoSource struct {
	// URL is the repository's base URL (the directory holding index.yaml);
	// an oci:// URL is pulled through OCISource instead.
	URL string
	// CacheDir holds unpacked charts; "" means os.UserCacheDir()/meshroll/charts.
	CacheDir string
}

// repoChart names a chart Istio publishes in its Helm repository and the
// directory render.go expects it in (the layout of manifests/charts).
type repoChart struct {
	name string
	comp Component
}

// repoCharts lists the charts a release needs.
func repoCharts() []repoChart {
	return []repoChart{{"base", Base}, {"istiod", Istiod}, {"gateway", Gateway}}
}

// maxRepoDownload bounds one index.yaml or chart download, so a misbehaving
// server cannot fill memory; Istio's largest chart is well under 1 MiB and
// its index a few MiB.
const maxRepoDownload = 64 << 20

// maxListedVersions bounds the versions named in a "version missing" error:
// Istio's repository has hundreds.
const maxListedVersions = 15

// ChartsDir returns a directory holding base/, istio-control/istio-discovery/
// and gateway/ of the release, downloading and verifying them from the
// repository unless an earlier call already cached them.
func (s RepoSource) ChartsDir(ctx context.Context, version string) (string, error) {
	base := strings.TrimRight(strings.TrimSpace(s.URL), "/")
	if base == "" {
		return "", errors.New("failed to use chart repository: no URL given")
	}
	if strings.HasPrefix(base, "oci://") {
		return OCISource{URL: base, CacheDir: s.CacheDir}.ChartsDir(ctx, version)
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return "", fmt.Errorf("failed to use chart repository %q: URL must start with https:// or http://", s.URL)
	}
	if version == "" || strings.ContainsAny(version, `/\`) || version == "." || version == ".." {
		return "", fmt.Errorf("failed to fetch istio charts from %q: invalid version %q", base, version)
	}
	cacheDir, err := chartCacheDir(s.CacheDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(base))
	return cachedRelease(filepath.Join(cacheDir, hex.EncodeToString(sum[:8])), version, func(stage string) error {
		return fetchRelease(ctx, base, version, stage)
	})
}

// repoCacheComplete reports whether dir holds every chart; directories only appear
// by rename once complete, so this is a cache hit check without network.
func repoCacheComplete(dir string) bool {
	for _, c := range repoCharts() {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(string(c.comp)), "Chart.yaml")); err != nil {
			return false
		}
	}
	return true
}

// fetchRelease downloads the index and the release's charts and unpacks them
// into stage.
func fetchRelease(ctx context.Context, base, version, stage string) error {
	indexURL, err := resolveChartURL(base, "index.yaml")
	if err != nil {
		return fmt.Errorf("failed to parse chart repository URL %q: %w", base, err)
	}
	raw, status, err := httpGet(ctx, indexURL)
	if err != nil {
		return fmt.Errorf("failed to reach chart repository %q: %w", base, err)
	}
	if status == http.StatusNotFound {
		return fmt.Errorf("failed to fetch index of chart repository %q: no index.yaml at %q (HTTP 404)", base, indexURL)
	}
	if status != http.StatusOK {
		return fmt.Errorf("failed to fetch index of chart repository %q: HTTP %d from %q", base, status, indexURL)
	}
	var index repoIndex
	if err := yaml.Unmarshal(raw, &index); err != nil {
		return fmt.Errorf("failed to parse index.yaml of chart repository %q: %w", base, err)
	}
	if index.APIVersion == "" {
		return fmt.Errorf("failed to parse index.yaml of chart repository %q: no apiVersion, this is not a Helm repository index", base)
	}
	for _, c := range repoCharts() {
		cv, err := findChartVersion(index, c.name, version)
		if err != nil {
			return fmt.Errorf("failed to find chart %q version %s in repository %q: %w", c.name, version, base, err)
		}
		if err := fetchChart(ctx, base, cv, stage, c.comp); err != nil {
			return err
		}
	}
	return nil
}

// findChartVersion picks exactly version (no semver ranges: a release is a
// release) and names the versions the index has when it is missing.
func findChartVersion(index repoIndex, name, version string) (repoChartVersion, error) {
	versions, ok := index.Entries[name]
	if !ok || len(versions) == 0 {
		return repoChartVersion{}, errors.New("the index has no such chart")
	}
	have := make([]string, 0, len(versions))
	for _, cv := range versions {
		if cv.Version == version {
			if len(cv.URLs) == 0 {
				return repoChartVersion{}, errors.New("the index lists no download URL for it")
			}
			return cv, nil
		}
		have = append(have, cv.Version)
	}
	slices.SortFunc(have, newestFirst)
	more := ""
	if len(have) > maxListedVersions {
		more = fmt.Sprintf(" and %d older", len(have)-maxListedVersions)
		have = have[:maxListedVersions]
	}
	return repoChartVersion{}, fmt.Errorf("the index has versions %s%s", strings.Join(have, ", "), more)
}

// fetchChart downloads one chart tarball, verifies its digest, checks it is
// the chart the index promised and unpacks it at stage/comp.
func fetchChart(ctx context.Context, base string, cv repoChartVersion, stage string, comp Component) error {
	ref := fmt.Sprintf("%s %s", cv.Name, cv.Version)
	chartURL, err := resolveChartURL(base, cv.URLs[0])
	if err != nil {
		return fmt.Errorf("failed to resolve URL %q of chart %s: %w", cv.URLs[0], ref, err)
	}
	if strings.HasPrefix(chartURL, "oci://") {
		return fmt.Errorf("failed to download chart %s from %q: oci:// chart URLs are not supported yet", ref, chartURL)
	}
	raw, status, err := httpGet(ctx, chartURL)
	if err != nil {
		return fmt.Errorf("failed to download chart %s from %q: %w", ref, chartURL, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("failed to download chart %s from %q: HTTP %d", ref, chartURL, status)
	}
	if cv.Digest != "" {
		sum := sha256.Sum256(raw)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, cv.Digest) {
			return fmt.Errorf("failed to verify chart %s from %q: digest mismatch: index says sha256 %s, download has %s", ref, chartURL, cv.Digest, got)
		}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("failed to load chart %s from %q: not a Helm chart archive: %w", ref, chartURL, err)
	}
	if ch.Name() != cv.Name || ch.Metadata.Version != cv.Version {
		return fmt.Errorf("failed to load chart %s from %q: the archive holds chart %s %s", ref, chartURL, ch.Name(), ch.Metadata.Version)
	}
	return expandChart(stage, raw, cv.Name, comp, ref+" from "+chartURL)
}

// httpGet fetches url with ctx, returning the body (bounded by
// maxRepoDownload) and the status code.
func httpGet(ctx context.Context, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRepoDownload+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("failed to read response body: %w", err)
	}
	if len(body) > maxRepoDownload {
		return nil, resp.StatusCode, fmt.Errorf("response larger than %d bytes", maxRepoDownload)
	}
	return body, resp.StatusCode, nil
}

// newestFirst orders semantic versions newest first; strings that are not
// versions sort after them, alphabetically.
func newestFirst(a, b string) int {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	switch {
	case errA == nil && errB == nil:
		return vb.Compare(va)
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	default:
		return strings.Compare(a, b)
	}
}

// resolveChartURL resolves a chart URL from the index against the
// repository URL: Helm repositories may list absolute URLs or paths
// relative to the directory holding index.yaml.
func resolveChartURL(base, ref string) (string, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	if r.IsAbs() {
		return ref, nil
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	b.Path = strings.TrimSuffix(b.Path, "/") + "/"
	b.RawPath = ""
	resolved := b.ResolveReference(r)
	if resolved.RawQuery == "" {
		// Keep the repository's query (e.g. a signed-URL token), as helm does.
		resolved.RawQuery = b.RawQuery
	}
	return resolved.String(), nil
}
