package istio

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// cacheEntries lists the entry files in dir and fails on leftover temp files.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			t.Errorf("unexpected file %q in cache directory", e.Name())
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

func diffObjects(t *testing.T, what string, want, got []*unstructured.Unstructured) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s differs from an uncached render (-want +got):\n%s", what, diff)
	}
}

func TestRenderCache(t *testing.T) {
	ctx := context.Background()
	charts, err := ModuleSource{}.ChartsDir(ctx, "1.29.1")
	if err != nil {
		t.Fatal(err)
	}
	opts := RenderOptions{Version: "1.29.1", Components: allComponents, Source: DirSource{Dir: charts},
		Set: []string{"pilot.replicaCount=2"}}
	want, err := Render(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "render")
	cached := opts
	cached.Cache = NewRenderCache(dir)

	first, err := Render(ctx, cached)
	if err != nil {
		t.Fatal(err)
	}
	diffObjects(t, "first (miss)", want, first)
	files := cacheEntries(t, dir)
	if len(files) != 1 {
		t.Fatalf("cache holds %d entries after one render, want 1", len(files))
	}

	// Callers own what they get: changing it must not reach the cache.
	first[0].SetLabels(map[string]string{"mutated": "yes"})
	unstructured.RemoveNestedField(first[len(first)-1].Object, "spec")
	second, err := Render(ctx, cached)
	if err != nil {
		t.Fatal(err)
	}
	diffObjects(t, "second (memory hit)", want, second)

	// A new cache over the same directory (the next CLI run) reads the
	// entry: mark it to prove the objects came from disk.
	var e cacheEntry
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("entry is not JSON: %v", err)
	}
	marked := &unstructured.Unstructured{Object: e.Objects[0]}
	marked.SetAnnotations(map[string]string{"from": "disk"})
	if b, err = json.Marshal(e); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	cached.Cache = NewRenderCache(dir)
	third, err := Render(ctx, cached)
	if err != nil {
		t.Fatal(err)
	}
	if got := third[0].GetAnnotations()["from"]; got != "disk" {
		t.Errorf("fresh cache did not read the entry from disk (annotation %q)", got)
	}

	// A corrupt entry is a miss: the render runs again and replaces it.
	for _, garbage := range []string{"{not json", `{"key":{},"objects":[{"kind":"X"}]}`, ""} {
		if err := os.WriteFile(files[0], []byte(garbage), 0o600); err != nil {
			t.Fatal(err)
		}
		cached.Cache = NewRenderCache(dir)
		got, err := Render(ctx, cached)
		if err != nil {
			t.Fatalf("Render over corrupt entry %q: %v", garbage, err)
		}
		diffObjects(t, "render over a corrupt entry", want, got)
		if b, err := os.ReadFile(files[0]); err != nil || json.Unmarshal(b, &e) != nil {
			t.Errorf("corrupt entry %q was not replaced: %v", garbage, err)
		}
	}

	// Other values are another entry.
	other := cached
	other.Set = []string{"pilot.replicaCount=3"}
	if _, err := Render(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := len(cacheEntries(t, dir)); n != 2 {
		t.Errorf("cache holds %d entries after renders with two values, want 2", n)
	}

	// A canceled context fails even when the render is cached.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Render(canceled, cached); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("Render(canceled, cached) error = %v, want context canceled", err)
	}
}

func TestRenderCacheMemoryOnly(t *testing.T) {
	ctx := context.Background()
	charts, err := ModuleSource{}.ChartsDir(ctx, "1.29.1")
	if err != nil {
		t.Fatal(err)
	}
	c := NewRenderCache("")
	opts := RenderOptions{Version: "1.29.1", Source: DirSource{Dir: charts}, Cache: c}
	first, err := Render(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Render(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	diffObjects(t, "memory hit", first, second)
	if len(c.mem) != 1 || c.Dir() != "" {
		t.Errorf("memory-only cache holds %d entries in %q, want 1 in memory", len(c.mem), c.Dir())
	}
}

func TestRenderCacheKey(t *testing.T) {
	ctx := context.Background()
	base := RenderOptions{Version: "1.29.1", Values: map[string]any{"pilot": map[string]any{"env": map[string]any{"A": "b", "C": "d"}}}}
	keyOf := func(t *testing.T, opts RenderOptions) string {
		t.Helper()
		o, err := opts.normalize()
		if err != nil {
			t.Fatal(err)
		}
		user, err := userValues(o.Values, o.Set)
		if err != nil {
			t.Fatal(err)
		}
		k, dir, err := NewRenderCache("").key(ctx, o, user)
		if err != nil || k.name == "" || dir != "" {
			t.Fatalf("key() = %q, dir %q, error %v; want a key without asking the module source", k.name, dir, err)
		}
		return k.name
	}
	want := keyOf(t, base)
	same := []RenderOptions{
		base,
		{Version: "v1.29.1", Revision: "1-29-1", Namespace: SystemNamespace, Components: []Component{Base, Istiod, Base},
			Values: map[string]any{"pilot": map[string]any{"env": map[string]any{"C": "d", "A": "b"}}}},
		{Version: "1.29.1", Set: []string{"pilot.env.A=b", "pilot.env.C=d"}},
	}
	for i, opts := range same {
		if got := keyOf(t, opts); got != want {
			t.Errorf("same[%d]: key differs for equivalent options", i)
		}
	}
	differ := map[string]RenderOptions{
		"version":           {Version: "1.26.1", Values: base.Values},
		"revision":          {Version: "1.29.1", Revision: "canary", Values: base.Values},
		"components":        {Version: "1.29.1", Components: []Component{Base}, Values: base.Values},
		"component order":   {Version: "1.29.1", Components: []Component{Istiod, Base}, Values: base.Values},
		"namespace":         {Version: "1.29.1", Namespace: "mesh", Values: base.Values},
		"gateway name":      {Version: "1.29.1", GatewayName: "gw", Values: base.Values},
		"gateway namespace": {Version: "1.29.1", GatewayNamespace: "edge", Values: base.Values},
		"values":            {Version: "1.29.1"},
		"set":               {Version: "1.29.1", Values: base.Values, Set: []string{"pilot.env.A=x"}},
	}
	for name, opts := range differ {
		t.Run(name, func(t *testing.T) {
			if keyOf(t, opts) == want {
				t.Errorf("key does not change with %s", name)
			}
		})
	}
}

func TestRenderCacheDirFingerprint(t *testing.T) {
	dir := t.TempDir()
	chart := filepath.Join(dir, "base", "templates")
	if err := os.MkdirAll(chart, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(chart, "a.yaml")
	if err := os.WriteFile(file, []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := fingerprint(dir, []Component{Base})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("a: 22\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	after, err := fingerprint(dir, []Component{Base})
	if err != nil {
		t.Fatal(err)
	}
	if before == after {
		t.Error("fingerprint did not change when a chart file changed")
	}
	if _, err := fingerprint(dir, []Component{Gateway}); err == nil {
		t.Error("fingerprint of a missing chart succeeded")
	}
}

func TestDefaultRenderCacheDir(t *testing.T) {
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("XDG_CACHE_HOME only applies on Unix systems other than macOS")
	}
	t.Setenv("XDG_CACHE_HOME", "/tmp/xdg")
	got, err := DefaultRenderCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join("/tmp/xdg", "meshroll", "render") {
		t.Errorf("DefaultRenderCacheDir() = %q", got)
	}
}
