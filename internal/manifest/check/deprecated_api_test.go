package check

import "testing"

const oldPDB = "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: p, namespace: a}\nspec: {minAvailable: 1}\n"

const hpaV2beta2 = "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h, namespace: a}\nspec: {maxReplicas: 2}\n"

func TestDeprecatedAPI(t *testing.T) {
	runCases(t, deprecatedAPI{}, []checkCase{
		{name: "current api", fixture: pdbFixture("p", "a", "x", "minAvailable: 1"), want: none},
		{name: "removed at default target", fixture: oldPDB, want: []Severity{Error}},
		{name: "deprecated but served", fixture: hpaV2beta2, kubeVersion: "1.24", want: []Severity{Warning}},
		{name: "removed in target", fixture: hpaV2beta2, kubeVersion: "v1.26.3", want: []Severity{Error}},
		{name: "fine before deprecation", fixture: hpaV2beta2, kubeVersion: "1.22", want: none},
		{name: "bad target version", fixture: hpaV2beta2, kubeVersion: "2.0", want: []Severity{Error}},
	})
}
