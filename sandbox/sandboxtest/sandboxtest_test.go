package sandboxtest_test

import (
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) {
	os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(10)))
}

func TestSandboxIsShared(t *testing.T) {
	if _, err := os.Stat(sandboxtest.Kubeconfig(t)); err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	cs := kubernetes.NewForConfigOrDie(sandboxtest.Config(t))
	nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: "type=kwok"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 10 {
		t.Errorf("got %d fake nodes, want 10", len(nodes.Items))
	}
	if _, err := cs.CoreV1().ServiceAccounts("default").Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default service account: %v", err)
	}
}
