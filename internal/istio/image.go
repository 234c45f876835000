package istio

import (
	"encoding/json"
	"fmt"
	"strings"
)

// defaultProxyImageName is the sidecar image name Istio's charts use when the
// injector values do not override global.proxy.image.
const defaultProxyImageName = "proxyv2"

// Image-type suffixes Istio appends to a tag ("1.23.2-distroless"); they say
// how the image is built, not which release it is, so ImageVersion drops them.
const (
	variantDistroless = "-distroless"
	variantDebug      = "-debug"
)

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

// ProxyImage computes the sidecar image a revision's injector would inject
// now, from data["values"] of its istio-sidecar-injector-<rev> ConfigMap. A
// pod whose istio-proxy image differs from this is stale, which is why the
// computation mirrors Istio's: a global.proxy.image containing "/" is already
// a full reference; otherwise it is <hub>/<image>:<tag>[-<variant>].
func ProxyImage(injectorValuesJSON string) (string, error) {
	var v injectorValues
	if err := json.Unmarshal([]byte(injectorValuesJSON), &v); err != nil {
		return "", fmt.Errorf("failed to parse injector values %q: %w", abbreviate(injectorValuesJSON), err)
	}
	image := v.Global.Proxy.Image
	if strings.Contains(image, "/") {
		return image, nil
	}
	if image == "" {
		image = defaultProxyImageName
	}
	tag, err := jsonScalar(v.Global.Tag)
	if err != nil {
		return "", fmt.Errorf("failed to read injector value %q: %w", "global.tag", err)
	}
	if v.Global.Hub == "" || tag == "" {
		return "", fmt.Errorf("failed to compute proxy image from injector values %q: global.hub and global.tag must both be set", abbreviate(injectorValuesJSON))
	}
	if variant := v.Global.Variant; variant != "" && variant != "default" && !strings.HasSuffix(tag, "-"+variant) {
		tag += "-" + variant
	}
	return v.Global.Hub + "/" + image + ":" + tag, nil
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
	for _, suffix := range [...]string{variantDistroless, variantDebug} {
		tag = strings.TrimSuffix(tag, suffix)
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
