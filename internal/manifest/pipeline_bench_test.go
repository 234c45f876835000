package manifest_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	"github.com/meshroll/meshroll/internal/manifest/check"
)

// benchVersion is the release the pipeline benchmark renders.
const benchVersion = "1.26.1"

// BenchmarkPipeline measures what `meshroll manifest` does for one revision
// (render base+istiod+gateway, post-process, split, validate) next to the
// bare Helm SDK render of the same charts with the same values, so the
// pipeline's overhead over Helm is visible in one run on one machine.
func BenchmarkPipeline(b *testing.B) {
	ctx := context.Background()
	dir, err := istio.ModuleSource{}.ChartsDir(ctx, benchVersion)
	if err != nil {
		b.Skipf("charts of istio %s not available: %v", benchVersion, err)
	}
	opts := istio.RenderOptions{
		Version:    benchVersion,
		Components: []istio.Component{istio.Base, istio.Istiod, istio.Gateway},
		Source:     istio.DirSource{Dir: dir},
	}
	post := manifest.PostProcess{Labels: map[string]string{"example.com/owner": "platform"}}

	b.Run("helm-render-bare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			helmRender(b, dir)
		}
	})
	b.Run("render-cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := istio.Render(ctx, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		objs, err := istio.Render(ctx, opts)
		if err != nil {
			b.Fatal(err)
		}
		in := check.FromObjects(objs, "")
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			check.Run(in, check.All())
		}
	})
	b.Run("pipeline-cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pipeline(ctx, b, opts, post)
		}
	})

	// Warm: the second render of the same release. In memory, as a
	// long-running process (the controller) sees it...
	cacheDir := b.TempDir()
	warm := opts
	warm.Cache = istio.NewRenderCache(cacheDir)
	if _, err := istio.Render(ctx, warm); err != nil {
		b.Fatal(err)
	}
	b.Run("render-warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := istio.Render(ctx, warm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipeline-warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pipeline(ctx, b, warm, post)
		}
	})
	// ... and from disk, as the next CLI run sees it: a fresh cache over the
	// same directory, charts named by module version (no `go` process).
	b.Run("pipeline-warm-disk", func(b *testing.B) {
		disk := opts
		disk.Source = istio.ModuleSource{}
		if _, err := istio.Render(ctx, istio.RenderOptions{Version: disk.Version, Components: disk.Components, Cache: istio.NewRenderCache(cacheDir)}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			disk.Cache = istio.NewRenderCache(cacheDir)
			pipeline(ctx, b, disk, post)
		}
	})
}

// pipeline renders, post-processes, splits and validates once.
func pipeline(ctx context.Context, b *testing.B, opts istio.RenderOptions, post manifest.PostProcess) {
	b.Helper()
	objs, err := istio.Render(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	objs, err = post.Apply(objs)
	if err != nil {
		b.Fatal(err)
	}
	crds, rest := manifest.Split(objs)
	if len(crds) == 0 || len(rest) == 0 {
		b.Fatalf("split gave %d CRDs and %d other objects", len(crds), len(rest))
	}
	for _, f := range check.Run(check.FromObjects(objs, ""), check.All()) {
		if f.Severity == check.Error {
			b.Fatalf("%s %s: %s", f.Code, f.Object, f.Message)
		}
	}
}

// helmRender is the baseline: load and render the three charts with the
// values meshroll sets, as `helm template` would, without parsing the output.
func helmRender(b *testing.B, dir string) {
	b.Helper()
	rev := istio.RevisionName(benchVersion)
	charts := []struct {
		path, release, namespace string
		base                     bool
	}{
		{"base", "istio-base", istio.SystemNamespace, true},
		{"istio-control/istio-discovery", "istiod-" + rev, istio.SystemNamespace, false},
		{"gateway", istio.DefaultGatewayName, istio.DefaultGatewayNamespace, false},
	}
	for _, c := range charts {
		ch, err := loader.LoadDir(filepath.Join(dir, filepath.FromSlash(c.path)))
		if err != nil {
			b.Fatal(err)
		}
		if ch.Schema, err = keepRootRef(ch.Schema); err != nil {
			b.Fatal(err)
		}
		vals := map[string]any{
			"revision": rev,
			"global":   map[string]any{"hub": istio.DefaultHub, "tag": benchVersion, "istioNamespace": istio.SystemNamespace},
		}
		if c.base {
			vals["defaultRevision"] = ""
		}
		top, err := chartutil.ToRenderValues(ch, vals,
			chartutil.ReleaseOptions{Name: c.release, Namespace: c.namespace, Revision: 1, IsInstall: true}, nil)
		if err != nil {
			b.Fatal(err)
		}
		out, err := engine.Render(ch, top)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) == 0 {
			b.Fatalf("chart %s rendered nothing", c.path)
		}
	}
}

// keepRootRef drops the keywords next to a root "$ref" of a values schema,
// as meshroll's render does: the gateway chart wrote them for draft-04, where
// "$ref" overrides its siblings, and Helm's validator rejects every value
// otherwise. It is part of rendering these charts with Helm at all.
func keepRootRef(schema []byte) ([]byte, error) {
	if len(schema) == 0 {
		return schema, nil
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, err
	}
	if _, ok := root["$ref"]; !ok {
		return schema, nil
	}
	for k := range root {
		switch k {
		case "$ref", "$schema", "$defs", "definitions", "$id":
		default:
			delete(root, k)
		}
	}
	return json.Marshal(root)
}
