// Package vmagent is the logic of meshroll-agent, the daemon that keeps the
// Istio sidecar of one virtual machine on the revision meshroll assigns it.
//
// meshroll writes the assignment (revision and version) as annotations on the
// VM's WorkloadEntry; the agent reads only that object with a token scoped to
// it (or a local override file for break-glass), downloads the sidecar
// artifact for the version, verifies its SHA-256 and optional ed25519
// signature, unpacks it beside the versions already on disk, renders the
// bootstrap files `istioctl x workload entry configure` writes for the
// revision, switches the `current` symlink atomically, restarts the sidecar
// through a service manager and health-checks it. A failed check switches
// back and restarts the previous version. Every step that changes the VM is
// recorded first in an fsync'd journal, so a kill -9 at any instant is
// resumed or rolled back on the next start. The agent reports its phase,
// running revision and version, last error and a heartbeat back on the
// WorkloadEntry, which is how `meshroll status` and `meshroll upgrade` see
// VM proxies.
//
// The package uses only the standard library: the agent is one static binary
// with no Kubernetes client library.
package vmagent
