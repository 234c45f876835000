package istio

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	dregistry "github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/registry"
)

// startRegistry runs a real OCI registry (CNCF Distribution, the registry
// Docker Hub and Helm's own tests run) in memory on 127.0.0.1 and returns
// its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg := &configuration.Configuration{}
	cfg.HTTP.Addr = addr
	cfg.HTTP.DrainTimeout = time.Second
	cfg.Log.Level = "fatal" // expected 404s during a push are logged at error
	cfg.Log.AccessLog.Disabled = true
	cfg.Storage = map[string]configuration.Parameters{"inmemory": map[string]any{}}
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := dregistry.NewRegistry(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = reg.ListenAndServe() }()
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()); cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry on %s not up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pushRelease packages the release's charts from the Go module as Istio
// publishes them (chart version = release) and pushes them with Helm's
// registry client, as `helm push` would.
func pushRelease(t *testing.T, client *registry.Client, host, version string) {
	t.Helper()
	dir, err := ModuleSource{}.ChartsDir(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range repoCharts() {
		ch, err := loader.LoadDir(filepath.Join(dir, filepath.FromSlash(string(c.comp))))
		if err != nil {
			t.Fatal(err)
		}
		ch.Metadata.Name, ch.Metadata.Version = c.name, version
		path, err := chartutil.Save(ch, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Push(raw, fmt.Sprintf("%s/%s:%s", host, c.name, version)); err != nil {
			t.Fatalf("push %s: %v", c.name, err)
		}
	}
}

// TestOCISourceRealRegistry pushes Istio 1.24.2's charts to a real registry
// on 127.0.0.1 and renders the release from it: the same objects as from the
// module, and a second ChartsDir is served from the cache with the registry
// gone.
func TestOCISourceRealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a registry and reads Istio's module (run without -short)")
	}
	const version = "1.24.2"
	host := startRegistry(t) + "/istio/charts"
	client, err := registry.NewClient(registry.ClientOptPlainHTTP(), registry.ClientOptWriter(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	pushRelease(t, client, host, version)

	src := OCISource{URL: "oci://" + host, CacheDir: t.TempDir(), PlainHTTP: true}
	start := time.Now()
	dir, err := src.ChartsDir(t.Context(), version)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pulled and unpacked base, istiod, gateway %s in %s", version, time.Since(start).Round(time.Millisecond))
	comps := []Component{Base, Istiod, Gateway}
	fromOCI, err := Render(t.Context(), RenderOptions{Version: version, Components: comps, Source: DirSource{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	fromModule, err := Render(t.Context(), RenderOptions{Version: version, Components: comps})
	if err != nil {
		t.Fatal(err)
	}
	if len(fromOCI) != len(fromModule) || len(fromOCI) < 30 {
		t.Fatalf("rendered %d objects from the registry, %d from the module", len(fromOCI), len(fromModule))
	}
	for i := range fromOCI {
		a := fromOCI[i].GetKind() + " " + fromOCI[i].GetNamespace() + "/" + fromOCI[i].GetName()
		b := fromModule[i].GetKind() + " " + fromModule[i].GetNamespace() + "/" + fromModule[i].GetName()
		if a != b {
			t.Errorf("object %d: %s from the registry, %s from the module", i, a, b)
		}
	}

	// Cached: a second call pulls nothing.
	again, err := src.ChartsDir(t.Context(), version)
	if err != nil || again != dir {
		t.Errorf("second ChartsDir() = %q, %v; want the cached %q", again, err, dir)
	}

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct{ url, version, want string }{
			{"oci://" + host, "1.99.0", `failed to pull chart "oci://` + host + `/base:1.99.0"`},
			{"https://" + host, version, "want oci://host[:port]/path"},
			{"oci://" + host, "../x", "invalid version"},
		} {
			_, err := OCISource{URL: tt.url, CacheDir: t.TempDir(), PlainHTTP: true}.ChartsDir(t.Context(), tt.version)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ChartsDir(%s, %s) = %v, want an error containing %q", tt.url, tt.version, err, tt.want)
			}
		}
	})
}
