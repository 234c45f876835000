package sandboxtest

import (
	"slices"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitGranted waits until the API server's authorizer grants user what
// role does (its first rule that names no object): a role and its binding
// reach the RBAC authorizer through its informers, a moment after they are
// created, and a call made before that is refused for a permission the
// role does hold.
func WaitGranted(t *testing.T, kube kubernetes.Interface, user string, role *rbacv1.ClusterRole) {
	t.Helper()
	i := slices.IndexFunc(role.Rules, func(r rbacv1.PolicyRule) bool {
		return len(r.ResourceNames) == 0 && len(r.Verbs) > 0 && len(r.Resources) > 0 && len(r.APIGroups) > 0
	})
	if i < 0 {
		t.Fatalf("ClusterRole %s has no rule to probe", role.Name)
	}
	r := role.Rules[i]
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: r.Verbs[0], Group: r.APIGroups[0], Resource: r.Resources[0]}}}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := kube.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), sar, metav1.CreateOptions{})
		if err == nil && got.Status.Allowed {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("ClusterRole %s not granted to %s after 30 s (%s %s in group %q): %v", role.Name, user, r.Verbs[0], r.Resources[0], r.APIGroups[0], err)
		}
	}
}
