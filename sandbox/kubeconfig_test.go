package sandbox

import (
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func TestAdminKubeconfig(t *testing.T) {
	files, err := newPKI(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := adminKubeconfig(34567, files)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != contextName {
		t.Errorf("current context = %q, want %q", cfg.CurrentContext, contextName)
	}
	rc, err := restConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"host", rc.Host, "https://127.0.0.1:34567"},
		{"ca", string(rc.CAData), string(files[fileCACert])},
		{"client cert", string(rc.CertData), string(files[fileAdminCert])},
		{"client key", string(rc.KeyData), string(files[fileAdminKey])},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}
