package controller

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"

	"github.com/meshroll/meshroll/internal/istio"
)

// istioRepo is a Helm chart repository (index.yaml + chart archives, as
// `helm package` and `helm repo index` make them) serving Istio's base,
// istiod and gateway charts of version, packaged from the Go module: what a
// controller in a cluster, with no Go toolchain, renders Istio from.
type istioRepo struct {
	URL      string
	requests atomic.Int64
}

func serveIstioRepo(t testing.TB, version string) *istioRepo {
	t.Helper()
	src, err := istio.ModuleSource{}.ChartsDir(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, comp := range []istio.Component{istio.Base, istio.Istiod, istio.Gateway} {
		ch, err := loader.LoadDir(filepath.Join(src, filepath.FromSlash(string(comp))))
		if err != nil {
			t.Fatal(err)
		}
		ch.Metadata.Version, ch.Metadata.AppVersion = version, version
		if _, err := chartutil.Save(ch, dir); err != nil {
			t.Fatalf("failed to package chart %s: %v", ch.Name(), err)
		}
	}
	r := &istioRepo{}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/"
	idx, err := repo.IndexDirectory(dir, r.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.yaml")); err != nil {
		t.Fatal(err)
	}
	return r
}
