package check

import "testing"

func TestPDBBlocksEviction(t *testing.T) {
	dep := func(replicas string) string { return deploymentFixture("web", "a", replicas, "", goodContainer) }
	runCases(t, pdbBlocksEviction{}, []checkCase{
		{name: "maxUnavailable 1", fixture: docs(dep("3"), pdbFixture("p", "a", "web", "maxUnavailable: 1")), want: none},
		{name: "minAvailable below replicas", fixture: docs(dep("3"), pdbFixture("p", "a", "web", "minAvailable: 2")), want: none},
		{name: "maxUnavailable 0", fixture: docs(dep("3"), pdbFixture("p", "a", "web", "maxUnavailable: 0")), want: []Severity{Error}},
		{name: "maxUnavailable 0%", fixture: pdbFixture("p", "a", "web", "maxUnavailable: '0%'"), want: []Severity{Error}},
		{name: "minAvailable 100%", fixture: pdbFixture("p", "a", "web", "minAvailable: '100%'"), want: []Severity{Error}},
		{name: "minAvailable equals replicas", fixture: docs(dep("3"), pdbFixture("p", "a", "web", "minAvailable: 3")), want: []Severity{Error}},
		{name: "hpa minReplicas counts", fixture: docs(dep("5"), hpaFixture("h", "a", "web", "2", "5"), pdbFixture("p", "a", "web", "minAvailable: 2")), want: []Severity{Error}},
		{name: "single replica left to MV019", fixture: docs(dep("1"), pdbFixture("p", "a", "web", "minAvailable: 1")), want: none},
		{name: "other namespace", fixture: docs(dep("3"), pdbFixture("p", "b", "web", "minAvailable: 3")), want: none},
	})
}
