package istio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ChartSource finds the Helm charts of an Istio release. It is an interface
// so that tests, air-gapped users and GitOps pipelines can point meshroll at
// charts on disk instead of the Go module proxy.
type ChartSource interface {
	// ChartsDir returns a directory containing base/, istio-control/ and
	// gateway/ for the given release.
	ChartsDir(ctx context.Context, version string) (string, error)
}

// ModuleSource fetches charts through the Go module proxy: istio.io/istio's
// module carries manifests/charts, and the proxy is often the only network a
// build or CI machine may reach. Downloads land in the module cache, so a
// second call for the same release costs one `go` process and no network.
type ModuleSource struct {
	// GoBin is the go binary to run; "" finds "go" on PATH.
	GoBin string
}

// moduleDownload is the subset of `go mod download -json` output we read.
type moduleDownload struct {
	Path    string
	Version string
	Dir     string
	Error   string
}

// istioModulePath is the Go module that carries Istio's charts.
const istioModulePath = "istio.io/istio"

// ChartsDir downloads (or finds in the module cache) the release's module and
// returns its manifests/charts directory.
func (s ModuleSource) ChartsDir(ctx context.Context, version string) (string, error) {
	rel, err := LookupRelease(version)
	if err != nil {
		return "", err
	}
	goBin := s.GoBin
	if goBin == "" {
		goBin = "go"
	}
	path, err := exec.LookPath(goBin)
	if err != nil {
		return "", fmt.Errorf("failed to find go binary %q (needed to fetch istio charts through the module proxy; or use a charts directory): %w", goBin, err)
	}
	// Run outside any module so the caller's go.mod is neither read nor changed.
	tmp, err := os.MkdirTemp("", "meshroll-modload-")
	if err != nil {
		return "", fmt.Errorf("failed to create temp dir %q: %w", os.TempDir(), err)
	}
	defer os.RemoveAll(tmp)

	mod := istioModulePath + "@" + rel.ModuleVersion
	cmd := exec.CommandContext(ctx, path, "mod", "download", "-json", mod)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("failed to download module %q: %w", mod, ctxErr)
	}

	var dl moduleDownload
	if err := json.Unmarshal(stdout.Bytes(), &dl); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("failed to download module %q: %w: %s", mod, runErr, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("failed to parse go mod download output for %q: %w", mod, err)
	}
	if dl.Error != "" {
		if notServed(dl.Error) {
			return "", fmt.Errorf("failed to download module %q for istio %s: not served by the module proxy: %s", mod, rel.Version, firstLine(dl.Error))
		}
		return "", fmt.Errorf("failed to download module %q for istio %s: %s", mod, rel.Version, firstLine(dl.Error))
	}
	if runErr != nil {
		return "", fmt.Errorf("failed to download module %q: %w: %s", mod, runErr, strings.TrimSpace(stderr.String()))
	}
	if dl.Dir == "" {
		return "", fmt.Errorf("failed to download module %q: go reported no directory", mod)
	}
	charts := filepath.Join(dl.Dir, "manifests", "charts")
	if err := checkDir(charts); err != nil {
		return "", fmt.Errorf("failed to find charts of istio %s in module %q: %w", rel.Version, mod, err)
	}
	return charts, nil
}

// notServed recognises the proxy's "this version is not available" answers;
// they are permanent, unlike network errors, so they get their own message.
func notServed(msg string) bool {
	return strings.Contains(msg, "403 Forbidden") || strings.Contains(msg, "410 Gone") ||
		strings.Contains(msg, "not available")
}

// firstLine keeps go's multi-line errors to their informative first line
// plus the server's reason when present.
func firstLine(msg string) string {
	return strings.Join(strings.Fields(msg), " ")
}

// DirSource serves charts from a local directory that already holds base/,
// istio-control/ and gateway/ (for example an unpacked Istio release or a
// vendored copy), independent of the requested version.
type DirSource struct {
	// Dir is the charts directory.
	Dir string
}

// ChartsDir returns Dir after checking it exists.
func (s DirSource) ChartsDir(_ context.Context, _ string) (string, error) {
	if s.Dir == "" {
		return "", errors.New("failed to use charts directory: no directory given")
	}
	if err := checkDir(s.Dir); err != nil {
		return "", fmt.Errorf("failed to use charts directory %q: %w", s.Dir, err)
	}
	return s.Dir, nil
}

// checkDir reports a missing or non-directory path.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%q is not a directory", dir)
	}
	return nil
}
