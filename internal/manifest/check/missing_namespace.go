package check

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// missingNamespace reports namespaced objects without metadata.namespace:
// they land in whatever namespace the applier's context points at, which in a
// pipeline that targets several clusters is a different one each time.
type missingNamespace struct{}

// Name implements Checker.
func (missingNamespace) Name() string { return "missing-namespace" }

// Code implements Checker.
func (missingNamespace) Code() string { return "MV005" }

// clusterScoped lists the built-in kinds without a namespace, by group/kind.
var clusterScoped = map[string]bool{
	"/Namespace": true, "/Node": true, "/PersistentVolume": true, "/ComponentStatus": true,
	"rbac.authorization.k8s.io/ClusterRole": true, "rbac.authorization.k8s.io/ClusterRoleBinding": true,
	"apiextensions.k8s.io/CustomResourceDefinition": true, "apiregistration.k8s.io/APIService": true,
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":     true,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration":   true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicy":        true,
	"admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicy":          true,
	"admissionregistration.k8s.io/MutatingAdmissionPolicyBinding":   true,
	"storage.k8s.io/StorageClass":                                   true, "storage.k8s.io/CSIDriver": true, "storage.k8s.io/CSINode": true,
	"storage.k8s.io/VolumeAttachment": true, "scheduling.k8s.io/PriorityClass": true,
	"networking.k8s.io/IngressClass": true, "node.k8s.io/RuntimeClass": true,
	"policy/PodSecurityPolicy": true, "certificates.k8s.io/CertificateSigningRequest": true,
	"flowcontrol.apiserver.k8s.io/FlowSchema": true, "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration": true,
	"resource.k8s.io/DeviceClass": true,
}

// namespacedKinds tells, for each group/kind, whether it is namespaced: built-in
// kinds from the table above, custom kinds from the CRDs in the input, Istio's
// kinds always (all of them are namespaced). Unknown kinds are absent.
func namespacedKinds(in *Input) map[string]bool {
	out := map[string]bool{}
	for _, u := range in.Objects {
		if !is(u, "apiextensions.k8s.io", "CustomResourceDefinition") {
			continue
		}
		grp, _, _ := nestedStr(u.Object, "spec", "group")
		kind, _, _ := nestedStr(u.Object, "spec", "names", "kind")
		scope, _, _ := nestedStr(u.Object, "spec", "scope")
		out[grp+"/"+kind] = scope != "Cluster"
	}
	return out
}

// namespaced reports whether u's kind is namespaced and whether that is known.
func namespaced(u *unstructured.Unstructured, crds map[string]bool) (namespaced, known bool) {
	grp := group(u)
	key := grp + "/" + u.GetKind()
	if clusterScoped[key] {
		return false, true
	}
	if v, ok := crds[key]; ok {
		return v, true
	}
	if !strings.Contains(grp, ".") || strings.HasSuffix(grp, ".k8s.io") || strings.HasSuffix(grp, ".istio.io") {
		// Built-in groups have no dot (apps, batch, policy, core) or end in
		// .k8s.io; every Istio kind is namespaced.
		return true, true
	}
	return false, false
}

// Run implements Checker.
func (c missingNamespace) Run(in *Input) []Finding {
	crds := namespacedKinds(in)
	var out []Finding
	for _, u := range in.Objects {
		ns, known := namespaced(u, crds)
		if !known || !ns || u.GetNamespace() != "" {
			continue
		}
		out = append(out, finding(c, Warning, ref(u), "namespaced object has no metadata.namespace",
			"set metadata.namespace (helm template --namespace does not add it; charts must use .Release.Namespace)"))
	}
	return out
}
