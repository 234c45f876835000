package istio

import (
	"encoding/json"
	"fmt"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
)

// userValues merges Values and Set into one fresh tree. The JSON round trip
// deep-copies the caller's map (Istio's templates mutate .Values while
// rendering) and rejects values no YAML file could have produced.
func userValues(values map[string]any, set []string) (map[string]any, error) {
	out := map[string]any{}
	if len(values) > 0 {
		raw, err := json.Marshal(values)
		if err != nil {
			return nil, fmt.Errorf("failed to encode values %v: %w", abbreviate(fmt.Sprint(values)), err)
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("failed to decode values %q: %w", abbreviate(string(raw)), err)
		}
	}
	for _, kv := range set {
		if err := strvals.ParseInto(kv, out); err != nil {
			return nil, fmt.Errorf("failed to parse --set %q: %w", kv, err)
		}
	}
	// meshroll merges its own settings under these keys; a scalar there
	// would silently drop them and fail later inside a template.
	for _, key := range []string{"global"} {
		if v, ok := out[key]; ok && v != nil {
			if _, isMap := v.(map[string]any); !isMap {
				return nil, fmt.Errorf("failed to use values: %q must be a map, got %T", key, v)
			}
		}
	}
	return out, nil
}

// meshrollValues are the values meshroll always sets for a component: chart
// defaults point at test images and an unrevisioned install, which is never
// what an upgrade wants.
func meshrollValues(comp Component, o RenderOptions) map[string]any {
	global := map[string]any{
		"hub":            DefaultHub,
		"tag":            o.Version,
		"istioNamespace": o.Namespace,
	}
	vals := map[string]any{
		"revision": o.chartRevision(),
		"global":   global,
	}
	if comp == Base {
		// The istiod-default-validator follows the "default" revision tag,
		// which moves independently of installs; rendering it with base would
		// make every canary install claim it. Users may still set it.
		vals["defaultRevision"] = ""
	}
	return vals
}

// chartValues layers user values over meshroll's for one chart, dropping
// top-level keys the chart's schema does not declare (they target other
// charts of the same render).
func chartValues(ch *chart.Chart, comp Component, o RenderOptions, user map[string]any) (map[string]any, error) {
	known, err := schemaKeys(ch.Schema)
	if err != nil {
		return nil, fmt.Errorf("failed to read values schema of chart %q: %w", comp, err)
	}
	vals := make(map[string]any, len(user))
	for k, v := range user {
		if known == nil || known[k] {
			vals[k] = copyValue(v)
		}
	}
	return chartutil.CoalesceTables(vals, meshrollValues(comp, o)), nil
}

// copyValue deep-copies maps and slices so that each chart's render can
// mutate its values without touching another's.
func copyValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = copyValue(e)
		}
		return m
	case []any:
		s := make([]any, len(t))
		for i, e := range t {
			s[i] = copyValue(e)
		}
		return s
	default:
		return v
	}
}

// jsonSchema is the part of a values.schema.json that names top-level keys.
// Istio's gateway chart declares them under $defs.values, referenced from
// the root.
type jsonSchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Ref        string                     `json:"$ref"`
	Defs       map[string]jsonSchema      `json:"$defs"`
}

// schemaKeys returns the top-level keys a schema accepts, or nil when the
// chart has no schema (every key is accepted).
func schemaKeys(schema []byte) (map[string]bool, error) {
	if len(schema) == 0 {
		return nil, nil
	}
	var s jsonSchema
	if err := json.Unmarshal(schema, &s); err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range s.Properties {
		keys[k] = true
	}
	const defsPrefix = "#/$defs/"
	if len(s.Ref) > len(defsPrefix) && s.Ref[:len(defsPrefix)] == defsPrefix {
		for k := range s.Defs[s.Ref[len(defsPrefix):]].Properties {
			keys[k] = true
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}

// refSiblingSafe reports the root keywords kept next to a root "$ref":
// identifiers and definitions, which carry no constraint of their own.
func refSiblingSafe(keyword string) bool {
	switch keyword {
	case "$ref", "$schema", "$defs", "definitions", "$id":
		return true
	}
	return false
}

// fixRootRef rewrites a schema whose root combines "$ref" with other
// keywords. Istio ≤1.23's gateway chart puts "additionalProperties": false
// next to a root "$ref", written for draft-04 where "$ref" overrides its
// siblings; the 2020-12 validator Helm now uses applies both and rejects
// every value. Dropping the siblings restores the meaning the authors wrote.
func fixRootRef(schema []byte) ([]byte, error) {
	if len(schema) == 0 {
		return schema, nil
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, err
	}
	if _, ok := root["$ref"]; !ok {
		return schema, nil
	}
	changed := false
	for k := range root {
		if !refSiblingSafe(k) {
			delete(root, k)
			changed = true
		}
	}
	if !changed {
		return schema, nil
	}
	return json.Marshal(root)
}
