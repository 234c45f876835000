package istio

import (
	"strings"
	"testing"
)

func TestProxyImage(t *testing.T) {
	tests := []struct {
		name, values, want, wantErr string
	}{
		{name: "hub image tag", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{"image":"proxyv2"}}}`, want: "docker.io/istio/proxyv2:1.23.2"},
		{name: "default image name", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{}}}`, want: "docker.io/istio/proxyv2:1.23.2"},
		{name: "full reference", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{"image":"my.registry/proxy:custom"}}}`, want: "my.registry/proxy:custom"},
		{name: "distroless variant", values: `{"global":{"hub":"docker.io/istio","tag":"1.24.2","variant":"distroless","proxy":{"image":"proxyv2"}}}`, want: "docker.io/istio/proxyv2:1.24.2-distroless"},
		{name: "variant already in tag", values: `{"global":{"hub":"h","tag":"1.24.2-distroless","variant":"distroless"}}`, want: "h/proxyv2:1.24.2-distroless"},
		{name: "default variant", values: `{"global":{"hub":"h","tag":"1.24.2","variant":"default"}}`, want: "h/proxyv2:1.24.2"},
		{name: "numeric tag", values: `{"global":{"hub":"h","tag":1.25,"proxy":{"image":"proxyv2"}}}`, want: "h/proxyv2:1.25"},
		{name: "not json", values: `global: {}`, wantErr: "failed to parse injector values"},
		{name: "no hub", values: `{"global":{"tag":"1.23.2"}}`, wantErr: "global.hub and global.tag must both be set"},
		{name: "bad tag type", values: `{"global":{"hub":"h","tag":{"a":1}}}`, wantErr: `failed to read injector value "global.tag"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProxyImage(tt.values)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ProxyImage() error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ProxyImage() error = %v", err)
			}
			if got != tt.want {
				t.Errorf("ProxyImage() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestImageVersion(t *testing.T) {
	tests := map[string]string{
		"docker.io/istio/proxyv2:1.23.2":                         "1.23.2",
		"docker.io/istio/proxyv2:1.23.2-distroless":              "1.23.2",
		"docker.io/istio/proxyv2:1.23.2-debug":                   "1.23.2",
		"docker.io/istio/proxyv2:1.24.0-beta.1":                  "1.24.0-beta.1",
		"docker.io/istio/proxyv2:v1.29.1":                        "1.29.1",
		"docker.io/istio/proxyv2:1.23.2@sha256:0123456789abcdef": "1.23.2",
		"docker.io/istio/proxyv2@sha256:0123456789abcdef":        "",
		"localhost:5000/istio/proxyv2:1.25.1":                    "1.25.1",
		"localhost:5000/istio/proxyv2":                           "",
		"proxyv2":                                                "",
		"gcr.io/istio-testing/proxyv2:latest":                    "latest",
		"":                                                       "",
	}
	for in, want := range tests {
		if got := ImageVersion(in); got != want {
			t.Errorf("ImageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
