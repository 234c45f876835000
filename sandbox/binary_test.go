package sandbox

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

func TestToolFilesEmbedded(t *testing.T) {
	files, err := toolFiles(toolSource)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		names[f.name] = true
		if strings.HasSuffix(f.name, ".txt") {
			t.Errorf("%s kept its .txt suffix", f.name)
		}
	}
	want := []string{"go.mod", "go.sum"}
	for _, b := range binaryNames() {
		want = append(want, "cmd/"+b+"/main.go")
	}
	for _, w := range want {
		if !names[w] {
			t.Errorf("embedded tool module lacks %s", w)
		}
	}
}

func TestToolHash(t *testing.T) {
	fsys := func(main string) fstest.MapFS {
		return fstest.MapFS{
			"toolsrc/go.mod.txt":           {Data: []byte("module x\n")},
			"toolsrc/cmd/etcd/main.go.txt": {Data: []byte(main)},
			"toolsrc/cmd/kwok/main.go.txt": {Data: []byte("package main\n")},
		}
	}
	hash := func(m fstest.MapFS) string {
		files, err := toolFiles(m)
		if err != nil {
			t.Fatal(err)
		}
		return toolHash(files)
	}
	tests := []struct {
		name  string
		a, b  fstest.MapFS
		equal bool
	}{
		{"same content", fsys("package main\n"), fsys("package main\n"), true},
		{"edited main", fsys("package main\n"), fsys("package main // edited\n"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hash(tt.a) == hash(tt.b); got != tt.equal {
				t.Errorf("hashes equal = %v, want %v", got, tt.equal)
			}
		})
	}
}

func TestWriteToolSource(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "src")
	files := []toolFile{{name: "go.mod", data: []byte("module x\n")}, {name: "cmd/etcd/main.go", data: []byte("package main\n")}}
	for range 2 { // the second write replaces the first
		if err := writeToolSource(dir, files); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cmd", "etcd", "main.go"))
	if err != nil || string(b) != "package main\n" {
		t.Errorf("main.go = %q, %v", b, err)
	}
}

func TestEnsureBinariesHonoursEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvBinDir, dir)
	if _, err := EnsureBinaries(t.Context(), nil); err == nil {
		t.Fatal("empty binary directory accepted")
	}
	for _, name := range binaryNames() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := EnsureBinaries(t.Context(), nil)
	if err != nil || got != dir {
		t.Errorf("EnsureBinaries = %q, %v; want %q", got, err, dir)
	}
}

func TestBuildLDFlagsStampsVersion(t *testing.T) {
	flags := buildLDFlags()
	for _, want := range []string{
		"k8s.io/component-base/version.gitVersion=" + toolVersion,
		"k8s.io/client-go/pkg/version.gitMinor=33",
	} {
		if !strings.Contains(flags, want) {
			t.Errorf("ldflags %q lack %q", flags, want)
		}
	}
}

func TestEnsureBinariesWithoutGo(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("relies on XDG_CACHE_HOME choosing the cache directory")
	}
	t.Setenv(EnvBinDir, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("PATH", t.TempDir())
	_, err := EnsureBinaries(t.Context(), nil)
	if err == nil || !strings.Contains(err.Error(), `"go"`) || !strings.Contains(err.Error(), EnvBinDir) {
		t.Errorf("EnsureBinaries without go = %v, want an error naming go and %s", err, EnvBinDir)
	}
}
