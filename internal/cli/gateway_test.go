package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// runGateway runs `meshroll gateway args...` on a root that has only the
// gateway command (root.go registers it for real), printing errors as Main does.
func runGateway(t *testing.T, args ...string) (string, error) {
	t.Helper()
	kube := genericclioptions.NewConfigFlags(true)
	root := &cobra.Command{Use: "meshroll", SilenceUsage: true, SilenceErrors: true}
	kube.AddFlags(root.PersistentFlags())
	root.AddCommand(newGatewayCmd(kube))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"gateway"}, args...))
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

// fakeColour creates a gateway colour Deployment by hand (no Istio needed:
// its pods opt out of injection), the shape gateway install renders.
func fakeColour(t *testing.T, kc kubernetes.Interface, ns, gw, rev string) {
	t.Helper()
	name := gateway.DeploymentName(gw, rev)
	pod := map[string]string{"app": name, "istio": gw, gateway.LabelGateway: gw, istio.LabelRev: rev, istio.LabelSidecarInject: "false"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{gateway.LabelGateway: gw},
			Annotations: map[string]string{gateway.AnnotationVersion: "1.24.2"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: pod},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.24.2"}}},
			},
		},
	}
	if _, err := kc.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayCommands(t *testing.T) {
	kubeconfig := sandboxtest.Kubeconfig(t)
	kc, err := kubernetes.NewForConfig(sandboxtest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	const ns, gw = "gw-cli", "edge"
	if _, err := kc.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, rev := range []string{"r1", "r2"} {
		fakeColour(t, kc, ns, gw, rev)
		if _, err := gateway.WaitReady(t.Context(), kc, ns, gw, rev, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--kubeconfig", kubeconfig, "--namespace", ns, "--name", gw}
	steps := []struct {
		name    string
		args    []string
		want    string // substring of stdout
		wantErr string // substring of the error
	}{
		{"status before expose", []string{"status"}, "not exposed", ""},
		{"expose needs --to with two colours", []string{"expose"}, "", "2 gateway colours are installed (r1, r2): choose one with --to"},
		{"expose bad port", []string{"expose", "--to", "r1", "--port", "80:http"}, "", `failed to parse port "80:http"`},
		{"expose dry run", []string{"expose", "--to", "r1", "--dry-run"}, "(dry run) Service gw-cli/edge created", ""},
		{"expose", []string{"expose", "--to", "r1", "--port", "80:8080"}, "service selects colour r1", ""},
		{"expose cannot move traffic", []string{"expose", "--to", "r2"}, "", "meshroll gateway switch --name edge --to r2"},
		{"switch dry run", []string{"switch", "--to", "r2", "--dry-run"}, "(dry run) gateway gw-cli/edge switched from r1 to r2", ""},
		{"still r1 after dry run", []string{"status"}, "type LoadBalancer, selects colour r1", ""},
		{"switch", []string{"switch", "--to", "r2"}, "switched from r1 to r2", ""},
		{"switch again is a no-op", []string{"switch", "--to", "r2"}, "already selects colour r2", ""},
		{"switch to missing colour", []string{"switch", "--to", "r3", "--timeout", "1s"}, "", `no gateway colour for revision "r3" (installed: r1, r2)`},
		{"switch back", []string{"switch", "--to", "r1"}, "switched from r2 to r1", ""},
		{"install unknown revision", []string{"install", "--revision", "1-99-0"}, "", `revision "1-99-0" is not installed`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			out, err := runGateway(t, append(s.args, common...)...)
			wantGatewayErr(t, err, s.wantErr)
			if !strings.Contains(out, s.want) {
				t.Errorf("output %q does not contain %q", out, s.want)
			}
		})
	}

	out, err := runGateway(t, append([]string{"status", "-o", "json"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var st gateway.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if st.Live != "r1" || st.ServiceType != "LoadBalancer" || len(st.Colours) != 2 || !st.Colours[0].Ready() || st.Colours[0].Version != "1.24.2" {
		t.Errorf("status = %+v, want live r1 on a LoadBalancer, two ready colours", st)
	}
	svc, err := kc.CoreV1().Services(ns).Get(t.Context(), gw, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != 8080 {
		t.Errorf("service ports %+v, want 80->8080", svc.Spec.Ports)
	}
}

func TestGatewayBadInput(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"status"}, "--name is required"},
		{[]string{"switch", "--name", "x"}, "--to is required"},
		{[]string{"install", "--name", "x"}, "--revision must name an installed revision"},
		{[]string{"status", "--name", "x", "-o", "xml"}, "unknown output format"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := runGateway(t, tt.args...)
			wantGatewayErr(t, err, tt.wantErr)
		})
	}
}

func wantGatewayErr(t *testing.T, err error, want string) {
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
