// Package v1alpha1 holds meshroll's custom resources. A MeshUpgrade is the
// record of one data-plane migration between two Istio revisions: its spec is
// what the operator asked for, its status is the engine's only memory, so a
// killed CLI or a failed-over controller resumes from it.
//
// +kubebuilder:object:generate=true
// +groupName=meshroll.io
package v1alpha1
