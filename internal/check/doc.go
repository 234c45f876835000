// Package check finds what would make an Istio upgrade unsafe or leave it
// unfinished, from an inventory.Snapshot alone (no cluster), so `meshroll
// check` and the planner agree on what is wrong.
//
// Every finding has a stable code; scripts may match on it. One finding is
// reported per object and problem, never per pod; messages carry pod counts.
//
//	| Code                     | Severity | Object        | Problem                                                                  |
//	|--------------------------|----------|---------------|--------------------------------------------------------------------------|
//	| namespace-both-labels    | warning  | Namespace     | istio-injection=enabled beside istio.io/rev; the revision label is ignored (istio-injection=disabled is an opt-out, never a conflict) |
//	| namespace-injection-value-unknown | warning | Namespace | istio-injection is neither enabled nor disabled: nothing injects the namespace |
//	| namespace-ambient-and-sidecar | warning | Namespace  | istio.io/dataplane-mode=ambient and sidecar injection at once            |
//	| namespace-not-injected   | info     | Namespace     | no injection label while other namespaces are injected: pods run without sidecars |
//	| namespace-injected-by-default | info | Namespace    | no injection label, injected by enableNamespacesByDefault                |
//	| namespace-proxies-stale  | info     | Namespace     | roll-up: pods in the namespace running images their injectors no longer inject |
//	| namespace-revision-missing | error  | Namespace     | istio.io/rev names no installed revision or tag; new pods get no sidecar |
//	| pod-rev-overridden       | warning  | workload      | pod istio.io/rev label ignored because the namespace selects a revision  |
//	| proxy-stale              | warning  | workload      | sidecar image differs from what its revision's injector would inject into that pod now (pins and image types included) |
//	| proxy-revision-unknown   | warning  | workload      | sidecar that no evidence ties to a revision (see package inventory)      |
//	| proxy-image-auto         | error/warning | Pod/workload | istio-proxy says image: auto where nothing injects it: pods cannot start |
//	| sidecar-missing          | warning  | workload      | pods without sidecar although their namespace/labels select a revision   |
//	| revision-missing         | error    | workload      | sidecars injected by a revision that no longer exists                    |
//	| skew-unsupported         | error    | workload      | sidecar version outside Istio's supported skew with its control plane    |
//	| skew-behind              | info     | workload      | sidecar trails its control plane within the supported skew               |
//	| workload-not-restartable | warning  | workload      | meshed Job, CronJob, bare Pod, OnDelete StatefulSet: restart cannot move it |
//	| terminated-pods-pin      | warning  | workload      | Succeeded/Failed pods with sidecars keep a revision in use until deleted |
//	| webhook-service-missing  | error    | webhook       | webhook (injector, tag or validator) targets a missing Service           |
//	| tag-revision-missing     | error    | Tag           | revision tag points at a revision that is not installed                  |
//	| tag-installer-labels     | warning  | Tag           | tag webhook carries operator.istio.io labels: istioctl's purge deletes it |
//	| vm-agent-unreachable     | warning  | WorkloadEntry | meshroll-agent's heartbeat is older than --stale-after: an upgrade cannot move the VM (meshroll vm status) |
//	| vm-proxy-stale           | warning  | WorkloadEntry | the VM runs another revision/version than it is assigned                 |
//	| vm-upgrade-failed        | error    | WorkloadEntry | the agent gave up on its assignment (Failed, RolledBack) and says why     |
//	| vm-revision-missing      | error    | WorkloadEntry | the VM is assigned or runs a revision that is not installed              |
//	| vm-override              | info     | WorkloadEntry | a break-glass override file on the VM decides its version                |
//
// Findings come sorted by severity (errors first), then code, then object.
//
// Every fix keeps three promises, pinned by tests that run the fixes with
// kubectl on the sandbox: it never removes an opt-out (istio-injection=disabled,
// sidecar.istio.io/inject=false), never suggests a restart that cannot change
// the pods (no injector selects them, or the template carries its own
// sidecar), and never names a revision or tag that is not installed.
package check
