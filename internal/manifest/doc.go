// Package manifest post-processes rendered Istio manifests: it splits CRDs
// from the objects that use them (CRDs must be established first), stamps
// labels, applies patches and diffs revisions. Everything here is pure.
package manifest
