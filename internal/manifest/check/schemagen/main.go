// Command schemagen turns the Kubernetes OpenAPI v2 spec (api/openapi-spec/swagger.json
// of k8s.io/kubernetes) into the small set of standalone, strict JSON schemas the
// schema check embeds. It exists because validation must work offline: the
// schemas kubeconform usually downloads are not reachable from CI, so we ship
// the few kinds rendered Istio manifests use and regenerate them with
// `go generate` when the Kubernetes version moves.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// kinds are the OpenAPI definitions to emit: every kind Istio's base, istiod
// and gateway charts render, plus the workload kinds users add alongside.
var kinds = []string{
	"io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
	"io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
	"io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicy",
	"io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBinding",
	"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
	"io.k8s.api.apps.v1.Deployment",
	"io.k8s.api.apps.v1.DaemonSet",
	"io.k8s.api.apps.v1.StatefulSet",
	"io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
	"io.k8s.api.batch.v1.Job",
	"io.k8s.api.batch.v1.CronJob",
	"io.k8s.api.policy.v1.PodDisruptionBudget",
	"io.k8s.api.rbac.v1.ClusterRole",
	"io.k8s.api.rbac.v1.ClusterRoleBinding",
	"io.k8s.api.rbac.v1.Role",
	"io.k8s.api.rbac.v1.RoleBinding",
	"io.k8s.api.core.v1.ConfigMap",
	"io.k8s.api.core.v1.Namespace",
	"io.k8s.api.core.v1.Pod",
	"io.k8s.api.core.v1.Secret",
	"io.k8s.api.core.v1.Service",
	"io.k8s.api.core.v1.ServiceAccount",
	"io.k8s.api.networking.v1.NetworkPolicy",
}

func main() {
	spec := flag.String("spec", defaultSpec(), "path to swagger.json (go mod download k8s.io/kubernetes@"+specModuleVersion+" first)")
	out := flag.String("out", "schemas", "output directory")
	flag.Parse()
	if err := run(*spec, *out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// specModuleVersion is the Kubernetes release whose OpenAPI spec the shipped
// schemas come from; it is the sandbox's apiserver version.
const specModuleVersion = "v1.33.13"

// defaultSpec finds swagger.json in the module cache.
func defaultSpec() string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		cache = filepath.Join(build.Default.GOPATH, "pkg", "mod")
	}
	return filepath.Join(cache, "k8s.io", "kubernetes@"+specModuleVersion, "api", "openapi-spec", "swagger.json")
}

func run(spec, out string) error {
	b, err := os.ReadFile(spec)
	if err != nil {
		return fmt.Errorf("failed to read spec %q: %w", spec, err)
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("failed to parse spec %q: %w", spec, err)
	}
	for _, name := range kinds {
		def, ok := doc.Definitions[name]
		if !ok {
			return fmt.Errorf("failed to find definition %q", name)
		}
		gvk, _ := def["x-kubernetes-group-version-kind"].([]any)
		if len(gvk) == 0 {
			return fmt.Errorf("failed to find group-version-kind of %q", name)
		}
		g := gvk[0].(map[string]any)
		group, version, kind := g["group"].(string), g["version"].(string), g["kind"].(string)
		defs := map[string]any{}
		collect(doc.Definitions, name, defs)
		root := map[string]any{"$ref": "#/definitions/" + name, "definitions": defs}
		file := strings.ToLower(kind) + suffix(group, version) + ".json"
		data, err := json.Marshal(root)
		if err != nil {
			return fmt.Errorf("failed to encode schema %q: %w", file, err)
		}
		if err := os.WriteFile(filepath.Join(out, file), data, 0o644); err != nil {
			return fmt.Errorf("failed to write schema %q: %w", file, err)
		}
	}
	return nil
}

// suffix mirrors kubeconform's {{ .KindSuffix }}: -<first group label>-<version>.
func suffix(group, version string) string {
	if group == "" {
		return "-" + version
	}
	return "-" + strings.Split(group, ".")[0] + "-" + version
}

// collect copies a definition and everything it references, rewritten to be
// strict (no unknown fields), nullable (YAML's empty value) and to accept the
// number forms of quantities and int-or-strings.
func collect(all map[string]map[string]any, name string, into map[string]any) {
	if _, done := into[name]; done {
		return
	}
	switch name {
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		into[name] = map[string]any{"type": []any{"string", "integer", "null"}}
		return
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		into[name] = map[string]any{"type": []any{"string", "number", "null"}}
		return
	case "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
		"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
		"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
		"io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
		"io.k8s.apimachinery.pkg.runtime.RawExtension":
		into[name] = map[string]any{}
		return
	}
	into[name] = nil // mark before recursing: definitions are recursive
	into[name] = rewrite(all, all[name], into)
}

func rewrite(all map[string]map[string]any, node map[string]any, into map[string]any) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(node))
	for k := range node {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := node[k]
		switch k {
		case "description", "x-kubernetes-group-version-kind", "x-kubernetes-list-map-keys",
			"x-kubernetes-list-type", "x-kubernetes-patch-merge-key", "x-kubernetes-patch-strategy",
			"x-kubernetes-map-type", "x-kubernetes-unions", "format":
			continue
		case "$ref":
			ref := strings.TrimPrefix(v.(string), "#/definitions/")
			collect(all, ref, into)
			out[k] = v
		case "properties":
			props := map[string]any{}
			for pk, pv := range v.(map[string]any) {
				props[pk] = rewrite(all, pv.(map[string]any), into)
			}
			out[k] = props
		case "items", "additionalProperties":
			if m, ok := v.(map[string]any); ok {
				out[k] = rewrite(all, m, into)
			} else {
				out[k] = v
			}
		case "type":
			out[k] = []any{v, "null"}
		default:
			out[k] = v
		}
	}
	if _, ok := out["properties"]; ok {
		if _, ok := out["additionalProperties"]; !ok {
			out["additionalProperties"] = false
		}
	}
	if ref, ok := out["$ref"]; ok && len(out) > 1 {
		// Draft 4 ignores siblings of $ref; keep the reference only.
		return map[string]any{"$ref": ref}
	}
	return out
}
