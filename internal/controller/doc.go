// Package controller reconciles MeshUpgrades in the cluster: `kubectl apply`
// of a MeshUpgrade alone drives a full upgrade. The reconciler is the shape
// of Flux's source-controller and Sail Operator: fetch, an ordered list of
// sub-steps (permissions, install, plan, step), each returning a typed
// result, and the controller's conditions patched once, in a defer. The
// upgrade itself is internal/upgrade's recorded step list, the very list
// `meshroll upgrade` runs in the foreground: each reconcile takes one
// Engine.Step, and a pause, a bake or a gate's interval is a requeue, never
// a sleep.
package controller
