package istio

import (
	"encoding/json"
	"fmt"
	"strings"
)

// defaultProxyImageName is the sidecar image name Istio's charts use when the
// injector values do not override global.proxy.image.
const defaultProxyImageName = "proxyv2"

// AutoImage is the image a Deployment's istio-proxy container names when it
// relies on injection to fill in the real one (gateway Deployments do). A pod
// that still says "auto" was never injected and cannot start.
const AutoImage = "auto"

// Image types Istio publishes; the injector appends them to the tag
// ("1.23.2-distroless"). ImageTypeDefault selects the plain tag.
const (
	ImageTypeDefault    = "default"
	ImageTypeDistroless = "distroless"
	ImageTypeDebug      = "debug"
)

// knownImageTypes are the suffixes the injector strips from a tag before it
// appends the type it wants, exactly like pkg/kube/inject's
// updateImageTypeIfPresent.
var knownImageTypes = [...]string{ImageTypeDistroless, ImageTypeDebug}

// injectorValues is the part of the injector ConfigMap's "values" JSON that
// decides the sidecar image; Istio's injector computes the image from exactly
// these fields.
type injectorValues struct {
	Global struct {
		Hub     string          `json:"hub"`
		Tag     json.RawMessage `json:"tag"`
		Variant string          `json:"variant"`
		Proxy   struct {
			Image string `json:"image"`
		} `json:"proxy"`
	} `json:"global"`
}

// ImageSpec is what a revision's injector builds a sidecar image from. Pods
// can change the result (an image-type override, a pinned image), so the
// spec, not one image string, is what stale-sidecar detection needs.
type ImageSpec struct {
	Hub string `json:"hub,omitempty"`
	// Name is global.proxy.image: an image name, or a full reference when it
	// contains "/" (then hub, tag and image type do not apply).
	Name    string `json:"name,omitempty"`
	Tag     string `json:"tag,omitempty"`
	Variant string `json:"variant,omitempty"`
}

// ParseImageSpec reads the image fields of an injector ConfigMap's "values".
func ParseImageSpec(injectorValuesJSON string) (ImageSpec, error) {
	var v injectorValues
	if err := json.Unmarshal([]byte(injectorValuesJSON), &v); err != nil {
		return ImageSpec{}, fmt.Errorf("failed to parse injector values %q: %w", abbreviate(injectorValuesJSON), err)
	}
	tag, err := jsonScalar(v.Global.Tag)
	if err != nil {
		return ImageSpec{}, fmt.Errorf("failed to read injector value %q: %w", "global.tag", err)
	}
	spec := ImageSpec{Hub: v.Global.Hub, Name: v.Global.Proxy.Image, Tag: tag, Variant: v.Global.Variant}
	if spec.Name == "" {
		spec.Name = defaultProxyImageName
	}
	if !strings.Contains(spec.Name, "/") && (spec.Hub == "" || spec.Tag == "") {
		return ImageSpec{}, fmt.Errorf("failed to compute proxy image from injector values %q: global.hub and global.tag must both be set", abbreviate(injectorValuesJSON))
	}
	return spec, nil
}

// Image is the sidecar image the injector writes for a pod whose effective
// image type is imageType ("" when no ProxyConfig, mesh default or annotation
// sets one: then global.variant decides). It mirrors the injection
// template: a full reference in global.proxy.image is used as is; otherwise
// <hub>/<name>:<tag> with the tag's image-type suffix replaced.
func (s ImageSpec) Image(imageType string) string {
	if strings.Contains(s.Name, "/") {
		return s.Name
	}
	if imageType == "" {
		imageType = s.Variant
	}
	return s.Hub + "/" + s.Name + ":" + withImageType(s.Tag, imageType)
}

// withImageType replaces a tag's image-type suffix by imageType.
func withImageType(tag, imageType string) string {
	if imageType == "" {
		return tag
	}
	for _, t := range knownImageTypes {
		if strings.HasSuffix(tag, "-"+t) {
			tag = strings.TrimSuffix(tag, "-"+t)
			break
		}
	}
	if imageType == ImageTypeDefault {
		return tag
	}
	return tag + "-" + imageType
}

// ProxyImage computes the sidecar image a revision's injector would inject
// now into a pod that overrides nothing, from data["values"] of its
// istio-sidecar-injector-<rev> ConfigMap.
func ProxyImage(injectorValuesJSON string) (string, error) {
	spec, err := ParseImageSpec(injectorValuesJSON)
	if err != nil {
		return "", err
	}
	return spec.Image(""), nil
}

// PinnedImage is the image a pod's sidecar.istio.io/proxyImage annotation
// pins, or "": the injection template honours the annotation only when it is
// a full reference (contains "/").
func PinnedImage(annotations map[string]string) string {
	if v := annotations[AnnotationProxyImage]; strings.Contains(v, "/") {
		return v
	}
	return ""
}

// ImageVersion extracts the Istio release from an image reference
// ("docker.io/istio/proxyv2:1.23.2-distroless@sha256:…" → "1.23.2"), so
// proxies built as distroless or debug variants still compare equal to the
// release. It returns "" when the reference has no tag (digest only); a tag
// that is not a release (e.g. "latest") is returned as is.
func ImageVersion(image string) string {
	ref, _, _ := strings.Cut(image, "@")
	slash := strings.LastIndex(ref, "/")
	colon := strings.LastIndex(ref, ":")
	if colon < 0 || colon < slash {
		return ""
	}
	tag := ref[colon+1:]
	for _, t := range knownImageTypes {
		tag = strings.TrimSuffix(tag, "-"+t)
	}
	if len(tag) > 1 && tag[0] == 'v' && tag[1] >= '0' && tag[1] <= '9' {
		tag = tag[1:]
	}
	return tag
}

// jsonScalar renders a JSON string or number as text: global.tag is written
// by humans, and an unquoted 1.24 in YAML arrives here as a number.
func jsonScalar(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("failed to read scalar %q: %w", string(raw), err)
	}
	return n.String(), nil
}

// abbreviate keeps error messages readable when the input is a large JSON blob.
func abbreviate(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "…"
}
