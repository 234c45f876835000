package sandbox

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// EnvBinDir names the environment variable that points EnsureBinaries at a directory of prebuilt
// binaries, so CI and developers can skip the source build.
const EnvBinDir = "MESHROLL_SANDBOX_BIN"

// toolVersion is the Kubernetes version stamped into the built binaries; without it the
// apiserver reports v0.0.0 and version-sensitive clients (Helm, Istio charts) misbehave.
const toolVersion = "v1.33.13"

// Component names, which are also the binary names and the log file names.
const (
	nameEtcd      = "etcd"
	nameAPIServer = "kube-apiserver"
	nameKCM       = "kube-controller-manager"
	nameScheduler = "kube-scheduler"
	nameKwok      = "kwok"
	nameRunner    = RunnerProcessName
	// legacyNameInjector is what sandboxes before real istiod called their
	// extra process (the stand-in injector): Down still stops one.
	legacyNameInjector = "injector"
)

// binaryNames lists the binaries a sandbox needs, in start order.
func binaryNames() []string {
	return []string{nameEtcd, nameAPIServer, nameKCM, nameScheduler, nameKwok}
}

// toolSource is the tool module, stored with ".txt" suffixes (see the package documentation).
//
//go:embed toolsrc
var toolSource embed.FS

// toolFile is one file of the tool module, named as the go command expects it.
type toolFile struct {
	name string
	data []byte
}

// toolFiles returns the embedded tool module with the ".txt" suffixes removed, sorted by name so
// the content hash is stable.
func toolFiles(src fs.FS) ([]toolFile, error) {
	var files []toolFile
	err := fs.WalkDir(src, "toolsrc", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(p, "toolsrc/"), ".txt")
		files = append(files, toolFile{name: name, data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read embedded tool module %q: %w", "toolsrc", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files, nil
}

// buildLDFlags stamps the Kubernetes version into both the server and the client-go version
// packages, as the upstream release build does.
func buildLDFlags() string {
	major, minor := "1", "33"
	parts := strings.Split(strings.TrimPrefix(toolVersion, "v"), ".")
	if len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	var b strings.Builder
	b.WriteString("-s -w")
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean",
			pkg, toolVersion, pkg, major, pkg, minor, pkg)
	}
	return b.String()
}

// toolHash identifies one build: the sources, the link flags and the target platform. It keys
// the cache directories so that an edited tool module never reuses stale binaries.
func toolHash(files []toolFile) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s\n%s\n", runtime.GOOS, runtime.GOARCH, buildLDFlags())
	for _, f := range files {
		fmt.Fprintf(h, "%s %d\n", f.name, len(f.data))
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cacheRoot is where sources and binaries are kept between runs.
func cacheRoot() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to locate user cache directory %q: %w", "", err)
	}
	return filepath.Join(dir, "meshroll", "sandbox"), nil
}

// EnsureBinaries returns a directory holding etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok. It honours MESHROLL_SANDBOX_BIN; otherwise it builds the embedded tool
// module once per content hash under the user cache directory (about ten minutes cold on two
// cores) and returns at once on later calls. Concurrent callers share one build.
func EnsureBinaries(ctx context.Context, out io.Writer) (string, error) {
	if out == nil {
		out = io.Discard
	}
	if dir := os.Getenv(EnvBinDir); dir != "" {
		if err := checkBinaries(dir); err != nil {
			return "", fmt.Errorf("failed to use %s %q: %w", EnvBinDir, dir, err)
		}
		return dir, nil
	}
	files, err := toolFiles(toolSource)
	if err != nil {
		return "", err
	}
	root, err := cacheRoot()
	if err != nil {
		return "", err
	}
	hash := toolHash(files)
	binDir := filepath.Join(root, "bin-"+hash)
	if checkBinaries(binDir) == nil {
		return binDir, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("failed to create cache directory %q: %w", root, err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, "build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if checkBinaries(binDir) == nil { // another process built it while we waited
		return binDir, nil
	}
	if err := buildBinaries(ctx, out, files, filepath.Join(root, "src-"+hash), binDir); err != nil {
		return "", err
	}
	return binDir, nil
}

// checkBinaries reports whether dir holds every sandbox binary as an executable file.
func checkBinaries(dir string) error {
	var missing []string
	for _, name := range binaryNames() {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing executables %s", strings.Join(missing, ", "))
	}
	return nil
}

// writeToolSource expands the tool module into dir, replacing whatever an interrupted run left.
func writeToolSource(dir string, files []toolFile) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("failed to clean build directory %q: %w", dir, err)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("failed to create directory %q: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fmt.Errorf("failed to write tool source %q: %w", p, err)
		}
	}
	return nil
}

// buildBinaries compiles the tool module into a temporary directory and renames it to binDir
// only when every binary linked, so a killed build is never mistaken for a cached one.
func buildBinaries(ctx context.Context, out io.Writer, files []toolFile, srcDir, binDir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("failed to find %q on PATH (the sandbox builds its Kubernetes binaries from source; install Go or set %s): %w",
			"go", EnvBinDir, err)
	}
	if err := writeToolSource(srcDir, files); err != nil {
		return err
	}
	tmpDir := binDir + ".tmp"
	if err := os.RemoveAll(tmpDir); err != nil {
		return fmt.Errorf("failed to clean build output %q: %w", tmpDir, err)
	}
	fmt.Fprintln(out, "building sandbox binaries (first time, ~10 min)…")
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags", buildLDFlags(),
		"-o", tmpDir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	if err := runWithProgress(cmd, out, "sandbox binaries", start); err != nil {
		return fmt.Errorf("failed to build sandbox binaries in %q: %w", srcDir, err)
	}
	if err := checkBinaries(tmpDir); err != nil {
		return fmt.Errorf("failed to build sandbox binaries in %q: %w", srcDir, err)
	}
	if err := os.Rename(tmpDir, binDir); err != nil {
		return fmt.Errorf("failed to install sandbox binaries %q: %w", binDir, err)
	}
	fmt.Fprintf(out, "built sandbox binaries in %s into %s\n", time.Since(start).Round(time.Second), binDir)
	return nil
}

// tail returns the last n lines of b, for error messages that must stay readable.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logTail returns the last lines of a component's log, or a note that it cannot be read.
func logTail(file string, n int) string {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Sprintf("(no log %s: %v)", file, err)
	}
	defer f.Close()
	const max = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		if _, err := f.Seek(fi.Size()-max, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot read log %s: %v)", file, err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(cannot read log %s: %v)", file, err)
	}
	return fmt.Sprintf("last lines of %s:\n%s", path.Base(filepath.ToSlash(file)), tail(b, n))
}
