package check

import "testing"

func TestSchemaValid(t *testing.T) {
	runCases(t, schemaValid{}, []checkCase{
		{name: "valid deployment", fixture: deploymentWith(goodContainer), want: none},
		{name: "unknown field", fixture: deploymentWith(goodContainer + "\n        imagePullPolicyy: Always"), want: []Severity{Error}},
		{name: "wrong type", fixture: "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\nspec:\n  ports:\n  - port: eighty\n", want: []Severity{Error}},
		{name: "unknown kind is info", fixture: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\nspec: {size: 1}\n", want: []Severity{Info}},
		{name: "custom resource valid against its CRD", fixture: docs(widgetCRD, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\nspec: {size: 1, port: http}\n"), want: none},
		{name: "custom resource invalid against its CRD", fixture: docs(widgetCRD, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: a}\nspec: {size: big, colour: red}\n"), want: []Severity{Error, Error}},
	})
}
