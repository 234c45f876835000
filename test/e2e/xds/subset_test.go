//go:build linux

package xds_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

var destinationRuleGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}

// TestAppRolloutBySubsetsLosesNoRequest is seed 002 on the real xDS data
// plane, with servers that exit at once on SIGTERM (no drain handling):
// first a plain rolling update of them (a new build), which the harness
// must see losing calls, then `meshroll app rollout` to version v2 —
// DestinationRule subsets, VirtualService weights 10/50/100, each change
// waited for until istiod reports every proxy acknowledged it, the old
// Deployment removed once no route names it — which must lose none.
func TestAppRolloutBySubsetsLosesNoRequest(t *testing.T) {
	e := newEnv(t)
	e.install(t, toVersion)
	m := e.deployMesh(t, "subset", toRev, "echo-v1", noDrain)
	defer e.deleteNamespaces(t, m.echoNS, m.clientNS)

	start := time.Now()
	time.Sleep(quiet)
	rollStart := time.Now()
	build := []byte(`{"spec":{"template":{"metadata":{"annotations":{"app.meshroll.io/build":"2"}}}}}`)
	if _, err := e.kube.AppsV1().Deployments(m.echoNS).Patch(t.Context(), "echo-v1", types.MergePatchType, build, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitAvailable(t, 3*time.Minute, m.servers)
	time.Sleep(3 * time.Second) // the calls cut last have reached their deadline
	rollEnd := time.Now()
	time.Sleep(quiet)

	// --dry-run checks and prints the plan and writes nothing.
	dry := meshroll(t, "app", "rollout", "echo-v1", "-n", m.echoNS, "--service", "echo", "--version", "v2", "--dry-run")
	if !strings.Contains(dry, "dry run: would route echo."+m.echoNS+".svc.cluster.local by subsets v1/v2") {
		t.Errorf("dry run printed %q", dry)
	}
	if _, err := e.dyn.Resource(destinationRuleGVR).Namespace(m.echoNS).Get(t.Context(), "echo", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("DestinationRule after --dry-run: %v, want none", err)
	}

	// Each step waits until istiod reports every proxy acknowledged it,
	// then bakes --step-wait (the time gates would measure), so that each
	// weight is seen in the answers.
	switchStart := time.Now()
	out := meshroll(t, "app", "rollout", "echo-v1", "-n", m.echoNS, "--service", "echo", "--version", "v2",
		"--steps", "10,50,100", "--step-wait", "3s")
	switchEnd := time.Now()
	t.Logf("meshroll app rollout (%s):\n%s", switchEnd.Sub(switchStart).Round(100*time.Millisecond), out)
	time.Sleep(quiet)
	end := time.Now()
	l := e.stopClients(t, m)

	sums := report(t, l, start, []phase{
		{"before", start, rollStart}, {"rolling", rollStart, rollEnd}, {"between", rollEnd, switchStart},
		{"subsets", switchStart, switchEnd}, {"after", switchEnd, end},
	})
	before, rolling, between, subsets, after := sums[0], sums[1], sums[2], sums[3], sums[4]
	if rolling.fail == 0 {
		t.Error("the plain rolling update of servers without drain lost no call: the harness cannot see failures")
	}
	for _, s := range []summary{before, between, subsets, after} {
		if s.fail != 0 {
			t.Errorf("%s: %d of %d calls failed; want 0", s.name, s.fail, s.ok+s.fail)
		}
	}
	if subsets.versions["v1"] == 0 || subsets.versions["v2"] == 0 {
		t.Errorf("answers during the switch by version %v; want both v1 and v2", subsets.versions)
	}
	if after.versions["v1"] != 0 || after.versions["v2"] == 0 {
		t.Errorf("answers after the switch by version %v; want only v2", after.versions)
	}
	t.Logf("MEASURE seed 002: plain rolling update %d of %d calls failed (%.2f%%, %v); subset switch %d of %d failed",
		rolling.fail, rolling.ok+rolling.fail, 100*float64(rolling.fail)/float64(max(rolling.ok+rolling.fail, 1)), rolling.codes,
		subsets.fail, subsets.ok+subsets.fail)

	// The old version is gone; only its successor's subset is left.
	if _, err := e.kube.AppsV1().Deployments(m.echoNS).Get(t.Context(), "echo-v1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("deployment echo-v1 after the rollout: %v, want it deleted", err)
	}
	dr, err := e.dyn.Resource(destinationRuleGVR).Namespace(m.echoNS).Get(t.Context(), "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	subsetsNames := fmt.Sprint(dr.Object["spec"].(map[string]any)["subsets"])
	if strings.Contains(subsetsNames, "v1") || !strings.Contains(subsetsNames, "v2") {
		t.Errorf("DestinationRule subsets after the rollout: %s; want only v2", subsetsNames)
	}
}
