// Package permission turns the API server's Forbidden answers into the one
// fact an operator needs: which verb on which resource the caller lacks.
//
// The controller runs with a least-privilege ClusterRole (charts/meshroll).
// When a cluster's RBAC drifts from it, every call the engine makes fails
// with a long Forbidden message; the MeshUpgrade's condition and event should
// instead say "missing permission: patch deployments.apps in namespace shop",
// which is what a human adds to the role.
package permission

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Missing is one permission an API call was refused for lack of.
type Missing struct {
	// User is who was refused, e.g. system:serviceaccount:meshroll-system:meshroll.
	User string
	// Verb is the RBAC verb: get, list, watch, create, update, patch, delete, …
	Verb string
	// Resource is the resource, with its subresource after a slash
	// ("meshupgrades/status").
	Resource string
	// Group is the API group; "" is the core group.
	Group string
	// Namespace is where the call was refused; "" for cluster scope.
	Namespace string
}

// Error says what to grant, in RBAC's own words.
func (m *Missing) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "missing permission: verb %q on resource %q", m.Verb, m.Resource)
	if m.Group != "" {
		fmt.Fprintf(&b, " in API group %q", m.Group)
	} else {
		b.WriteString(" in the core API group")
	}
	if m.Namespace != "" {
		fmt.Fprintf(&b, " in namespace %q", m.Namespace)
	} else {
		b.WriteString(" (cluster-wide)")
	}
	if m.User != "" {
		fmt.Fprintf(&b, " for %s", m.User)
	}
	b.WriteString("; add it to the controller's ClusterRole (charts/meshroll/templates/clusterrole.yaml)")
	return b.String()
}

// RBAC's authorizer words its refusals the same way since Kubernetes 1.11:
//
//	User "u" cannot patch resource "deployments" in API group "apps" in the namespace "ns"
//	User "u" cannot update resource "meshupgrades/status" in API group "meshroll.io" at the cluster scope
var forbidden = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]*)")?`)

// From finds the permission behind err: ok is false when err is not (or
// does not wrap) a Forbidden answer naming a verb and a resource, such as a
// refusal by an admission plugin or a webhook.
func From(err error) (*Missing, bool) {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) || !apierrors.IsForbidden(err) {
		return nil, false
	}
	m := forbidden.FindStringSubmatch(status.Status().Message)
	if m == nil {
		return nil, false
	}
	out := &Missing{User: m[1], Verb: m[2], Resource: m[3], Group: m[4], Namespace: m[5]}
	if out.Group == "" && (out.Resource == "namespaces" || strings.HasPrefix(out.Resource, "namespaces/")) {
		// RBAC names a Namespace as its own namespace, but only a
		// ClusterRole can grant access to Namespaces.
		out.Namespace = ""
	}
	return out, true
}

// Explain returns err unchanged unless it is an RBAC refusal; then it returns
// an error that starts with the missing permission and still wraps err, so
// callers keep apierrors.IsForbidden and errors.As(*Missing) both.
func Explain(err error) error {
	m, ok := From(err)
	if !ok {
		return err
	}
	return &explained{missing: m, err: err}
}

// explained carries both the parsed permission and the original error.
type explained struct {
	missing *Missing
	err     error
}

func (e *explained) Error() string { return e.missing.Error() + ": " + e.err.Error() }

// Unwrap exposes the original error and the Missing.
func (e *explained) Unwrap() []error { return []error{e.missing, e.err} }
