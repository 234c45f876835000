package check

// privileged reports privileged containers (error: full access to the node)
// and pods sharing the host's network, PID or IPC namespaces (warning: they
// bypass the sidecar's traffic capture and see other pods' processes).
type privileged struct{}

// Name implements Checker.
func (privileged) Name() string { return "privileged" }

// Code implements Checker.
func (privileged) Code() string { return "MV023" }

// Run implements Checker.
func (c privileged) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for flag, set := range map[string]bool{"hostNetwork": spec.HostNetwork, "hostPID": spec.HostPID, "hostIPC": spec.HostIPC} {
			if set {
				out = append(out, finding(c, Warning, ref(u), "pod uses "+flag,
					"remove "+flag+" unless this is node-level infrastructure (CNI, node agents)"))
			}
		}
		for _, nc := range containers(spec) {
			sc := nc.c.SecurityContext
			if sc != nil && sc.Privileged != nil && *sc.Privileged {
				out = append(out, finding(c, Error, ref(u), nc.label()+" is privileged",
					"drop privileged; add only the capabilities needed (Istio's CNI removes the need for NET_ADMIN)"))
			}
		}
	}
	return out
}
