package permission

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestFrom(t *testing.T) {
	const sa = "system:serviceaccount:meshroll-system:meshroll"
	for _, tt := range []struct {
		name string
		err  error
		want *Missing
	}{
		{
			name: "namespaced",
			err: apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
				fmt.Errorf(`User %q cannot patch resource "deployments" in API group "apps" in the namespace "shop"`, sa)),
			want: &Missing{User: sa, Verb: "patch", Resource: "deployments", Group: "apps", Namespace: "shop"},
		},
		{
			name: "cluster scope subresource",
			err: apierrors.NewForbidden(schema.GroupResource{Group: "meshroll.io", Resource: "meshupgrades"}, "u",
				fmt.Errorf(`User %q cannot update resource "meshupgrades/status" in API group "meshroll.io" at the cluster scope`, sa)),
			want: &Missing{User: sa, Verb: "update", Resource: "meshupgrades/status", Group: "meshroll.io"},
		},
		{
			name: "core group, wrapped",
			err: fmt.Errorf("failed to relabel namespace %q: %w", "shop", apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "shop",
				fmt.Errorf(`User %q cannot patch resource "namespaces" in API group "" at the cluster scope`, sa))),
			want: &Missing{User: sa, Verb: "patch", Resource: "namespaces"},
		},
		{
			name: "a namespace is cluster-scoped whatever RBAC says",
			err: apierrors.NewForbidden(schema.GroupResource{Resource: "namespaces"}, "shop",
				fmt.Errorf(`User %q cannot patch resource "namespaces" in API group "" in the namespace "shop"`, sa)),
			want: &Missing{User: sa, Verb: "patch", Resource: "namespaces"},
		},
		{
			name: "forbidden by admission, not RBAC",
			err: apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "p",
				errors.New(`pods "p" is forbidden: violates PodSecurity "restricted:latest"`)),
		},
		{name: "not forbidden", err: apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "p")},
		{name: "nil"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := From(tt.err)
			if ok != (tt.want != nil) {
				t.Fatalf("From() ok = %v, want %v", ok, tt.want != nil)
			}
			if ok && *got != *tt.want {
				t.Errorf("From() = %+v, want %+v", *got, *tt.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	orig := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web",
		errors.New(`User "x" cannot patch resource "deployments" in API group "apps" in the namespace "shop"`))
	err := Explain(fmt.Errorf("failed to move workload %q: %w", "shop/web", orig))
	want := `missing permission: verb "patch" on resource "deployments" in API group "apps" in namespace "shop" for x`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Explain() = %q, want prefix %q", err, want)
	}
	if !apierrors.IsForbidden(err) {
		t.Error("Explain() lost IsForbidden")
	}
	var m *Missing
	if !errors.As(err, &m) || m.Verb != "patch" {
		t.Errorf("errors.As(*Missing) = %v", m)
	}
	other := errors.New("boom")
	if got := Explain(other); got != other {
		t.Errorf("Explain(non-forbidden) = %v, want it unchanged", got)
	}
}
