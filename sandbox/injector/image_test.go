package injector

import "testing"

func TestProxyImage(t *testing.T) {
	tests := []struct {
		name    string
		values  string
		want    string
		wantErr bool
	}{
		{name: "hub image tag", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{"image":"proxyv2"}}}`, want: "docker.io/istio/proxyv2:1.23.2"},
		{name: "default image name", values: `{"global":{"hub":"docker.io/istio","tag":"1.24.0"}}`, want: "docker.io/istio/proxyv2:1.24.0"},
		{name: "hub with trailing slash", values: `{"global":{"hub":"gcr.io/istio-release/","tag":"1.22.1"}}`, want: "gcr.io/istio-release/proxyv2:1.22.1"},
		{name: "full reference wins", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","proxy":{"image":"my.registry/mesh/proxy:custom"}}}`, want: "my.registry/mesh/proxy:custom"},
		{name: "full reference needs no tag", values: `{"global":{"proxy":{"image":"my.registry/proxy@sha256:abc"}}}`, want: "my.registry/proxy@sha256:abc"},
		{name: "numeric tag", values: `{"global":{"hub":"docker.io/istio","tag":1.23}}`, want: "docker.io/istio/proxyv2:1.23"},
		{name: "distroless variant", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","variant":"distroless"}}`, want: "docker.io/istio/proxyv2:1.23.2-distroless"},
		{name: "default variant", values: `{"global":{"hub":"docker.io/istio","tag":"1.23.2","variant":"default"}}`, want: "docker.io/istio/proxyv2:1.23.2"},
		{name: "extra keys ignored", values: `{"global":{"hub":"h","tag":"t","proxy":{"image":"p","resources":{}}},"sidecarInjectorWebhook":{}}`, want: "h/p:t"},
		{name: "no tag", values: `{"global":{"hub":"docker.io/istio"}}`, wantErr: true},
		{name: "no hub", values: `{"global":{"tag":"1.23.2"}}`, wantErr: true},
		{name: "not json", values: `global: {hub: x}`, wantErr: true},
		{name: "bad tag", values: `{"global":{"hub":"h","tag":{"x":1}}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proxyImage(tt.values)
			if (err != nil) != tt.wantErr {
				t.Fatalf("proxyImage() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("proxyImage() = %q, want %q", got, tt.want)
			}
		})
	}
}
