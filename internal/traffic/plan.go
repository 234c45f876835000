package traffic

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// VersionLabel is the pod label that tells versions apart, as Istio's own
// examples and the DestinationRule subsets use it.
const VersionLabel = "version"

// DefaultSteps are the new version's weights, in percent, when none are
// given.
var DefaultSteps = []int{10, 50, 100}

// ValidateSteps checks that steps are percentages that only grow and end at
// 100: a step back or a rollout that never finishes is a typo.
func ValidateSteps(steps []int) error {
	if len(steps) == 0 {
		return fmt.Errorf("invalid steps %v: give at least one weight, ending at 100 (e.g. 10,50,100)", steps)
	}
	for i, w := range steps {
		if w < 1 || w > 100 {
			return fmt.Errorf("invalid steps %v: weight %d is not between 1 and 100", steps, w)
		}
		if i > 0 && w <= steps[i-1] {
			return fmt.Errorf("invalid steps %v: weights must grow (%d after %d)", steps, w, steps[i-1])
		}
	}
	if steps[len(steps)-1] != 100 {
		return fmt.Errorf("invalid steps %v: the last weight must be 100 so the old version can be removed", steps)
	}
	return nil
}

// Subject is what a rollout works on: the running version's Deployment and
// the Service its clients call.
type Subject struct {
	Old        *appsv1.Deployment
	Service    *corev1.Service
	OldVersion string
	NewVersion string
}

// CheckSubject refuses a Deployment and Service that subsets cannot split:
// the pod template needs a version label that its selector also uses (so
// the two Deployments' pods never mix) and the Service must select both
// versions (so its selector must not name the version).
func CheckSubject(s Subject) error {
	d, svc := s.Old, s.Service
	key := d.Namespace + "/" + d.Name
	if s.OldVersion == "" {
		return fmt.Errorf("failed to roll out deployment %q: its pod template has no %q label; add %s=<current version> to spec.template.metadata.labels and spec.selector.matchLabels",
			key, VersionLabel, VersionLabel)
	}
	if d.Spec.Selector == nil || d.Spec.Selector.MatchLabels[VersionLabel] != s.OldVersion {
		return fmt.Errorf("failed to roll out deployment %q: its selector does not match on %q, so it would adopt the new version's pods; add %s=%s to spec.selector.matchLabels",
			key, VersionLabel, VersionLabel, s.OldVersion)
	}
	if s.NewVersion == s.OldVersion {
		return fmt.Errorf("failed to roll out deployment %q: it already runs version %q; pass the new version with --version", key, s.OldVersion)
	}
	if err := validLabelValue(s.NewVersion); err != nil {
		return fmt.Errorf("failed to roll out deployment %q: version %q: %w", key, s.NewVersion, err)
	}
	sel := svc.Spec.Selector
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
		return fmt.Errorf("failed to roll out deployment %q: service %q does not select its pods; pass the service its clients call with --service",
			key, svc.Namespace+"/"+svc.Name)
	}
	if _, ok := sel[VersionLabel]; ok {
		return fmt.Errorf("failed to roll out deployment %q: service %q selects on %q, so it can never reach the new version; remove %s from its selector (the subsets split by version)",
			key, svc.Namespace+"/"+svc.Name, VersionLabel, VersionLabel)
	}
	return nil
}

func validLabelValue(v string) error {
	if v == "" || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return fmt.Errorf("not a label value (1-63 letters, digits, '-', '_', '.')")
	}
	return nil
}

// NewName is the new version's Deployment name: the old name with its
// version suffix replaced (echo-v1 → echo-v2), else the old name plus the
// new version.
func NewName(old, oldVersion, newVersion string) string {
	if base, ok := strings.CutSuffix(old, "-"+oldVersion); ok {
		return base + "-" + newVersion
	}
	return old + "-" + newVersion
}

// NewDeployment is the new version beside old: the same spec with the
// version label (template and selector) set to version and, when image is
// set, container's image replaced (the first container when container is
// empty).
func NewDeployment(old *appsv1.Deployment, oldVersion, version, container, image string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	d.APIVersion, d.Kind = "apps/v1", "Deployment"
	d.Name = NewName(old.Name, oldVersion, version)
	d.Namespace = old.Namespace
	d.Labels = maps.Clone(old.Labels)
	if _, ok := d.Labels[VersionLabel]; ok {
		d.Labels[VersionLabel] = version
	}
	d.Annotations = nil
	d.Spec = *old.Spec.DeepCopy()
	d.Spec.Selector.MatchLabels = withVersion(d.Spec.Selector.MatchLabels, version)
	d.Spec.Template.Labels = withVersion(d.Spec.Template.Labels, version)
	if image == "" {
		return d, nil
	}
	cs := d.Spec.Template.Spec.Containers
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return container == "" || c.Name == container })
	if i < 0 {
		return nil, fmt.Errorf("failed to set image of deployment %q: it has no container %q", old.Namespace+"/"+old.Name, container)
	}
	cs[i].Image = image
	return d, nil
}

// withVersion copies m with the version label set.
func withVersion(m map[string]string, version string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	out[VersionLabel] = version
	return out
}
