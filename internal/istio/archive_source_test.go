package istio_test

import (
	"context"
	"strings"
	"testing"

	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/istio"
)

// TestArchiveSourceMatchesModule: the chart archives built into the binary
// render, for every release they hold, the same objects as the Go module's
// charts (so `make generate` packaged the right charts), and a second call
// is served from the unpacked cache.
func TestArchiveSourceMatchesModule(t *testing.T) {
	if testing.Short() {
		t.Skip("renders Istio's charts from the Go module cache (run without -short)")
	}
	src := istio.ArchiveSource{FS: charts.IstioArchives(), CacheDir: t.TempDir()}
	versions := src.Versions()
	if strings.Join(versions, ",") != "1.23.2,1.24.2" {
		t.Fatalf("embedded releases %v, want 1.23.2 and 1.24.2", versions)
	}
	comps := []istio.Component{istio.Base, istio.Istiod, istio.Gateway}
	for _, v := range versions {
		got, err := istio.Render(t.Context(), istio.RenderOptions{Version: v, Revision: "x", Components: comps, Source: src})
		if err != nil {
			t.Fatalf("render %s from the archives: %v", v, err)
		}
		want, err := istio.Render(t.Context(), istio.RenderOptions{Version: v, Revision: "x", Components: comps})
		if err != nil {
			t.Fatalf("render %s from the module: %v", v, err)
		}
		if len(got) != len(want) || len(got) < 30 {
			t.Fatalf("istio %s: %d objects from the archives, %d from the module", v, len(got), len(want))
		}
		for i := range got {
			a := got[i].GetKind() + " " + got[i].GetNamespace() + "/" + got[i].GetName()
			b := want[i].GetKind() + " " + want[i].GetNamespace() + "/" + want[i].GetName()
			if a != b {
				t.Errorf("istio %s object %d: %s from the archives, %s from the module", v, i, a, b)
			}
		}
		dir, err := src.ChartsDir(t.Context(), v)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := src.ChartsDir(t.Context(), v); err != nil || again != dir {
			t.Errorf("second ChartsDir(%s) = %q, %v; want the cached %q", v, again, err, dir)
		}
	}
}

// TestArchiveSourceMissingRelease: a release the binary does not carry goes
// to the fallback, or without one is refused naming what it carries.
func TestArchiveSourceMissingRelease(t *testing.T) {
	src := istio.ArchiveSource{FS: charts.IstioArchives(), CacheDir: t.TempDir()}
	_, err := src.ChartsDir(t.Context(), "1.26.1")
	if err == nil || !strings.Contains(err.Error(), "1.23.2, 1.24.2") || !strings.Contains(err.Error(), "--repo") {
		t.Errorf("ChartsDir(1.26.1) error = %v; want one naming the carried releases and --repo", err)
	}
	fb := istio.ArchiveSource{FS: charts.IstioArchives(), Fallback: fixedSource("/fallback")}
	if dir, err := fb.ChartsDir(t.Context(), "1.26.1"); err != nil || dir != "/fallback" {
		t.Errorf("ChartsDir(1.26.1) with a fallback = %q, %v; want the fallback's /fallback", dir, err)
	}
	if _, err := src.ChartsDir(t.Context(), "../1.24.2"); err == nil {
		t.Error("ChartsDir(../1.24.2) succeeded; want an invalid version error")
	}
}

// fixedSource answers every release with one directory.
type fixedSource string

func (f fixedSource) ChartsDir(context.Context, string) (string, error) { return string(f), nil }
