// Package check finds what would make an Istio upgrade unsafe or leave it
// unfinished, from an inventory.Snapshot alone (no cluster), so `meshroll
// check` and the planner agree on what is wrong.
//
// Every finding has a stable code; scripts may match on it. One finding is
// reported per object and problem, never per pod; messages carry pod counts.
//
//	| Code                     | Severity | Object        | Problem                                                                  |
//	|--------------------------|----------|---------------|--------------------------------------------------------------------------|
//	| namespace-both-labels    | warning  | Namespace     | istio-injection and istio.io/rev both set; istio-injection wins          |
//	| namespace-revision-missing | error  | Namespace     | istio.io/rev names no installed revision or tag; new pods get no sidecar |
//	| pod-rev-overridden       | warning  | workload      | pod istio.io/rev label ignored because the namespace selects a revision  |
//	| proxy-stale              | warning  | workload      | sidecar image differs from what its revision's injector injects now      |
//	| sidecar-missing          | warning  | workload      | pods without sidecar although their namespace/labels select a revision   |
//	| revision-missing         | error    | workload      | sidecars injected by a revision that no longer exists                    |
//	| skew-unsupported         | error    | workload      | sidecar version outside Istio's supported skew with its control plane    |
//	| skew-behind              | info     | workload      | sidecar trails its control plane within the supported skew               |
//	| workload-not-restartable | warning  | workload      | meshed Job, CronJob, bare Pod, OnDelete StatefulSet: restart cannot move it |
//	| terminated-pods-pin      | warning  | workload      | Succeeded/Failed pods with sidecars keep a revision in use until deleted |
//	| webhook-service-missing  | error    | webhook       | webhook (injector, tag or validator) targets a missing Service           |
//	| tag-revision-missing     | error    | Tag           | revision tag points at a revision that is not installed                  |
//
// Findings come sorted by severity (errors first), then code, then object.
package check
