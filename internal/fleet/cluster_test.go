package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	p := writeFile(t, `clusters:
- name: prod
  labels: {env: prod}
- name: dev
  context: kind-dev
  kubeconfig: /tmp/k
  labels: {env: dev}
- name: lab
  kubeconfig: /tmp/lab
`)
	cs, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].Name != "dev" || cs[0].Context != "kind-dev" || cs[0].KubeconfigPath != "/tmp/k" || cs[1].Context != "" || cs[2].Context != "prod" {
		t.Fatalf("clusters = %+v", cs)
	}
	if got := Select(cs, labels.SelectorFromSet(labels.Set{"env": "prod"})); len(got) != 1 || got[0].Name != "prod" {
		t.Errorf("Select(env=prod) = %+v", got)
	}
}

func TestLoadFileRejects(t *testing.T) {
	for name, body := range map[string]string{
		"unknown field": "clusters:\n- name: a\n  contxt: b\n",
		"no name":       "clusters:\n- context: b\n",
		"duplicate":     "clusters:\n- name: a\n- name: a\n",
		"empty":         "clusters: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadFile(writeFile(t, body)); err == nil {
				t.Fatalf("LoadFile accepted %q", body)
			}
		})
	}
}

func TestFromSecret(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prod-kubeconfig", Namespace: DefaultNamespace,
		Labels: map[string]string{LabelCluster: "prod", "env": "prod"}}, Data: map[string][]byte{KeyValue: []byte("x")}}
	c, err := FromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "prod" || c.Labels["env"] != "prod" || c.Labels[LabelCluster] != "" || string(c.Kubeconfig) != "x" {
		t.Errorf("cluster = %+v", c)
	}
	s.Data = map[string][]byte{"token": []byte("x")}
	_, err = FromSecret(s)
	if err == nil || !strings.Contains(err.Error(), `neither a "kubeconfig" nor a "value" key`) {
		t.Errorf("secret without kubeconfig: err = %v", err)
	}
}
