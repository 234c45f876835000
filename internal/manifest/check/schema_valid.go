package check

import (
	"encoding/json"
	"errors"
	"strings"

	jsonschema "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// schemaValid validates every object against its JSON schema in strict mode
// (unknown fields are errors): built-in kinds against the embedded schemas,
// custom resources against schemas derived from the CRDs in the same input.
// Objects of kinds with no schema either way are reported as info, not
// silently passed.
//
// It used to hand each object to a fresh kubeconform validator, which
// re-encoded it, parsed it back from YAML and recompiled every schema on every
// run: more than 95 % of the run for Istio's megabyte-sized CRDs. It now uses
// the same JSON-schema library kubeconform does, on the objects as they are,
// with the embedded schemas compiled once per process. Duplicate keys, the
// other half of kubeconform's strict mode, cannot exist in parsed objects:
// Load rejects them while parsing (see the yaml check).
type schemaValid struct{}

// Name implements Checker.
func (schemaValid) Name() string { return "schema" }

// Code implements Checker.
func (schemaValid) Code() string { return "MV002" }

// schemaFix is the fix hint of schema findings.
const schemaFix = "fix the field named in the message (typo, wrong indentation or wrong type); kubectl explain <kind>.<field> shows the schema"

// Run implements Checker.
func (c schemaValid) Run(in *Input) []Finding {
	lookup := newSchemaLookup(in.Objects)
	printer := message.NewPrinter(language.English)
	var out []Finding
	for _, u := range in.Objects {
		out = append(out, c.validate(u, lookup, printer)...)
	}
	return out
}

// validate checks one object and returns its findings.
func (c schemaValid) validate(u *unstructured.Unstructured, lookup *schemaLookup, printer *message.Printer) []Finding {
	if len(u.Object) == 0 {
		return nil
	}
	kind, okKind := u.Object["kind"].(string)
	apiVersion, okVersion := u.Object["apiVersion"].(string)
	switch {
	case !okKind:
		return []Finding{finding(c, Error, ref(u), "error while parsing: missing 'kind' key", schemaFix)}
	case !okVersion:
		return []Finding{finding(c, Error, ref(u), "error while parsing: missing 'apiVersion' key", schemaFix)}
	}
	schema := lookup.schema(schemaFileOf(kind, apiVersion))
	if schema == nil {
		return []Finding{finding(c, Info, ref(u), "no schema for "+apiVersion+" "+kind+"; not validated",
			"include the kind's CRD in the input to validate it")}
	}
	doc, err := jsonDocument(u.Object)
	if err != nil {
		return []Finding{finding(c, Error, ref(u), "object does not encode as JSON: "+err.Error(), schemaFix)}
	}
	err = schema.Validate(doc)
	if err == nil {
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) || len(verr.Causes) == 0 {
		return []Finding{finding(c, Error, ref(u), "problem validating schema. Check JSON formatting: "+strings.ReplaceAll(err.Error(), "\n", " "), schemaFix)}
	}
	out := make([]Finding, 0, len(verr.Causes))
	for _, cause := range verr.Causes {
		path := ""
		for _, f := range cause.InstanceLocation {
			path += "/" + f
		}
		if path == "" {
			path = "/"
		}
		out = append(out, finding(c, Error, ref(u), path+": "+cause.ErrorKind.LocalizedString(printer), schemaFix))
	}
	return out
}

// jsonDocument returns obj as the JSON-schema library expects it. Objects
// parsed from YAML or JSON already are such a tree and are used as they are
// (the validator only reads them); objects built in code may hold other Go
// types, which a JSON round trip converts, as encoding them always did.
func jsonDocument(obj map[string]any) (any, error) {
	if jsonTree(obj) {
		return obj, nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc, nil
}

// jsonTree reports whether v holds only the types a JSON decoder produces
// (numbers may be any Go integer or float type, which the validator accepts).
func jsonTree(v any) bool {
	switch t := v.(type) {
	case nil, string, bool, float64, float32, json.Number,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case map[string]any:
		for _, e := range t {
			if !jsonTree(e) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range t {
			if !jsonTree(e) {
				return false
			}
		}
		return true
	}
	return false
}

// schemaFileOf is the name a kind's schema has, as kubeconform's path
// template {{ .ResourceKind }}{{ .KindSuffix }}.json spells it from the raw
// apiVersion: <kind>[-<first label of the group>]-<version>, lower case.
func schemaFileOf(kind, apiVersion string) string {
	grp, version, found := strings.Cut(apiVersion, "/")
	if !found {
		return strings.ToLower(kind) + "-" + strings.ToLower(apiVersion) + ".json"
	}
	if i := strings.IndexByte(version, '/'); i >= 0 {
		version = version[:i]
	}
	label, _, _ := strings.Cut(grp, ".")
	return strings.ToLower(kind) + "-" + strings.ToLower(label) + "-" + strings.ToLower(version) + ".json"
}

// schemaFile is the file name of the schema of kind in group grp, version
// version: schemaFileOf for a structured group and version.
func schemaFile(kind, grp, version string) string {
	if grp == "" {
		return schemaFileOf(kind, version)
	}
	return schemaFileOf(kind, grp+"/"+version)
}

// crdSchema converts a CRD's structural OpenAPI v3 schema into a draft-4 JSON
// schema: nullable becomes a "null" type, int-or-string accepts both, and
// objects with declared properties reject unknown fields unless they preserve
// them (as the API server's strict field validation does). At the root,
// apiVersion, kind and metadata are allowed.
func crdSchema(s map[string]any, root bool) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		switch k {
		case "properties", "patternProperties", "definitions":
			props, _ := v.(map[string]any)
			conv := make(map[string]any, len(props))
			for pk, pv := range props {
				if m, ok := pv.(map[string]any); ok {
					conv[pk] = crdSchema(m, false)
				}
			}
			out[k] = conv
		case "items", "additionalProperties", "not":
			if m, ok := v.(map[string]any); ok {
				out[k] = crdSchema(m, false)
			} else {
				out[k] = v
			}
		case "allOf", "anyOf", "oneOf":
			l, _ := v.([]any)
			conv := make([]any, 0, len(l))
			for _, e := range l {
				if m, ok := e.(map[string]any); ok {
					conv = append(conv, crdSchema(m, false))
				}
			}
			out[k] = conv
		case "nullable", "format", "x-kubernetes-validations", "default", "description", "example":
		default:
			out[k] = v
		}
	}
	if b, _ := s["x-kubernetes-int-or-string"].(bool); b {
		delete(out, "type")
		out["type"] = []any{"integer", "string"}
	}
	if t, ok := out["type"].(string); ok && s["nullable"] == true {
		out["type"] = []any{t, "null"}
	}
	if root {
		props, _ := out["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
		}
		props["apiVersion"] = map[string]any{"type": "string"}
		props["kind"] = map[string]any{"type": "string"}
		props["metadata"] = map[string]any{"type": "object"}
		out["properties"] = props
	}
	_, hasProps := out["properties"]
	_, hasAdditional := out["additionalProperties"]
	if preserve, _ := s["x-kubernetes-preserve-unknown-fields"].(bool); hasProps && !hasAdditional && !preserve {
		out["additionalProperties"] = false
	}
	return out
}
