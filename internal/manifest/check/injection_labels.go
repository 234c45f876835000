package check

import (
	"fmt"

	"github.com/meshroll/meshroll/internal/istio"
)

// injectionLabels reports namespaces labelled both istio-injection and
// istio.io/rev: istio-injection wins, so the namespace silently stays on the
// default revision and a canary migration never reaches it.
type injectionLabels struct{}

// Name implements Checker.
func (injectionLabels) Name() string { return "injection-labels" }

// Code implements Checker.
func (injectionLabels) Code() string { return "MV015" }

// Run implements Checker.
func (c injectionLabels) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if !is(u, "", "Namespace") {
			continue
		}
		l := u.GetLabels()
		inj, hasInj := l[istio.LabelInjection]
		rev, hasRev := l[istio.LabelRev]
		if hasInj && hasRev {
			out = append(out, finding(c, Error, ref(u),
				fmt.Sprintf("namespace has both %s=%s and %s=%s; %s takes precedence", istio.LabelInjection, inj, istio.LabelRev, rev, istio.LabelInjection),
				"remove "+istio.LabelInjection+" and keep "+istio.LabelRev))
		}
	}
	return out
}
