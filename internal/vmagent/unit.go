package vmagent

import _ "embed"

// AgentUnit is the systemd unit that runs meshroll-agent.
//
//go:embed meshroll-agent.service
var AgentUnit string

// SidecarUnit is the systemd unit of the sidecar the agent restarts; it runs
// whatever Root/current points at.
//
//go:embed istio-sidecar.service
var SidecarUnit string

// DefaultRoot is where the agent keeps its versions on a production VM
// (systemd's StateDirectory).
const DefaultRoot = "/var/lib/meshroll-agent"
