package check

import "testing"

func TestSingleReplicaPDB(t *testing.T) {
	dep := func(replicas string) string { return deploymentFixture("web", "a", replicas, "", goodContainer) }
	runCases(t, singleReplicaPDB{}, []checkCase{
		{name: "two replicas", fixture: docs(dep("2"), pdbFixture("p", "a", "web", "minAvailable: 1")), want: none},
		{name: "one replica no pdb", fixture: dep("1"), want: none},
		{name: "one replica maxUnavailable 1", fixture: docs(dep("1"), pdbFixture("p", "a", "web", "maxUnavailable: 1")), want: none},
		{name: "default replicas with pdb", fixture: docs(dep(""), pdbFixture("p", "a", "web", "minAvailable: 1")), want: []Severity{Warning}},
		{name: "hpa min 1 like istiod", fixture: docs(dep(""), hpaFixture("h", "a", "web", "1", "5"), pdbFixture("p", "a", "web", "minAvailable: 1")), want: []Severity{Warning}},
		{name: "hpa min 2", fixture: docs(dep(""), hpaFixture("h", "a", "web", "2", "5"), pdbFixture("p", "a", "web", "minAvailable: 1")), want: none},
	})
}
