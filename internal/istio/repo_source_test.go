package istio

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// indexEntry is one chart version written into a test index.yaml.
type indexEntry struct {
	name, version, url, digest string
}

// writeIndex writes index.yaml by hand, in the format helm repo index
// produces, so the parser is tested against the real format rather than
// against its own types.
func writeIndex(t *testing.T, dir string, entries []indexEntry) {
	t.Helper()
	byName := map[string][]indexEntry{}
	var names []string
	for _, e := range entries {
		if _, ok := byName[e.name]; !ok {
			names = append(names, e.name)
		}
		byName[e.name] = append(byName[e.name], e)
	}
	var b strings.Builder
	b.WriteString("apiVersion: v1\nentries:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n", n)
		for _, e := range byName[n] {
			fmt.Fprintf(&b, "  - apiVersion: v2\n    appVersion: %s\n    created: \"2024-12-14T00:00:00Z\"\n", e.version)
			if e.digest != "" {
				fmt.Fprintf(&b, "    digest: %s\n", e.digest)
			}
			fmt.Fprintf(&b, "    name: %s\n    urls:\n    - %s\n    version: %s\n", e.name, e.url, e.version)
		}
	}
	b.WriteString("generated: \"2024-12-14T00:00:00Z\"\n")
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveChart packages ch into dir/sub and returns the index entry for it,
// with a relative URL and the archive's digest.
func saveChart(t *testing.T, dir, sub string, ch *chart.Chart) indexEntry {
	t.Helper()
	path, err := chartutil.Save(ch, filepath.Join(dir, sub))
	if err != nil {
		t.Fatalf("failed to package chart %s: %v", ch.Name(), err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		t.Fatal(err)
	}
	return indexEntry{name: ch.Name(), version: ch.Metadata.Version, url: filepath.ToSlash(rel), digest: hex.EncodeToString(sum[:])}
}

// tinyChart is a one-template chart, enough to test fetching and caching.
func tinyChart(name, version string) *chart.Chart {
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version},
		Templates: []*chart.File{{
			Name: "templates/cm.yaml",
			Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"),
		}},
	}
}

// tinyRepo packages base, istiod and gateway at version into dir.
func tinyRepo(t *testing.T, dir, version string) []indexEntry {
	t.Helper()
	var entries []indexEntry
	for _, n := range []string{"base", "istiod", "gateway"} {
		entries = append(entries, saveChart(t, dir, "charts", tinyChart(n, version)))
	}
	return entries
}

// countingServer serves dir and counts requests.
func countingServer(t *testing.T, dir string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestRepoSourceRender packages the real 1.24.2 charts into a repository
// and checks a render through it matches the module render, then that the
// cache serves a second render with the server gone.
func TestRepoSourceRender(t *testing.T) {
	ctx := context.Background()
	const version = "1.24.2"
	moduleDir, err := ModuleSource{}.ChartsDir(ctx, version)
	if err != nil {
		t.Fatalf("ModuleSource.ChartsDir(%s) error = %v", version, err)
	}
	repoDir := t.TempDir()
	var entries []indexEntry
	for _, comp := range allComponents {
		ch, err := loader.LoadDir(filepath.Join(moduleDir, filepath.FromSlash(string(comp))))
		if err != nil {
			t.Fatal(err)
		}
		ch.Metadata.Version = version
		ch.Metadata.AppVersion = version
		entries = append(entries, saveChart(t, repoDir, "charts", ch))
	}
	writeIndex(t, repoDir, entries)
	srv, requests := countingServer(t, repoDir)

	src := RepoSource{URL: srv.URL + "/", CacheDir: t.TempDir()}
	opts := RenderOptions{Version: version, Components: allComponents, Source: src}
	got, err := Render(ctx, opts)
	if err != nil {
		t.Fatalf("Render(RepoSource) error = %v", err)
	}
	want := renderAll(t, version)
	if diff := cmp.Diff(objectList(want), objectList(got)); diff != "" {
		t.Errorf("RepoSource render differs from ModuleSource render (-module +repo):\n%s", diff)
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("first render made %d requests, want 4 (index + 3 charts)", n)
	}

	srv.Close()
	again, err := Render(ctx, opts)
	if err != nil {
		t.Fatalf("second Render with the server closed error = %v", err)
	}
	if diff := cmp.Diff(objectList(got), objectList(again)); diff != "" {
		t.Errorf("cached render differs (-first +second):\n%s", diff)
	}
}

func TestRepoSourceCache(t *testing.T) {
	ctx := context.Background()
	repoDir := t.TempDir()
	writeIndex(t, repoDir, tinyRepo(t, repoDir, "1.24.2"))
	srv, requests := countingServer(t, repoDir)
	src := RepoSource{URL: srv.URL, CacheDir: t.TempDir()}

	dir, err := src.ChartsDir(ctx, "1.24.2")
	if err != nil {
		t.Fatalf("ChartsDir() error = %v", err)
	}
	for _, comp := range allComponents {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(string(comp)), "templates", "cm.yaml")); err != nil {
			t.Errorf("chart %q not unpacked: %v", comp, err)
		}
	}
	if rel, err := filepath.Rel(src.CacheDir, dir); err != nil || strings.Count(filepath.ToSlash(rel), "/") != 1 || !strings.HasSuffix(rel, "1.24.2") {
		t.Errorf("ChartsDir() = %q, want <CacheDir>/<repo hash>/1.24.2", dir)
	}
	before := requests.Load()
	again, err := src.ChartsDir(ctx, "1.24.2")
	if err != nil || again != dir {
		t.Fatalf("second ChartsDir() = %q, %v; want %q", again, err, dir)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("cache hit made %d requests, want 0", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".download-*"))
	if len(leftovers) != 0 {
		t.Errorf("staging directories left behind: %v", leftovers)
	}

	// Another repository URL gets its own cache directory.
	mirror, _ := countingServer(t, repoDir)
	other := RepoSource{URL: mirror.URL, CacheDir: src.CacheDir}
	if d, err := other.ChartsDir(ctx, "1.24.2"); err != nil || d == dir {
		t.Errorf("ChartsDir() of another repository = %q, %v; want a different directory than %q", d, err, dir)
	}
}

