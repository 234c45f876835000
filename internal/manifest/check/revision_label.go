package check

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/istio"
)

// revisionLabel reports revisioned Istio objects (named after a revision,
// e.g. istiod-1-23-2, istio-sidecar-injector-1-23-2) that lack the
// istio.io/rev label or carry another revision's value. Revision tags,
// uninstall and meshroll's inventory all find a revision's objects by that label.
type revisionLabel struct{}

// Name implements Checker.
func (revisionLabel) Name() string { return "revision-label" }

// Code implements Checker.
func (revisionLabel) Code() string { return "MV014" }

// revisionedKinds are the kinds an istiod chart stamps with istio.io/rev.
var revisionedKinds = map[string]bool{
	"Deployment": true, "Service": true, "ConfigMap": true, "MutatingWebhookConfiguration": true,
	"HorizontalPodAutoscaler": true, "PodDisruptionBudget": true,
}

// Run implements Checker.
func (c revisionLabel) Run(in *Input) []Finding {
	revs := map[string]bool{}
	for _, u := range in.Objects {
		if r := u.GetLabels()[istio.LabelRev]; r != "" && r != istio.DefaultRevision {
			revs[r] = true
		}
	}
	var out []Finding
	for _, u := range in.Objects {
		if !revisionedKinds[u.GetKind()] {
			continue
		}
		for rev := range revs {
			if !strings.HasSuffix(u.GetName(), "-"+rev) || !strings.HasPrefix(u.GetName(), "istio") {
				continue
			}
			switch got, ok := u.GetLabels()[istio.LabelRev]; {
			case !ok:
				out = append(out, finding(c, Warning, ref(u), fmt.Sprintf("object of revision %q has no %s label", rev, istio.LabelRev),
					fmt.Sprintf("add label %s: %s", istio.LabelRev, rev)))
			case got != rev:
				out = append(out, finding(c, Error, ref(u), fmt.Sprintf("object named for revision %q is labelled %s=%s", rev, istio.LabelRev, got),
					"render every component with the same revision value"))
			}
		}
	}
	return out
}
