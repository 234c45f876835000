package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// ready is a fully ready colour with n replicas.
func ready(rev string, n int32) Colour {
	return Colour{Revision: rev, Deployment: "ingress-" + rev, Desired: n, Updated: n, ReadyReplicas: n, Available: n, Generation: 2, ObservedGeneration: 2}
}

func TestColourReady(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Colour)
		want bool
	}{
		{"all ready", func(*Colour) {}, true},
		{"scaled to zero", func(c *Colour) { *c = Colour{Revision: "r"} }, false},
		{"generation not observed", func(c *Colour) { c.ObservedGeneration = 1 }, false},
		{"one not updated", func(c *Colour) { c.Updated = 1 }, false},
		{"one not ready", func(c *Colour) { c.ReadyReplicas = 1 }, false},
		{"one not available", func(c *Colour) { c.Available = 1 }, false},
		{"surge above desired", func(c *Colour) { c.ReadyReplicas, c.Available = 3, 3 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ready("r", 2)
			tt.mod(&c)
			if got := c.Ready(); got != tt.want {
				t.Errorf("Ready() = %v, want %v (%+v)", got, tt.want, c)
			}
		})
	}
}

func TestColourOf(t *testing.T) {
	two := int32(2)
	dep := func(gwLabel, rev string) *appsv1.Deployment {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "ingress-" + rev, Generation: 3, Labels: map[string]string{LabelGateway: gwLabel}, Annotations: map[string]string{AnnotationVersion: "1.24.2"}},
			Spec:       appsv1.DeploymentSpec{Replicas: &two},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: 3, UpdatedReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1},
		}
		if rev != "" {
			d.Spec.Template.Labels = map[string]string{istio.LabelRev: rev}
		}
		return d
	}
	tests := []struct {
		name   string
		d      *appsv1.Deployment
		want   Colour
		wantOK bool
	}{
		{"colour", dep("ingress", "1-24-2"), Colour{Revision: "1-24-2", Version: "1.24.2", Deployment: "ingress-1-24-2", Desired: 2, Updated: 2, ReadyReplicas: 1, Available: 1, Generation: 3, ObservedGeneration: 3}, true},
		{"other gateway", dep("egress", "1-24-2"), Colour{}, false},
		{"no revision", dep("ingress", ""), Colour{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ColourOf(tt.d, "ingress")
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("ColourOf() = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLiveRevision(t *testing.T) {
	tests := []struct {
		name     string
		selector map[string]string
		want     string
		wantErr  string
	}{
		{"one colour", map[string]string{LabelGateway: "ingress", istio.LabelRev: "1-23-2"}, "1-23-2", ""},
		{"other gateway", map[string]string{LabelGateway: "egress", istio.LabelRev: "1-23-2"}, "", "does not select gateway"},
		{"no gateway label", map[string]string{istio.LabelRev: "1-23-2"}, "", "does not select gateway"},
		{"no revision: all colours", map[string]string{LabelGateway: "ingress"}, "", "names no revision"},
		{"empty revision", map[string]string{LabelGateway: "ingress", istio.LabelRev: ""}, "", "names no revision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LiveRevision(tt.selector, "ingress")
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("LiveRevision() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExposeRevision(t *testing.T) {
	one := []Colour{ready("1-23-2", 1)}
	two := []Colour{ready("1-24-2", 1), ready("1-23-2", 1)}
	tests := []struct {
		name        string
		colours     []Colour
		current, to string
		want        string
		wantErr     string
	}{
		{"single colour", one, "", "", "1-23-2", ""},
		{"none installed", nil, "", "", "", "no gateway colour is installed"},
		{"two without --to", two, "", "", "", "2 gateway colours are installed (1-23-2, 1-24-2): choose one with --to"},
		{"two with --to", two, "", "1-24-2", "1-24-2", ""},
		{"--to unknown", two, "", "1-25-1", "", `no gateway colour for revision "1-25-1" (installed: 1-23-2, 1-24-2)`},
		{"existing service keeps its colour", two, "1-24-2", "", "1-24-2", ""},
		{"existing service's colour gone, one left", one, "1-22-0", "", "1-23-2", ""},
		{"existing service's colour gone, two left", two, "1-22-0", "", "", "choose one with --to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ExposeRevision(tt.colours, tt.current, tt.to)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("ExposeRevision() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckSwitch(t *testing.T) {
	scaledDown := ready("1-24-2", 0)
	rolling := ready("1-24-2", 3)
	rolling.Updated = 2
	tests := []struct {
		name    string
		colours []Colour
		to      string
		wantErr string
	}{
		{"ready target", []Colour{ready("1-23-2", 2), ready("1-24-2", 1)}, "1-24-2", ""},
		{"missing target", []Colour{ready("1-23-2", 2)}, "1-24-2", `no gateway colour for revision "1-24-2" (installed: 1-23-2)`},
		{"no colours", nil, "1-24-2", "(installed: none)"},
		{"scaled to zero", []Colour{ready("1-23-2", 2), scaledDown}, "1-24-2", "is not ready: it is scaled to 0 replicas"},
		{"rolling out", []Colour{ready("1-23-2", 2), rolling}, "1-24-2", "2/3 replicas updated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, CheckSwitch(tt.colours, tt.to), tt.wantErr)
		})
	}
}

func TestSelectorPatch(t *testing.T) {
	got, err := SelectorPatch("ingress", "42", "1-23-2", "1-24-2")
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]string
	if err := json.Unmarshal(got, &ops); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
		{"op": "test", "path": "/spec/selector/meshroll.io~1gateway", "value": "ingress"},
		{"op": "test", "path": "/spec/selector/istio.io~1rev", "value": "1-23-2"},
		{"op": "replace", "path": "/spec/selector/istio.io~1rev", "value": "1-24-2"},
	}
	if d := cmp.Diff(want, ops); d != "" {
		t.Errorf("SelectorPatch() (-want +got):\n%s", d)
	}
	for _, missing := range [][3]string{{"", "a", "b"}, {"1", "", "b"}, {"1", "a", ""}} {
		if _, err := SelectorPatch("ingress", missing[0], missing[1], missing[2]); err == nil {
			t.Errorf("SelectorPatch(%q) succeeded, want an error", missing)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		wantErr string
	}{
		{"80:8080", Port{Name: "port-80", Port: 80, TargetPort: 8080}, ""},
		{"443", Port{Name: "port-443", Port: 443, TargetPort: 443}, ""},
		{" 15021:15021 ", Port{Name: "port-15021", Port: 15021, TargetPort: 15021}, ""},
		{"http", Port{}, `"http" is not a port number`},
		{"80:", Port{}, `"" is not a port number`},
		{"0:80", Port{}, `"0" is not a port number`},
		{"80:70000", Port{}, `"70000" is not a port number`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePort(tt.in)
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("ParsePort(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestServiceFor(t *testing.T) {
	u := ServiceFor("istio-ingress", "ingress", "1-23-2", []Port{{Name: "http", Port: 80, TargetPort: 8080}})
	var svc corev1.Service
	b, _ := json.Marshal(u.Object)
	if err := json.Unmarshal(b, &svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Labels[LabelManagedBy] != ManagedBy {
		t.Errorf("service type %q, labels %v; want LoadBalancer managed by meshroll", svc.Spec.Type, svc.Labels)
	}
	if d := cmp.Diff(map[string]string{LabelGateway: "ingress", istio.LabelRev: "1-23-2"}, svc.Spec.Selector); d != "" {
		t.Errorf("selector (-want +got):\n%s", d)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("ports = %+v, want 80->8080", svc.Spec.Ports)
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Errorf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not contain %q", err, want)
	}
}
