package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/meshroll/meshroll/internal/istio"
)

// IstioctlReleases are the Istio releases whose istioctl meshroll's parity
// tests put side by side with meshroll: the oldest minor that ships the
// `default` chart (1.24, whose validator istioctl renders from it) and the
// newest release whose istioctl builds from the module proxy here. The
// prebuild step of `make test` and the tests read this one list, so a test
// never starts a cold build the prebuild did not do.
func IstioctlReleases() []string { return []string{"1.24.2", "1.29.1"} }

// istioctlPackage is istioctl's main package inside the istio.io/istio module.
const istioctlPackage = "./istioctl/cmd/istioctl"

// istioctlVersionPackage receives the build's version through -X, as Istio's
// release build does; without it istioctl reports "unknown".
const istioctlVersionPackage = "istio.io/istio/pkg/version"

// istioctlLDFlags stamps rel into istioctl the way Istio's release build
// does (version, tag, hub, clean tree), so `istioctl version` and anything
// that reads the build info say which release it is.
func istioctlLDFlags(rel istio.Release) string {
	b := []string{"-s", "-w"}
	for _, kv := range [][2]string{
		{"buildVersion", rel.Version},
		{"buildGitRevision", moduleRevision(rel.ModuleVersion)},
		{"buildStatus", "Clean"},
		{"buildTag", rel.Version},
		{"buildHub", istio.DefaultHub},
		{"buildOS", runtime.GOOS},
		{"buildArch", runtime.GOARCH},
	} {
		b = append(b, "-X", istioctlVersionPackage+"."+kv[0]+"="+kv[1])
	}
	return strings.Join(b, " ")
}

// moduleRevision returns the commit prefix a pseudo-version ends with
// (v0.0.0-20241214032803-7754674f65d3 → 7754674f65d3).
func moduleRevision(pseudo string) string {
	if i := strings.LastIndex(pseudo, "-"); i >= 0 {
		return pseudo[i+1:]
	}
	return pseudo
}

// istioctlHash keys one istioctl build: the module version, the link flags
// and the target platform, so a changed recipe never reuses a stale binary.
func istioctlHash(rel istio.Release) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n%s\n%s\n", runtime.GOOS, runtime.GOARCH, rel.ModuleVersion, istioctlLDFlags(rel))
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// istioctlCacheRoot is where istioctl binaries are kept between runs, beside
// the sandbox's own binaries.
func istioctlCacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to locate user cache directory %q: %w", "", err)
	}
	return filepath.Join(dir, "meshroll", "istioctl"), nil
}

// EnsureIstioctl returns the path of an istioctl binary built from the
// istio.io/istio module of the given release, building it on first use
// (about four minutes cold on two cores) and returning at once afterwards.
// No registry serves istioctl here, but the module proxy serves Istio's
// source, and a binary built from it is the real tool, not a lookalike.
// Concurrent callers share one build.
func EnsureIstioctl(ctx context.Context, version string, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	rel, err := istio.LookupRelease(version)
	if err != nil {
		return "", err
	}
	root, err := istioctlCacheRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, rel.Version+"-"+istioctlHash(rel))
	bin := filepath.Join(binDir, "istioctl")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("failed to create cache directory %q: %w", root, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, "build-"+rel.Version+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}
	if err := buildIstioctl(ctx, out, rel, filepath.Join(root, "src-"+rel.Version), binDir); err != nil {
		return "", err
	}
	return bin, nil
}

// buildIstioctl copies the release's module out of the read-only module
// cache, builds istioctl in it and moves the binary into binDir only once it
// linked and reports the right version, so a killed build is never mistaken
// for a cached one. The copy is removed afterwards: the build cache keeps
// rebuilds fast, the 50 MB of source are not needed again.
func buildIstioctl(ctx context.Context, out io.Writer, rel istio.Release, srcDir, binDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("failed to find %q on PATH (istioctl is built from the istio.io/istio module): %w", "go", err)
	}
	// ModuleSource already knows how to fetch a release's module through
	// the proxy; its charts live two levels below the module root.
	charts, err := istio.ModuleSource{GoBin: goBin}.ChartsDir(ctx, rel.Version)
	if err != nil {
		return err
	}
	modDir := filepath.Dir(filepath.Dir(charts))
	if err := os.RemoveAll(srcDir); err != nil {
		return fmt.Errorf("failed to clean build directory %q: %w", srcDir, err)
	}
	defer os.RemoveAll(srcDir)
	// The module cache is read-only and the go command may rewrite go.mod
	// and go.sum under -mod=mod: build in a writable copy.
	if err := os.CopyFS(srcDir, os.DirFS(modDir)); err != nil {
		return fmt.Errorf("failed to copy module %q: %w", modDir, err)
	}
	tmpDir := binDir + ".tmp"
	if err := os.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("failed to clean build output %q: %w", tmpDir, err)
	}
	tmpBin := filepath.Join(tmpDir, "istioctl")
	fmt.Fprintf(out, "building istioctl %s from istio.io/istio@%s (first time, ~4 min)…\n", rel.Version, rel.ModuleVersion)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", istioctlLDFlags(rel), "-o", tmpBin, istioctlPackage)
	cmd.Dir = srcDir
	// Some of Istio's dependencies are missing from the checksum database;
	// the module's own go.sum pins them. CGO off, as Istio releases it.
	cmd.Env = append(os.Environ(), "GONOSUMDB=*", "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "CGO_ENABLED=0")
	if err := runWithProgress(cmd, out, "istioctl "+rel.Version, start); err != nil {
		return fmt.Errorf("failed to build istioctl %s in %q: %w", rel.Version, srcDir, err)
	}
	if err := checkIstioctlVersion(ctx, tmpBin, rel.Version); err != nil {
		return err
	}
	if err := os.RemoveAll(binDir); err != nil {
		return fmt.Errorf("failed to clean istioctl directory %q: %w", binDir, err)
	}
	if err := os.Rename(tmpDir, binDir); err != nil {
		return fmt.Errorf("failed to install istioctl %q: %w", binDir, err)
	}
	fmt.Fprintf(out, "built istioctl %s in %s into %s\n", rel.Version, time.Since(start).Round(time.Second), binDir)
	return nil
}

// runWithProgress runs cmd, printing a line every minute so a long cold
// build is visibly alive, and returns the output's tail on failure.
func runWithProgress(cmd *exec.Cmd, out io.Writer, what string, start time.Time) error {
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("%w\n%s", err, tail(output.Bytes(), 40))
			}
			return nil
		case <-tick.C:
			fmt.Fprintf(out, "  still building %s (%s)…\n", what, time.Since(start).Round(time.Second))
		}
	}
}

// checkIstioctlVersion runs the fresh binary offline and checks it reports
// the release it was built for, which proves the link flags took.
func checkIstioctlVersion(ctx context.Context, bin, version string) error {
	out, err := exec.CommandContext(ctx, bin, "version", "--remote=false", "--short").CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to run %q: %w: %s", bin+" version", err, strings.TrimSpace(string(out)))
	}
	// "client version: 1.24.2" offline; releases differ in the prefix.
	fields := strings.Fields(string(out))
	if len(fields) == 0 || fields[len(fields)-1] != version {
		return fmt.Errorf("failed to stamp istioctl version %q: the binary reports %q", version, strings.TrimSpace(string(out)))
	}
	return nil
}

// isExecutable reports whether path is an executable regular file.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
