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

// Rule is one rule of the controller's permissions and why it is needed.
type Rule struct {
	// Why is written above the rule in the chart's template.
	Why string
	rbacv1.PolicyRule
}

func rule(why string, groups, resources, verbs []string) Rule {
	return Rule{Why: why, PolicyRule: rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}}
}

// Rules are exactly the permissions the controller and the engine it runs
// use, cluster-wide, and the single source of the chart's ClusterRole:
// `make generate` writes charts/meshroll/templates/clusterrole.yaml from
// them (TestChartRBACGenerated fails when the two differ), and the
// reconciler's preflight checks the same list with SelfSubjectAccessReviews
// before it writes, so a missing one becomes a condition and an event
// naming it instead of a half-done step. No wildcards, and no verb the code
// does not call: test/e2e/chart runs a whole upgrade as the chart's
// ServiceAccount, and test/e2e/controller runs the controller as it.
var Rules = []Rule{
	rule("MeshUpgrades are the API: watched through the manager's cache, created by `meshroll upgrade`,\nstatus written by the engine; records hold per-step history (server-side apply).",
		[]string{"meshroll.io"}, []string{"meshupgrades"}, []string{"get", "list", "watch", "create", "update", "patch"}),
	rule("", []string{"meshroll.io"}, []string{"meshupgrades/status"}, []string{"get", "update", "patch"}),
	rule("", []string{"meshroll.io"}, []string{"meshupgraderecords"}, []string{"get", "list", "watch", "create", "patch"}),
	rule("On a hub (where the FleetUpgrade CRD is served) the controller runs FleetUpgrades: it reads and\nwatches them and writes only their status; they are created from Git or by `meshroll fleet upgrade`.",
		[]string{"meshroll.io"}, []string{"fleetupgrades"}, []string{"get", "list", "watch"}),
	rule("", []string{"meshroll.io"}, []string{"fleetupgrades/status"}, []string{"get", "update"}),
	rule("Istio's and meshroll's own CRDs are applied before anything that uses them, and read back until\nEstablished. They are never deleted.",
		[]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, []string{"get", "create", "patch"}),
	rule("Revision injectors, validators and revision tags (istioctl's istio-revision-tag-<tag>), and\nmeshroll's own assignment webhook (registered and its caBundle rotated by the controller).",
		[]string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}),
	rule("istiod and gateway Deployments are installed and removed; every workload kind is moved by one\nmerge patch of its pod template and watched until rolled out.",
		[]string{"apps"}, []string{"deployments"}, []string{"get", "list", "watch", "create", "patch", "delete"}),
	rule("", []string{"apps"}, []string{"statefulsets", "daemonsets"}, []string{"get", "list", "watch", "patch"}),
	rule("", []string{"apps"}, []string{"replicasets"}, []string{"list"}),
	rule("", []string{"batch"}, []string{"cronjobs"}, []string{"get", "list", "patch"}),
	rule("", []string{"batch"}, []string{"jobs"}, []string{"list"}),
	rule("Namespaces are relabelled (istio.io/rev) and istio-system is applied with the revision; none is\never deleted. Pods are read (metadata) for the revision and proxy version each runs.",
		[]string{""}, []string{"namespaces"}, []string{"get", "list", "create", "patch"}),
	rule("", []string{""}, []string{"pods"}, []string{"list"}),
	rule("Objects Istio's charts render for a revision or a gateway colour, and the revision record\nConfigMap: applied, read back, removed by prune.",
		[]string{""}, []string{"services", "configmaps"}, []string{"get", "list", "create", "patch", "delete"}),
	rule("", []string{""}, []string{"serviceaccounts"}, []string{"get", "create", "patch", "delete"}),
	rule("", []string{"autoscaling"}, []string{"horizontalpodautoscalers"}, []string{"get", "create", "patch", "delete"}),
	rule("", []string{"policy"}, []string{"poddisruptionbudgets"}, []string{"get", "create", "patch", "delete"}),
	rule("A gateway colour's NetworkPolicy (newer gateway charts) goes with it.",
		[]string{"networking.k8s.io"}, []string{"networkpolicies"}, []string{"delete"}),
	rule("istiod's own roles come from Istio's charts. Creating a role that grants more than meshroll holds\nneeds escalate, binding it needs bind: the alternative is holding every permission istiod has.",
		[]string{"rbac.authorization.k8s.io"}, []string{"clusterroles", "roles"}, []string{"get", "create", "patch", "delete", "escalate", "bind"}),
	rule("", []string{"rbac.authorization.k8s.io"}, []string{"clusterrolebindings", "rolebindings"}, []string{"get", "create", "patch", "delete"}),
	rule("Inventory reads ProxyConfigs (the proxy image a revision injects) and VMs' WorkloadEntries; a VM\nis moved by one merge patch of its WorkloadEntry.",
		[]string{"networking.istio.io"}, []string{"proxyconfigs"}, []string{"list"}),
	rule("", []string{"networking.istio.io"}, []string{"workloadentries"}, []string{"get", "list", "patch"}),
	rule("One engine per MeshUpgrade holds a Lease; the controller's replicas elect a leader on a Lease.",
		[]string{"coordination.k8s.io"}, []string{"leases"}, []string{"get", "list", "watch", "create", "update", "patch", "delete"}),
	rule("Events for every step, wave, gate verdict, halt and rollback.",
		[]string{"", "events.k8s.io"}, []string{"events"}, []string{"create", "patch"}),
	rule("The permission preflight (every authenticated user holds it through system:basic-user; listed so\nthe role stands alone).",
		[]string{"authorization.k8s.io"}, []string{"selfsubjectaccessreviews"}, []string{"create"}),
}

