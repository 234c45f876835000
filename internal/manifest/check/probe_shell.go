package check

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// probeShell reports exec probes that run curl or wget: they fork a process
// every period, fail on distroless images, and with a sidecar they go through
// the mesh. An httpGet probe (rewritten by Istio's injector) does the same job.
type probeShell struct{}

// Name implements Checker.
func (probeShell) Name() string { return "probe-shell" }

// Code implements Checker.
func (probeShell) Code() string { return "MV009" }

// Run implements Checker.
func (c probeShell) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for _, nc := range containers(spec) {
			probes := map[string]*corev1.Probe{"liveness": nc.c.LivenessProbe, "readiness": nc.c.ReadinessProbe, "startup": nc.c.StartupProbe}
			for kind, p := range probes {
				if p == nil || p.Exec == nil {
					continue
				}
				if tool := shellTool(p.Exec.Command); tool != "" {
					out = append(out, finding(c, Warning, ref(u), nc.label()+" "+kind+" probe shells out to "+tool,
						"use an httpGet or grpc probe instead of exec "+tool))
				}
			}
		}
	}
	return out
}

// shellTool returns "curl" or "wget" if cmd runs either, directly or in sh -c.
func shellTool(cmd []string) string {
	for _, arg := range cmd {
		for _, word := range strings.Fields(arg) {
			switch base := path.Base(word); base {
			case "curl", "wget":
				return base
			}
		}
	}
	return ""
}
