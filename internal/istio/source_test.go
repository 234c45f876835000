package istio

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo writes a stand-in go binary that prints out and exits with code.
func fakeGo(t *testing.T, out string, code int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\ncat <<'JSON'\n" + out + "\nJSON\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestModuleSourceCached(t *testing.T) {
	dir, err := ModuleSource{}.ChartsDir(context.Background(), "1.23.2")
	if err != nil {
		t.Fatalf("ChartsDir() error = %v", err)
	}
	for _, sub := range []string{"base", "istio-control/istio-discovery", "gateway"} {
		if err := checkDir(filepath.Join(dir, sub)); err != nil {
			t.Errorf("charts dir lacks %s: %v", sub, err)
		}
	}
}

func TestModuleSourceErrors(t *testing.T) {
	chartsParent := t.TempDir()
	if err := os.MkdirAll(filepath.Join(chartsParent, "manifests", "charts"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, goBin, version, wantErr string
	}{
		{name: "no go binary", goBin: filepath.Join(t.TempDir(), "missing-go"), version: "1.23.2", wantErr: "failed to find go binary"},
		{name: "unknown version", goBin: "go", version: "1.0.0", wantErr: "unknown version"},
		{name: "proxy refuses 403", version: "1.23.2", wantErr: "not served by the module proxy",
			goBin: fakeGo(t, `{"Path":"istio.io/istio","Error":"reading https://proxy.golang.org/...: 403 Forbidden\n\tserver response: This module version is not available."}`, 1)},
		{name: "proxy refuses 410", version: "1.24.2", wantErr: "not served by the module proxy",
			goBin: fakeGo(t, `{"Path":"istio.io/istio","Error":"reading https://proxy.golang.org/...: 410 Gone"}`, 1)},
		{name: "other download error", version: "1.24.2", wantErr: "dial tcp: connection refused",
			goBin: fakeGo(t, `{"Path":"istio.io/istio","Error":"dial tcp: connection refused"}`, 1)},
		{name: "garbage output", version: "1.24.2", wantErr: "failed to download module",
			goBin: fakeGo(t, `go: something broke`, 1)},
		{name: "module without charts", version: "1.24.2", wantErr: "failed to find charts of istio 1.24.2",
			goBin: fakeGo(t, `{"Path":"istio.io/istio","Dir":"`+t.TempDir()+`"}`, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ModuleSource{GoBin: tt.goBin}.ChartsDir(context.Background(), tt.version)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ChartsDir() error = %v, want containing %q", err, tt.wantErr)
			}
		})
	}

	got, err := ModuleSource{GoBin: fakeGo(t, `{"Path":"istio.io/istio","Dir":"`+chartsParent+`"}`, 0)}.ChartsDir(context.Background(), "1.24.2")
	if err != nil || got != filepath.Join(chartsParent, "manifests", "charts") {
		t.Errorf("ChartsDir(fake ok) = %q, %v", got, err)
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, wantErr string
	}{
		{name: "ok", dir: dir},
		{name: "empty", dir: "", wantErr: "no directory given"},
		{name: "missing", dir: filepath.Join(dir, "nope"), wantErr: "no such file"},
		{name: "file", dir: file, wantErr: "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DirSource{Dir: tt.dir}.ChartsDir(context.Background(), "1.23.2")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ChartsDir() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.dir {
				t.Fatalf("ChartsDir() = %q, %v", got, err)
			}
		})
	}
}
