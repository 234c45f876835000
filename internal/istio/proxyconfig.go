package istio

import (
	"sort"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// ProxyConfig is the part of a networking.istio.io ProxyConfig resource that
// changes which sidecar image the injector writes: its scope and image type.
type ProxyConfig struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Selector is spec.selector.matchLabels; empty applies to the whole
	// namespace (or, in the root namespace, the whole mesh).
	Selector map[string]string `json:"selector,omitempty"`
	// ImageType is spec.image.imageType; "" when the resource sets none.
	ImageType string `json:"imageType,omitempty"`
}

// ImageTypeChoice is a pod's effective image type and the evidence for it.
type ImageTypeChoice struct {
	// Type is the image type ("" when nothing but the revision's own mesh
	// config and values decide).
	Type string
	// Source names what set it, for messages.
	Source string
}

// PodImageType works out which image type Istio's injector would use for a
// pod, from everything except the revision's own mesh config (the caller
// knows the revision; the pod does not). Precedence, lowest first, as in
// pilot's EffectiveProxyConfig and the injector's ProxyImage:
//
//  1. ProxyConfig without selector in the root namespace (mesh-wide);
//  2. ProxyConfig without selector in the pod's namespace;
//  3. the pod's proxy.istio.io/config annotation;
//  4. ProxyConfig in the pod's namespace whose selector matches the pod;
//  5. the pod's sidecar.istio.io/proxyImageType annotation.
//
// Several resources at one level are applied in name order (Istio uses
// creation order; clusters rarely have two that set an image type).
func PodImageType(configs []ProxyConfig, rootNamespace, namespace string, podLabels, podAnnotations map[string]string) ImageTypeChoice {
	var c ImageTypeChoice
	set := func(t, source string) {
		if t != "" {
			c = ImageTypeChoice{Type: t, Source: source}
		}
	}
	sorted := make([]ProxyConfig, len(configs))
	copy(sorted, configs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, pc := range sorted {
		if pc.Namespace == rootNamespace && len(pc.Selector) == 0 {
			set(pc.ImageType, "ProxyConfig "+pc.Namespace+"/"+pc.Name)
		}
	}
	if namespace != rootNamespace {
		for _, pc := range sorted {
			if pc.Namespace == namespace && len(pc.Selector) == 0 {
				set(pc.ImageType, "ProxyConfig "+pc.Namespace+"/"+pc.Name)
			}
		}
	}
	if v, ok := podAnnotations[AnnotationProxyConfig]; ok {
		set(annotationImageType(v), "annotation "+AnnotationProxyConfig)
	}
	for _, pc := range sorted {
		if pc.Namespace == namespace && len(pc.Selector) > 0 && labels.SelectorFromSet(pc.Selector).Matches(labels.Set(podLabels)) {
			set(pc.ImageType, "ProxyConfig "+pc.Namespace+"/"+pc.Name)
		}
	}
	set(podAnnotations[AnnotationProxyImageType], "annotation "+AnnotationProxyImageType)
	return c
}

// MeshImageType reads defaultConfig.image.imageType from a mesh config
// (the "mesh" key of the istio[-<rev>] ConfigMap); "" when unset or unreadable.
func MeshImageType(meshYAML string) string {
	var m struct {
		DefaultConfig struct {
			Image struct {
				ImageType string `json:"imageType"`
			} `json:"image"`
		} `json:"defaultConfig"`
	}
	if yaml.Unmarshal([]byte(meshYAML), &m) != nil {
		return ""
	}
	return m.DefaultConfig.Image.ImageType
}

// annotationImageType reads image.imageType from an inline ProxyConfig; an
// unreadable annotation is ignored, as the injector ignores it.
func annotationImageType(v string) string {
	var pc struct {
		Image struct {
			ImageType string `json:"imageType"`
		} `json:"image"`
	}
	if yaml.Unmarshal([]byte(v), &pc) != nil {
		return ""
	}
	return pc.Image.ImageType
}
