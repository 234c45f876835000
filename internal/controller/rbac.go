package controller

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Rules are exactly the permissions the controller uses, cluster-wide: the
// chart's ClusterRole is this list (its test compares them) and nothing
// more; no wildcards. Each rule says which part of the controller needs it.
// The reconciler checks them with SelfSubjectAccessReviews before it
// writes, so a missing one becomes a condition and an event naming it
// instead of a half-done step.
//
// Installing an Istio revision (spec.version) applies Istio's own charts:
// the ClusterRoles, webhooks and CRDs they hold, so those resources are
// listed too, with escalate and bind for the RBAC objects (the controller
// grants istiod permissions it does not use itself).
var Rules = []rbacv1.PolicyRule{
	// The MeshUpgrade and its records: the engine's whole memory.
	{APIGroups: []string{"meshroll.io"}, Resources: []string{"meshupgrades"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{"meshroll.io"}, Resources: []string{"meshupgrades/status"}, Verbs: []string{"get", "update", "patch"}},
	{APIGroups: []string{"meshroll.io"}, Resources: []string{"meshupgraderecords"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	// Leader election and the per-upgrade lease (one engine per run).
	{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	// Events for every step, wave, gate verdict, halt and rollback.
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch", "update"}},
	// Permission preflight.
	{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews"}, Verbs: []string{"create"}},
	// Inventory reads and the data-plane moves (template label, restart
	// annotation), rollout watches, namespace relabels.
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch", "create", "patch", "update"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "controllerrevisions"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get", "list", "watch", "patch"}},
	// Istio's revisions (install, tags, gateways, prune), as its charts
	// render them.
	{APIGroups: []string{""}, Resources: []string{"configmaps", "services", "serviceaccounts", "secrets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"rbac.authorization.k8s.io"}, Resources: []string{"clusterroles", "clusterrolebindings", "roles", "rolebindings"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete", "escalate", "bind"}},
	{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}},
	{APIGroups: []string{"policy"}, Resources: []string{"poddisruptionbudgets"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"autoscaling"}, Resources: []string{"horizontalpodautoscalers"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"networking.istio.io"}, Resources: []string{"envoyfilters"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
}

// Missing asks the API server, with one SelfSubjectAccessReview per verb and
// resource of Rules, which permissions the controller lacks; each is named
// as `verb group/resource`.
func Missing(ctx context.Context, kube kubernetes.Interface) ([]string, error) {
	var missing []string
	for _, r := range Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					resource, sub, _ := strings.Cut(res, "/")
					ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
						ResourceAttributes: &authorizationv1.ResourceAttributes{Group: g, Resource: resource, Subresource: sub, Verb: v}}}
					out, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
					if err != nil {
						return nil, fmt.Errorf("failed to review permission %q: %w", v+" "+qualified(g, res), err)
					}
					if !out.Status.Allowed {
						missing = append(missing, v+" "+qualified(g, res))
					}
				}
			}
		}
	}
	return missing, nil
}

func qualified(group, resource string) string {
	if group == "" {
		return resource
	}
	return group + "/" + resource
}
