package check

import "testing"

func TestHPAReplicas(t *testing.T) {
	runCases(t, hpaReplicas{}, []checkCase{
		{name: "range", fixture: hpaFixture("h", "a", "web", "2", "5"), want: none},
		{name: "min above max", fixture: hpaFixture("h", "a", "web", "6", "5"), want: []Severity{Error}},
		{name: "max zero", fixture: hpaFixture("h", "a", "web", "1", "0"), want: []Severity{Error}},
		{name: "min equals max", fixture: hpaFixture("h", "a", "web", "3", "3"), want: []Severity{Info}},
	})
}