func TestRepoSourceErrors(t *testing.T) {
	ctx := context.Background()
	const version = "1.24.2"
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	tests := []struct {
		name string
		// setup fills the repository directory; url, when set, overrides the server's.
		setup func(t *testing.T, dir string)
		url   string
		want  []string
	}{
		{
			name: "unreachable",
			url:  closed.URL,
			want: []string{"failed to reach chart repository"},
		},
		{
			name:  "no index",
			setup: func(*testing.T, string) {},
			want:  []string{"no index.yaml", "HTTP 404"},
		},
		{
			name: "not an index",
			setup: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "index.yaml"), []byte("hello: world\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"not a Helm repository index"},
		},
		{
			name: "chart missing",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, tinyRepo(t, dir, version)[:2])
			},
			want: []string{`chart "gateway" version 1.24.2`, "no such chart"},
		},
		{
			name: "version missing lists versions newest first",
			setup: func(t *testing.T, dir string) {
				entries := tinyRepo(t, dir, "1.23.0")
				entries = append(entries, tinyRepo(t, dir, "1.24.1")...)
				entries = append(entries, tinyRepo(t, dir, "1.24.10")...)
				writeIndex(t, dir, entries)
			},
			want: []string{`chart "base" version 1.24.2`, "has versions 1.24.10, 1.24.1, 1.23.0"},
		},
		{
			name: "digest mismatch",
			setup: func(t *testing.T, dir string) {
				entries := tinyRepo(t, dir, version)
				entries[1].digest = strings.Repeat("deadbeef", 8)
				writeIndex(t, dir, entries)
			},
			want: []string{"failed to verify chart istiod 1.24.2", "digest mismatch"},
		},
		{
			name: "not a chart",
			setup: func(t *testing.T, dir string) {
				entries := tinyRepo(t, dir, version)
				if err := os.WriteFile(filepath.Join(dir, "junk.tgz"), []byte("not a tarball"), 0o644); err != nil {
					t.Fatal(err)
				}
				entries[2].url, entries[2].digest = "junk.tgz", ""
				writeIndex(t, dir, entries)
			},
			want: []string{"chart gateway 1.24.2", "not a Helm chart archive"},
		},
		{
			name: "archive holds another chart",
			setup: func(t *testing.T, dir string) {
				entries := tinyRepo(t, dir, version)
				entries[2].url, entries[2].digest = entries[0].url, ""
				writeIndex(t, dir, entries)
			},
			want: []string{"the archive holds chart base 1.24.2"},
		},
		{
			name: "tarball missing",
			setup: func(t *testing.T, dir string) {
				entries := tinyRepo(t, dir, version)
				entries[0].url = "charts/gone.tgz"
				writeIndex(t, dir, entries)
			},
			want: []string{"failed to download chart base 1.24.2", "HTTP 404"},
		},
		{
			name: "oci goes to OCISource",
			url:  "oci://127.0.0.1:1/istio/charts",
			want: []string{`failed to pull chart "oci://127.0.0.1:1/istio/charts/base:1.24.2"`},
		},
		{
			name: "no URL",
			url:  " ",
			want: []string{"no URL given"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := RepoSource{URL: tt.url, CacheDir: t.TempDir()}
			if tt.setup != nil {
				dir := t.TempDir()
				tt.setup(t, dir)
				srv, _ := countingServer(t, dir)
				src.URL = srv.URL
			}
			dir, err := src.ChartsDir(ctx, version)
			if err == nil {
				t.Fatalf("ChartsDir() = %q, want error containing %q", dir, tt.want)
			}
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ChartsDir() error = %q, want it to contain %q", err, w)
				}
			}
			// A failed download leaves nothing in the cache.
			left, _ := filepath.Glob(filepath.Join(src.CacheDir, "*", "*"))
			if len(left) != 0 {
				t.Errorf("failed download left %v in the cache", left)
			}
		})
	}
}

func TestResolveChartURL(t *testing.T) {
	tests := []struct{ base, ref, want string }{
		{"https://h/charts", "base-1.24.2.tgz", "https://h/charts/base-1.24.2.tgz"},
		{"https://h/charts", "sub/base-1.24.2.tgz", "https://h/charts/sub/base-1.24.2.tgz"},
		{"https://h/charts", "/abs/base.tgz", "https://h/abs/base.tgz"},
		{"https://h/charts", "https://cdn/base.tgz", "https://cdn/base.tgz"},
		{"https://h/charts?token=x", "base.tgz", "https://h/charts/base.tgz?token=x"},
		{"https://h", "base.tgz", "https://h/base.tgz"},
	}
	for _, tt := range tests {
		got, err := resolveChartURL(tt.base, tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("resolveChartURL(%q, %q) = %q, %v; want %q", tt.base, tt.ref, got, err, tt.want)
		}
	}
}
