// Package demo seeds a cluster with the workloads of a realistic service mesh, so that meshroll's
// inventory, planning and migration can be demonstrated and tested against something that looks
// like production: hundreds of workloads in dozens of namespaces, every way Istio lets users opt
// into injection, and the awkward cases an upgrade must notice.
//
// Build turns Options into a Plan without touching a cluster (it is pure and deterministic), so the
// same plan is both what Apply creates and, through Plan.Expect, the answer key that `meshroll
// status` and `meshroll check` are tested against. The revision each pod should be injected by is
// derived from a model of Istio 1.23's injection webhooks (see Injector), not hard-coded per
// workload, so that the answer key follows the labels and not the other way round.
//
// SeedScale is the other half: for benchmarks it writes tens of thousands of already-injected pods
// directly, owned by ReplicaSets and Deployments that kube-controller-manager accepts as its own,
// which is an order of magnitude faster than letting the controllers and the scheduler create them.
package demo
