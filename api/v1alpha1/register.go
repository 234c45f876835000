package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of every meshroll resource.
var GroupVersion = schema.GroupVersion{Group: "meshroll.io", Version: "v1alpha1"}

// Resource is the plural resource name of MeshUpgrade, used by dynamic and
// REST clients.
const Resource = "meshupgrades"

// GroupVersionResource addresses MeshUpgrades for dynamic clients.
var GroupVersionResource = GroupVersion.WithResource(Resource)

// AddToScheme registers the types of this package in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &MeshUpgrade{}, &MeshUpgradeList{}, &MeshUpgradeRecord{}, &MeshUpgradeRecordList{},
		&FleetUpgrade{}, &FleetUpgradeList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
