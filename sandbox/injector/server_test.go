package injector

import (
	"testing"

	"k8s.io/client-go/rest"
)

func TestRunRejectsMissingCertDir(t *testing.T) {
	err := Run(t.Context(), &rest.Config{Host: "https://127.0.0.1:1"}, Options{Addr: "127.0.0.1:0"})
	if err == nil {
		t.Fatal("Run() without CertDir: want error")
	}
}