// WebhookSecret is the Secret holding the assignment webhook's CA bundle
// and serving certificate.
const WebhookSecret = "meshroll-webhook-cert"

// CertRules are the only Secret permissions the controller holds, in the
// webhook's certificate namespace (the chart's Role, written from them by
// `make generate`): create cannot be limited by name, get and update can.
var CertRules = []Rule{
	rule("", []string{""}, []string{"secrets"}, []string{"create"}),
	{PolicyRule: rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{WebhookSecret}, Verbs: []string{"get", "update"}}},
}

// FleetRules are a hub controller's only permission in its fleet namespace
// (--fleet-members-namespace; the chart's fleet Role, written from them by
// `make generate`): the FleetUpgrade reconciler lists and watches the
// member Secrets (labelled meshroll.io/cluster, each a member's kubeconfig)
// there while it leads, and never gets one. Neither verb can be limited by
// name or label, so both stay in that one namespace.
var FleetRules = []Rule{
	rule("", []string{""}, []string{"secrets"}, []string{"list", "watch"}),
}

// Missing asks the API server, with one SelfSubjectAccessReview per verb and
// resource of Rules (and of CertRules in certNamespace, unless it is ""),
// which permissions the controller lacks; each is named as
// `verb group/resource` (with `in <namespace>` for namespaced ones).
func Missing(ctx context.Context, kube kubernetes.Interface, certNamespace string) ([]string, error) {
	var missing []string
	check := func(rules []Rule, ns string) error {
		for _, r := range rules {
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{""}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						for _, name := range names {
							resource, sub, _ := strings.Cut(res, "/")
							ssar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
								ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Group: g, Resource: resource, Subresource: sub, Verb: v, Name: name}}}
							what := v + " " + qualified(g, res)
							if name != "" {
								what += " " + name
							}
							if ns != "" {
								what += " in " + ns
							}
							out, err := kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, ssar, metav1.CreateOptions{})
							if err != nil {
								return fmt.Errorf("failed to review permission %q: %w", what, err)
							}
							if !out.Status.Allowed {
								missing = append(missing, what)
							}
						}
					}
				}
			}
		}
		return nil
	}
	if err := check(Rules, ""); err != nil {
		return nil, err
	}
	if certNamespace != "" {
		if err := check(CertRules, certNamespace); err != nil {
			return nil, err
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
