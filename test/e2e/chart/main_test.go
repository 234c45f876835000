// Package chart holds the end-to-end tests of meshroll's Helm chart: it is
// installed into the sandbox with the Helm SDK, and meshroll then runs as the
// chart's ServiceAccount (impersonation), so every permission the engine
// needs and the ClusterRole lacks fails the test.
package chart

import (
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithNodes(2))) }

// Names the tests install the chart under.
const (
	releaseNS = "meshroll-system"
	chartSA   = "meshroll"
)

// saUser is the username the API server gives a ServiceAccount's token;
// impersonating it gets exactly the RBAC the chart binds.
func saUser(ns, name string) string { return "system:serviceaccount:" + ns + ":" + name }

// as returns clients that act as user.
func as(t *testing.T, user string) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.QPS, cfg.Burst = 100, 200
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, kc
}
