package istio

import "testing"

func TestPodImageTypePrecedence(t *testing.T) {
	mesh := ProxyConfig{Namespace: "istio-system", Name: "mesh", ImageType: "debug"}
	ns := ProxyConfig{Namespace: "shop", Name: "ns", ImageType: "distroless"}
	wl := ProxyConfig{Namespace: "shop", Name: "wl", Selector: map[string]string{"app": "web"}, ImageType: "default"}
	other := ProxyConfig{Namespace: "other", Name: "ns", ImageType: "debug"}
	tests := []struct {
		name        string
		configs     []ProxyConfig
		labels, ann map[string]string
		want        string
	}{
		{name: "nothing set", want: ""},
		{name: "mesh-wide", configs: []ProxyConfig{mesh}, want: "debug"},
		{name: "namespace beats mesh-wide", configs: []ProxyConfig{mesh, ns}, want: "distroless"},
		{name: "other namespaces do not apply", configs: []ProxyConfig{other}, want: ""},
		{name: "annotation beats namespace", configs: []ProxyConfig{ns}, ann: map[string]string{AnnotationProxyConfig: `{"image":{"imageType":"debug"}}`}, want: "debug"},
		{name: "workload selector beats annotation", configs: []ProxyConfig{ns, wl}, labels: map[string]string{"app": "web"},
			ann: map[string]string{AnnotationProxyConfig: "image: {imageType: debug}"}, want: "default"},
		{name: "selector not matching", configs: []ProxyConfig{ns, wl}, labels: map[string]string{"app": "db"}, want: "distroless"},
		{name: "proxyImageType annotation beats all", configs: []ProxyConfig{ns, wl}, labels: map[string]string{"app": "web"},
			ann: map[string]string{AnnotationProxyImageType: "distroless"}, want: "distroless"},
		{name: "unreadable inline config is ignored", configs: []ProxyConfig{ns}, ann: map[string]string{AnnotationProxyConfig: "{{"}, want: "distroless"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PodImageType(tt.configs, "istio-system", "shop", tt.labels, tt.ann)
			if got.Type != tt.want {
				t.Errorf("PodImageType() = %+v, want type %q", got, tt.want)
			}
			if got.Type != "" && got.Source == "" {
				t.Errorf("PodImageType() = %+v has no source", got)
			}
		})
	}
}

func TestImageSpecImage(t *testing.T) {
	s := ImageSpec{Hub: "docker.io/istio", Name: "proxyv2", Tag: "1.24.2", Variant: "distroless"}
	for imageType, want := range map[string]string{
		"":           "docker.io/istio/proxyv2:1.24.2-distroless",
		"default":    "docker.io/istio/proxyv2:1.24.2",
		"debug":      "docker.io/istio/proxyv2:1.24.2-debug",
		"distroless": "docker.io/istio/proxyv2:1.24.2-distroless",
	} {
		if got := s.Image(imageType); got != want {
			t.Errorf("Image(%q) = %q, want %q", imageType, got, want)
		}
	}
	full := ImageSpec{Name: "my.registry/proxy:1"}
	if got := full.Image("distroless"); got != "my.registry/proxy:1" {
		t.Errorf("full reference Image() = %q, want it unchanged", got)
	}
	if got := MeshImageType("defaultConfig:\n  image:\n    imageType: distroless\n"); got != "distroless" {
		t.Errorf("MeshImageType() = %q", got)
	}
}
