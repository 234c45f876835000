package upgrade

import (
	"errors"
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
)

// CheckOrdering refuses First/Last entries (namespace names or key=value
// namespace label selectors) that match no namespace: a typo there does not
// fail, it silently migrates a critical namespace in an early wave.
func CheckOrdering(entries []string, nsLabels map[string]map[string]string) error {
	var errs []error
	for _, e := range entries {
		if !matchesNamespace(e, nsLabels) {
			errs = append(errs, fmt.Errorf("%q matches no namespace", e))
		}
	}
	return errors.Join(errs...)
}

func matchesNamespace(entry string, nsLabels map[string]map[string]string) bool {
	k, v, sel := strings.Cut(entry, "=")
	if !sel {
		_, ok := nsLabels[entry]
		return ok
	}
	for _, l := range nsLabels {
		if got, ok := l[k]; ok && got == v {
			return true
		}
	}
	return false
}

// CheckExcluded refuses excluded workloads ("Kind namespace/name") that name
// no workload of the snapshot: a typo there does not fail, it silently
// migrates the workload the operator meant to protect.
func CheckExcluded(refs []string, s *inventory.Snapshot) error {
	known := make(map[string]bool, len(s.Workloads))
	for _, w := range s.Workloads {
		known[w.Kind+" "+w.Namespace+"/"+w.Name] = true
	}
	var errs []error
	for _, r := range refs {
		if !known[r] {
			errs = append(errs, fmt.Errorf("%q names no workload in the cluster (`meshroll status --workloads` lists them as \"Kind namespace/name\")", r))
		}
	}
	return errors.Join(errs...)
}
