package controller

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/repo"

	"github.com/meshroll/meshroll/charts"
)

// istioRepo is a Helm chart repository (index.yaml, as `helm repo index`
// writes it, and `helm package`d archives) serving Istio's base, istiod and
// gateway charts: what a controller in a cluster, with no Go toolchain,
// renders Istio from. The archives are the ones the binary embeds.
type istioRepo struct {
	URL      string
	requests atomic.Int64
}

func serveIstioRepo(t testing.TB, version string) *istioRepo {
	t.Helper()
	dir := t.TempDir()
	for _, c := range []string{"base", "istiod", "gateway"} {
		name := c + "-" + version + ".tgz"
		b, err := fs.ReadFile(charts.IstioArchives(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
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
	return r
}
