// Package traffic moves an application's traffic from one version to the
// next by Istio routing instead of by a rolling update (seed 002): the new
// version runs beside the old as its own Deployment, a DestinationRule names
// a subset per version (by the pods' version label), and a VirtualService
// shifts the weight between the subsets in gated steps; once all traffic has
// reached the new version, and the mesh has had time to act on it, the old
// Deployment and its subset are removed.
//
// A rolling update deletes old pods while clients may still send to them
// (their proxies learn of the deletion only later), so requests fail; here a
// pod is deleted only after every client's route has stopped naming it.
package traffic
