package check

// runAsRoot reports containers that run as root: explicitly (runAsUser 0,
// warning) or possibly (no runAsNonRoot at pod or container level, info),
// because restricted Pod Security namespaces reject them.
type runAsRoot struct{}

// Name implements Checker.
func (runAsRoot) Name() string { return "run-as-root" }

// Code implements Checker.
func (runAsRoot) Code() string { return "MV024" }

// Run implements Checker.
func (c runAsRoot) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		var podUser *int64
		podNonRoot := false
		if psc := spec.SecurityContext; psc != nil {
			podUser = psc.RunAsUser
			podNonRoot = psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		}
		for _, nc := range containers(spec) {
			user, nonRoot := podUser, podNonRoot
			if sc := nc.c.SecurityContext; sc != nil {
				if sc.RunAsUser != nil {
					user = sc.RunAsUser
				}
				if sc.RunAsNonRoot != nil {
					nonRoot = *sc.RunAsNonRoot
				}
			}
			switch {
			case user != nil && *user == 0:
				out = append(out, finding(c, Warning, ref(u), nc.label()+" runs as root (runAsUser 0)",
					"run as a non-zero UID and set runAsNonRoot: true"))
			case !nonRoot && (user == nil):
				out = append(out, finding(c, Info, ref(u), nc.label()+" may run as root (no runAsNonRoot or runAsUser)",
					"set securityContext.runAsNonRoot: true and a runAsUser"))
			}
		}
	}
	return out
}
