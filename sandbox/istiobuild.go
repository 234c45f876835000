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

// istioMain is one main package of the istio.io/istio module that the
// sandbox builds from source (no registry serves Istio's binaries here, but
// the module proxy serves Istio's source, and a binary built from it is the
// real program, not a lookalike). istioctl and pilot-discovery share this one
// recipe: copy the release's module, build the package, stamp the version.
type istioMain struct {
	// name is the binary's name and the name of its cache directory.
	name string
	// pkg is the main package inside the module, e.g. ./pilot/cmd/pilot-discovery.
	pkg string
	// versionArgs make the built binary print its version offline; the last
	// word printed must be the release, which proves the link flags took.
	versionArgs []string
	// coldBuild is what a first build takes on two cores, for the progress line.
	coldBuild string
}

// moduleReplaces are the `go mod edit -replace` arguments a release's module
// needs to build here, where the module proxy refuses some of the
// dependency versions it pins (403 "not available"): the nearest tagged
// version the proxy serves stands in. They are part of the cache key.
func moduleReplaces(version string) []string {
	switch version {
	case "1.23.2":
		// pins istio.io/client-go v1.23.1-0.20240906150928-c84358ed0e43 (refused)
		return []string{"istio.io/client-go=istio.io/client-go@v1.23.2"}
	}
	return nil
}

// istioVersionPackage receives the build's version through -X, as Istio's
// release build does; without it the binaries report "unknown".
const istioVersionPackage = "istio.io/istio/pkg/version"

// istioLDFlags stamps rel into a binary the way Istio's release build does
// (version, tag, hub, clean tree), so `version` and anything that reads the
// build info (istiod reports it to proxies and in its metrics) say which
// release it is.
func istioLDFlags(rel istio.Release) string {
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
		b = append(b, "-X", istioVersionPackage+"."+kv[0]+"="+kv[1])
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

// hash keys one build: the module version, the link flags, the target
// platform and any replace, so a changed recipe never reuses a stale binary.
// A build without replaces hashes exactly as istioctl's builds always did,
// which keeps binaries cached before the recipe was shared valid.
func (m istioMain) hash(rel istio.Release) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n%s\n%s\n", runtime.GOOS, runtime.GOARCH, rel.ModuleVersion, istioLDFlags(rel))
	for _, r := range moduleReplaces(rel.Version) {
		fmt.Fprintf(h, "replace %s\n", r)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// cacheRoot is where the binary's builds are kept between runs, beside the
// sandbox's own binaries: ~/.cache/meshroll/<name>/<release>-<hash>/<name>.
func (m istioMain) cacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to locate user cache directory %q: %w", "", err)
	}
	return filepath.Join(dir, "meshroll", m.name), nil
}

// ensure returns the path of the binary built from the istio.io/istio module
// of the given release, building it on first use and returning at once
// afterwards. Concurrent callers, in this process or in other test binaries,
// share one build through a lock file per binary and release.
func (m istioMain) ensure(ctx context.Context, version string, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	rel, err := istio.LookupRelease(version)
	if err != nil {
		return "", err
	}
	root, err := m.cacheRoot()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(root, rel.Version+"-"+m.hash(rel))
	bin := filepath.Join(binDir, m.name)
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
	if err := m.build(ctx, out, rel, filepath.Join(root, "src-"+rel.Version), binDir); err != nil {
		return "", err
	}
	return bin, nil
}

// build copies the release's module out of the read-only module cache,
// builds the binary in it and moves it into binDir only once it linked and
// reports the right version, so a killed build is never mistaken for a cached
// one. The copy is removed afterwards: the build cache keeps rebuilds fast,
// the 50 MB of source are not needed again.
func (m istioMain) build(ctx context.Context, out io.Writer, rel istio.Release, srcDir, binDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("failed to find %q on PATH (%s is built from the istio.io/istio module): %w", "go", m.name, err)
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
	// Some of Istio's dependencies are missing from the checksum database;
	// the module's own go.sum pins them. CGO off, as Istio releases it.
	env := append(os.Environ(), "GONOSUMDB=*", "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off", "CGO_ENABLED=0")
	for _, r := range moduleReplaces(rel.Version) {
		edit := exec.CommandContext(ctx, goBin, "mod", "edit", "-replace", r)
		edit.Dir, edit.Env = srcDir, env
		if b, err := edit.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to add replace %q to module %q: %w: %s", r, srcDir, err, strings.TrimSpace(string(b)))
		}
	}
	tmpDir := binDir + ".tmp"
	if err := os.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("failed to clean build output %q: %w", tmpDir, err)
	}
	tmpBin := filepath.Join(tmpDir, m.name)
	fmt.Fprintf(out, "building %s %s from istio.io/istio@%s (first time, %s)…\n", m.name, rel.Version, rel.ModuleVersion, m.coldBuild)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", istioLDFlags(rel), "-o", tmpBin, m.pkg)
	cmd.Dir, cmd.Env = srcDir, env
	if err := runWithProgress(cmd, out, m.name+" "+rel.Version, start); err != nil {
		return fmt.Errorf("failed to build %s %s in %q: %w", m.name, rel.Version, srcDir, err)
	}
	if err := m.checkVersion(ctx, tmpBin, rel.Version); err != nil {
		return err
	}
	if err := os.RemoveAll(binDir); err != nil {
		return fmt.Errorf("failed to clean %s directory %q: %w", m.name, binDir, err)
	}
	if err := os.Rename(tmpDir, binDir); err != nil {
		return fmt.Errorf("failed to install %s %q: %w", m.name, binDir, err)
	}
	fmt.Fprintf(out, "built %s %s in %s into %s\n", m.name, rel.Version, time.Since(start).Round(time.Second), binDir)
	return nil
}

// checkVersion runs the fresh binary offline and checks it reports the
// release it was built for, which proves the link flags took.
func (m istioMain) checkVersion(ctx context.Context, bin, version string) error {
	out, err := exec.CommandContext(ctx, bin, m.versionArgs...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to run %q: %w: %s", bin+" "+strings.Join(m.versionArgs, " "), err, strings.TrimSpace(string(out)))
	}
	// "client version: 1.24.2" (istioctl) or "1.24.2" (pilot-discovery);
	// releases differ in the prefix.
	fields := strings.Fields(string(out))
	if len(fields) == 0 || fields[len(fields)-1] != version {
		return fmt.Errorf("failed to stamp %s version %q: the binary reports %q", m.name, version, strings.TrimSpace(string(out)))
	}
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

// isExecutable reports whether path is an executable regular file.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
