package check

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// invalidLabels reports label keys and values, and annotation keys, that the
// API server would reject: a template that renders a version with a "+" or a
// 64-character value fails only at apply time.
type invalidLabels struct{}

// Name implements Checker.
func (invalidLabels) Name() string { return "invalid-labels" }

// Code implements Checker.
func (invalidLabels) Code() string { return "MV027" }

// Run implements Checker.
func (c invalidLabels) Run(in *Input) []Finding {
	var out []Finding
	report := func(obj, what string, errs []string) {
		if len(errs) > 0 {
			out = append(out, finding(c, Error, obj, what+": "+strings.Join(errs, "; "),
				"use at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric, with an optional DNS prefix/ on keys"))
		}
	}
	for _, u := range in.Objects {
		obj := ref(u)
		check := func(where string, labels map[string]string) {
			for k, v := range labels {
				report(obj, where+" label key "+quote(k), validation.IsQualifiedName(k))
				report(obj, where+" label "+quote(k)+" value "+quote(v), validation.IsValidLabelValue(v))
			}
		}
		check("metadata", u.GetLabels())
		for k := range u.GetAnnotations() {
			report(obj, "annotation key "+quote(k), validation.IsQualifiedName(strings.ToLower(k)))
		}
		if labels, _, ok := podTemplate(u); ok && u.GetKind() != "Pod" {
			check("pod template", labels)
		}
	}
	return out
}
