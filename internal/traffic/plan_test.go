package traffic

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateSteps(t *testing.T) {
	for _, tc := range []struct {
		steps []int
		want  string
	}{
		{[]int{10, 50, 100}, ""},
		{[]int{100}, ""},
		{nil, "at least one"},
		{[]int{50, 10, 100}, "must grow"},
		{[]int{10, 50}, "last weight must be 100"},
		{[]int{0, 100}, "between 1 and 100"},
	} {
		err := ValidateSteps(tc.steps)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("ValidateSteps(%v) = %v, want %q", tc.steps, err, tc.want)
		}
	}
}

func subject() Subject {
	labels := map[string]string{"app": "echo", VersionLabel: "v1"}
	return Subject{
		Old: &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "echo-v1", Namespace: "ns", Labels: map[string]string{"app": "echo", VersionLabel: "v1"}},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "img:1"}}}},
			},
		},
		Service:    &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "echo"}}},
		OldVersion: "v1", NewVersion: "v2",
	}
}

func TestCheckSubject(t *testing.T) {
	if err := CheckSubject(subject()); err != nil {
		t.Fatalf("valid subject refused: %v", err)
	}
	for name, tc := range map[string]struct {
		mutate func(*Subject)
		want   string
	}{
		"no version label":       {func(s *Subject) { s.OldVersion = "" }, "has no \"version\" label"},
		"selector lacks version": {func(s *Subject) { delete(s.Old.Spec.Selector.MatchLabels, VersionLabel) }, "selector does not match"},
		"same version":           {func(s *Subject) { s.NewVersion = "v1" }, "already runs version"},
		"bad version":            {func(s *Subject) { s.NewVersion = "v 2" }, "not a label value"},
		"service elsewhere":      {func(s *Subject) { s.Service.Spec.Selector = map[string]string{"app": "other"} }, "does not select its pods"},
		"service on version":     {func(s *Subject) { s.Service.Spec.Selector[VersionLabel] = "v1" }, "selects on \"version\""},
	} {
		s := subject()
		s.Old.Spec.Selector.MatchLabels = map[string]string{"app": "echo", VersionLabel: "v1"}
		tc.mutate(&s)
		if err := CheckSubject(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

func TestNewDeployment(t *testing.T) {
	s := subject()
	d, err := NewDeployment(s.Old, "v1", "v2", "", "img:2")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "echo-v2" || d.Spec.Selector.MatchLabels[VersionLabel] != "v2" || d.Spec.Template.Labels[VersionLabel] != "v2" || d.Labels[VersionLabel] != "v2" {
		t.Errorf("new deployment %s selector %v template %v", d.Name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if d.Spec.Template.Spec.Containers[0].Image != "img:2" || s.Old.Spec.Template.Spec.Containers[0].Image != "img:1" {
		t.Errorf("images: new %s, old %s (the old must not change)", d.Spec.Template.Spec.Containers[0].Image, s.Old.Spec.Template.Spec.Containers[0].Image)
	}
	if s.Old.Spec.Template.Labels[VersionLabel] != "v1" {
		t.Error("the old deployment's template was changed")
	}
	if _, err := NewDeployment(s.Old, "v1", "v2", "missing", "img:2"); err == nil {
		t.Error("a missing container was accepted")
	}
	if NewName("echo", "v1", "v2") != "echo-v2" {
		t.Errorf("NewName(echo) = %s", NewName("echo", "v1", "v2"))
	}
}

func TestVirtualServiceLeavesOutZeroWeights(t *testing.T) {
	vs := virtualService("ns", "echo", "echo.ns.svc.cluster.local", nil, weighted{"v1", 0}, weighted{"v2", 100})
	http := vs.Object["spec"].(map[string]any)["http"].([]any)
	route := http[0].(map[string]any)["route"].([]any)
	if len(route) != 1 || route[0].(map[string]any)["destination"].(map[string]any)["subset"] != "v2" {
		t.Errorf("route = %v, want only subset v2", route)
	}
}

// TestVirtualServiceWarmRoutes: every warm subset gets a route only the
// warm header matches, ahead of the weighted route, so clients build its
// cluster before a weight sends calls to it; a weight with no version is
// the Service itself.
func TestVirtualServiceWarmRoutes(t *testing.T) {
	vs := virtualService("ns", "echo", "echo.ns.svc.cluster.local", []string{"v1", "v2"}, weighted{"", 100})
	http := vs.Object["spec"].(map[string]any)["http"].([]any)
	if len(http) != 3 {
		t.Fatalf("http = %v, want two warm routes and the weighted one", http)
	}
	for i, v := range []string{"v1", "v2"} {
		r := http[i].(map[string]any)
		match := r["match"].([]any)[0].(map[string]any)["headers"].(map[string]any)[WarmHeader].(map[string]any)["exact"]
		dest := r["route"].([]any)[0].(map[string]any)["destination"].(map[string]any)
		if match != v || dest["subset"] != v {
			t.Errorf("warm route %d = %v, want header %s=%s to subset %s", i, r, WarmHeader, v, v)
		}
	}
	dest := http[2].(map[string]any)["route"].([]any)[0].(map[string]any)["destination"].(map[string]any)
	if _, ok := dest["subset"]; ok || dest["host"] != "echo.ns.svc.cluster.local" {
		t.Errorf("weighted route destination = %v, want the host with no subset", dest)
	}
}
