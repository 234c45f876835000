package injector

import (
	"encoding/json"
	"fmt"
	"strings"
)

// injectorValues is the part of an injector ConfigMap's "values" JSON that
// decides the proxy image.
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

// defaultProxyImageName is the image name Istio's charts use when
// global.proxy.image is unset.
const defaultProxyImageName = "proxyv2"

// proxyImage computes the image a revision's injector would give istio-proxy,
// from the "values" key of its istio-sidecar-injector ConfigMap: hub + "/" +
// image + ":" + tag (plus "-variant" for a non-default variant), or the image
// as is when it is already a full reference (it contains a "/"), as Istio's
// injection template does.
//
// It is meant to be replaced by istio.ProxyImage once that exists.
func proxyImage(valuesJSON string) (string, error) {
	var v injectorValues
	if err := json.Unmarshal([]byte(valuesJSON), &v); err != nil {
		return "", fmt.Errorf("failed to parse injector values %q: %w", abbreviate(valuesJSON), err)
	}
	g := v.Global
	image := g.Proxy.Image
	if image == "" {
		image = defaultProxyImageName
	}
	if strings.Contains(image, "/") {
		return image, nil
	}
	tag, err := tagString(g.Tag)
	if err != nil {
		return "", err
	}
	if g.Hub == "" {
		return "", fmt.Errorf("failed to compute proxy image %q: global.hub is empty", image)
	}
	if tag == "" {
		return "", fmt.Errorf("failed to compute proxy image %q: global.tag is empty", image)
	}
	if g.Variant != "" && g.Variant != "default" {
		tag += "-" + g.Variant
	}
	return strings.TrimSuffix(g.Hub, "/") + "/" + image + ":" + tag, nil
}

// tagString reads global.tag, which YAML-born values sometimes carry as a
// number (tag: 1.23 unquoted), so both forms are accepted.
func tagString(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("failed to read global.tag %q: %w", string(raw), err)
	}
	return n.String(), nil
}

// abbreviate keeps error messages readable when a whole values document is
// quoted in them.
func abbreviate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
