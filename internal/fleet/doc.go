// Package fleet is meshroll one level up from a cluster: a fleet is a set of
// member clusters, each with labels (env, region, tier) and a way to reach it
// (a kubeconfig context for the CLI, or a Secret holding a kubeconfig in a hub
// cluster, never credentials inside a custom resource).
//
// Reading the fleet (Collect) runs inventory and check on every member at
// once, bounded by a concurrency limit and a per-cluster timeout, so one slow
// or unreachable member becomes a row with its error instead of failing the
// whole view. Upgrading it (FleetUpgrade) runs each member's own MeshUpgrade
// in ordered stages; the decisions are pure (Next) and the state lives in the
// FleetUpgrade's status in the hub, so a killed engine resumes where it
// stopped.
package fleet
