package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MeshUpgradeRecord holds one slice of a large MeshUpgrade's per-workload
// record. A MeshUpgrade planning tens of thousands of workloads would not fit
// in one object (etcd refuses objects over ~1.5 MB), so past
// RecordInlineLimit entries the engine's store keeps the status summary in
// the MeshUpgrade and the workload and skipped lists in records of at most
// RecordSize entries each, like EndpointSlices for a Service. Records are
// owned by their MeshUpgrade and go away with it. Only the slices that
// changed are written.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
// +kubebuilder:printcolumn:name="Upgrade",type=string,JSONPath=`.upgrade`
// +kubebuilder:printcolumn:name="Index",type=integer,JSONPath=`.index`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MeshUpgradeRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Upgrade names the MeshUpgrade this record belongs to.
	Upgrade string `json:"upgrade"`
	// Index orders the records of one upgrade, from 0.
	// +kubebuilder:validation:Minimum=0
	Index int `json:"index"`
	// Workloads is the slice [Index*RecordSize, (Index+1)*RecordSize) of the
	// upgrade's planned workloads.
	// +optional
	Workloads []WorkloadStatus `json:"workloads,omitempty"`
	// Skipped is the same slice of the upgrade's skipped workloads.
	// +optional
	Skipped []SkippedWorkload `json:"skipped,omitempty"`
}

// MeshUpgradeRecordList is a list of MeshUpgradeRecords.
//
// +kubebuilder:object:root=true
type MeshUpgradeRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MeshUpgradeRecord `json:"items"`
}

// RecordRef is the status's pointer to one MeshUpgradeRecord.
type RecordRef struct {
	// Name of the MeshUpgradeRecord.
	Name string `json:"name"`
	// Workloads and Skipped count the entries it holds.
	// +optional
	Workloads int `json:"workloads,omitempty"`
	// +optional
	Skipped int `json:"skipped,omitempty"`
	// Hash is the SHA-256 of its lists as last written, so that only
	// records whose content changed are written again.
	Hash string `json:"hash"`
}

// Record sizes. RecordInlineLimit keeps small upgrades in one object (what
// `kubectl get mu -o yaml` shows in full). RecordSize keeps each record near
// 80 KB, so recording one window's outcomes rewrites little.
// MaxPlannedWorkloads is what one MeshUpgrade may plan: larger fleets are
// split by namespace selection into several MeshUpgrades.
const (
	RecordInlineLimit   = 1000
	RecordSize          = 250
	MaxPlannedWorkloads = 200000
)

// RecordResource is the plural resource name of MeshUpgradeRecord.
const RecordResource = "meshupgraderecords"

// RecordGroupVersionResource addresses MeshUpgradeRecords for dynamic clients.
var RecordGroupVersionResource = GroupVersion.WithResource(RecordResource)
