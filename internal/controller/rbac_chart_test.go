package controller

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestChartRBACGenerated fails when the chart's ClusterRole or Role differ
// from what Rules and CertRules generate: the chart then grants something
// the preflight does not check for, or misses something it does (the
// controller would stall on its own preflight). `make generate` fixes it.
func TestChartRBACGenerated(t *testing.T) {
	for name, want := range ChartTemplates() {
		got, err := os.ReadFile(filepath.Join("..", "..", "charts", "meshroll", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("charts/meshroll/%s differs from what internal/controller/rbac.go generates: run make generate", name)
		}
	}
}

// TestRulesLeastPrivilege: no wildcard, no Secret cluster-wide, no rule
// without a reason above it (or above the rule it continues).
func TestRulesLeastPrivilege(t *testing.T) {
	for i, r := range Rules {
		for _, l := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
			for _, s := range l {
				if s == "*" {
					t.Errorf("rule %d has a wildcard: %+v", i, r.PolicyRule)
				}
			}
		}
		for _, res := range r.Resources {
			if res == "secrets" {
				t.Errorf("rule %d grants Secrets cluster-wide: %+v", i, r.PolicyRule)
			}
		}
		if len(r.Verbs) == 0 || len(r.Resources) == 0 || len(r.APIGroups) == 0 {
			t.Errorf("rule %d grants nothing: %+v", i, r.PolicyRule)
		}
		if len(r.ResourceNames) > 0 {
			t.Errorf("rule %d names resources cluster-wide: %+v", i, r.PolicyRule)
		}
	}
	if Rules[0].Why == "" {
		t.Error("the first rule has no reason")
	}
	// The fleet Role: member Secrets are only ever listed and watched (by
	// the reconciler's informer), never read one by one or written.
	for i, r := range FleetRules {
		if !slices.Equal(r.APIGroups, []string{""}) || !slices.Equal(r.Resources, []string{"secrets"}) || !slices.Equal(r.Verbs, []string{"list", "watch"}) {
			t.Errorf("fleet rule %d grants more than listing and watching Secrets: %+v", i, r.PolicyRule)
		}
	}
}
