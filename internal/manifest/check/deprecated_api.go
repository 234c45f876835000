package check

import (
	"fmt"
	"strconv"
	"strings"
)

// deprecatedAPI reports apiVersions that the target Kubernetes version no
// longer serves (error: apply fails) or has deprecated (warning: the next
// cluster upgrade will break the manifests).
type deprecatedAPI struct{}

// Name implements Checker.
func (deprecatedAPI) Name() string { return "deprecated-api" }

// Code implements Checker.
func (deprecatedAPI) Code() string { return "MV003" }

// apiRemoval is one row of Kubernetes' deprecated API migration guide.
type apiRemoval struct {
	apiVersion, kind    string // kind "" means every kind of that apiVersion
	deprecated, removed int    // Kubernetes minor versions (1.x)
	replacement         string
}

// apiRemovals lists the removals of the Kubernetes deprecation guide that
// manifests still carry in practice.
var apiRemovals = []apiRemoval{
	{"extensions/v1beta1", "", 8, 22, "apps/v1 or networking.k8s.io/v1"},
	{"apps/v1beta1", "", 9, 16, "apps/v1"},
	{"apps/v1beta2", "", 9, 16, "apps/v1"},
	{"admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration", 16, 22, "admissionregistration.k8s.io/v1"},
	{"admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration", 16, 22, "admissionregistration.k8s.io/v1"},
	{"admissionregistration.k8s.io/v1alpha1", "ValidatingAdmissionPolicy", 28, 32, "admissionregistration.k8s.io/v1"},
	{"admissionregistration.k8s.io/v1alpha1", "ValidatingAdmissionPolicyBinding", 28, 32, "admissionregistration.k8s.io/v1"},
	{"admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicy", 30, 999, "admissionregistration.k8s.io/v1"},
	{"admissionregistration.k8s.io/v1beta1", "ValidatingAdmissionPolicyBinding", 30, 999, "admissionregistration.k8s.io/v1"},
	{"apiextensions.k8s.io/v1beta1", "", 16, 22, "apiextensions.k8s.io/v1"},
	{"apiregistration.k8s.io/v1beta1", "", 19, 22, "apiregistration.k8s.io/v1"},
	{"authentication.k8s.io/v1beta1", "", 19, 22, "authentication.k8s.io/v1"},
	{"authorization.k8s.io/v1beta1", "", 19, 22, "authorization.k8s.io/v1"},
	{"certificates.k8s.io/v1beta1", "", 19, 22, "certificates.k8s.io/v1"},
	{"coordination.k8s.io/v1beta1", "", 19, 22, "coordination.k8s.io/v1"},
	{"networking.k8s.io/v1beta1", "Ingress", 19, 22, "networking.k8s.io/v1"},
	{"networking.k8s.io/v1beta1", "IngressClass", 19, 22, "networking.k8s.io/v1"},
	{"rbac.authorization.k8s.io/v1beta1", "", 17, 22, "rbac.authorization.k8s.io/v1"},
	{"rbac.authorization.k8s.io/v1alpha1", "", 17, 22, "rbac.authorization.k8s.io/v1"},
	{"scheduling.k8s.io/v1beta1", "", 14, 22, "scheduling.k8s.io/v1"},
	{"scheduling.k8s.io/v1alpha1", "", 14, 22, "scheduling.k8s.io/v1"},
	{"storage.k8s.io/v1beta1", "CSIDriver", 19, 22, "storage.k8s.io/v1"},
	{"storage.k8s.io/v1beta1", "CSINode", 17, 22, "storage.k8s.io/v1"},
	{"storage.k8s.io/v1beta1", "StorageClass", 19, 22, "storage.k8s.io/v1"},
	{"storage.k8s.io/v1beta1", "VolumeAttachment", 19, 22, "storage.k8s.io/v1"},
	{"storage.k8s.io/v1beta1", "CSIStorageCapacity", 24, 27, "storage.k8s.io/v1"},
	{"batch/v1beta1", "CronJob", 21, 25, "batch/v1"},
	{"discovery.k8s.io/v1beta1", "EndpointSlice", 21, 25, "discovery.k8s.io/v1"},
	{"events.k8s.io/v1beta1", "Event", 19, 25, "events.k8s.io/v1"},
	{"autoscaling/v2beta1", "HorizontalPodAutoscaler", 22, 25, "autoscaling/v2"},
	{"autoscaling/v2beta2", "HorizontalPodAutoscaler", 23, 26, "autoscaling/v2"},
	{"policy/v1beta1", "PodDisruptionBudget", 21, 25, "policy/v1"},
	{"policy/v1beta1", "PodSecurityPolicy", 21, 25, "Pod Security Admission (namespace labels)"},
	{"node.k8s.io/v1beta1", "RuntimeClass", 20, 25, "node.k8s.io/v1"},
	{"flowcontrol.apiserver.k8s.io/v1beta1", "", 23, 26, "flowcontrol.apiserver.k8s.io/v1"},
	{"flowcontrol.apiserver.k8s.io/v1beta2", "", 26, 29, "flowcontrol.apiserver.k8s.io/v1"},
	{"flowcontrol.apiserver.k8s.io/v1beta3", "", 29, 32, "flowcontrol.apiserver.k8s.io/v1"},
	{"resource.k8s.io/v1alpha2", "", 31, 31, "resource.k8s.io/v1beta1"},
	{"resource.k8s.io/v1alpha3", "", 32, 32, "resource.k8s.io/v1"},
	{"resource.k8s.io/v1beta1", "", 34, 999, "resource.k8s.io/v1"},
}

// kubeMinor parses "1.33", "v1.33.2" or "" (DefaultKubeVersion) into 33.
func kubeMinor(v string) (int, error) {
	if v == "" {
		v = DefaultKubeVersion
	}
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 || parts[0] != "1" {
		return 0, fmt.Errorf("failed to parse kubernetes version %q: want 1.N", v)
	}
	return strconv.Atoi(parts[1])
}

// Run implements Checker.
func (c deprecatedAPI) Run(in *Input) []Finding {
	minor, err := kubeMinor(in.KubeVersion)
	if err != nil {
		return []Finding{finding(c, Error, "input", err.Error(), "pass a target version like 1.33")}
	}
	var out []Finding
	for _, u := range in.Objects {
		for _, r := range apiRemovals {
			if u.GetAPIVersion() != r.apiVersion || (r.kind != "" && r.kind != u.GetKind()) {
				continue
			}
			switch {
			case minor >= r.removed:
				out = append(out, finding(c, Error, ref(u),
					fmt.Sprintf("%s was removed in Kubernetes 1.%d (target 1.%d)", r.apiVersion, r.removed, minor),
					"use "+r.replacement))
			case minor >= r.deprecated:
				msg := fmt.Sprintf("%s is deprecated since Kubernetes 1.%d", r.apiVersion, r.deprecated)
				if r.removed < 999 {
					msg += fmt.Sprintf(" and removed in 1.%d", r.removed)
				}
				out = append(out, finding(c, Warning, ref(u), msg, "use "+r.replacement))
			}
			break
		}
	}
	return out
}
