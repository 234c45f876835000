package check

// duplicateEnv reports a container that sets the same environment variable
// twice: Kubernetes keeps the last one silently, and server-side apply (which
// meshroll uses) rejects the list outright because env is keyed by name.
type duplicateEnv struct{}

// Name implements Checker.
func (duplicateEnv) Name() string { return "duplicate-env" }

// Code implements Checker.
func (duplicateEnv) Code() string { return "MV010" }

// Run implements Checker.
func (c duplicateEnv) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for _, nc := range containers(spec) {
			seen := map[string]int{}
			for _, e := range nc.c.Env {
				seen[e.Name]++
				if seen[e.Name] == 2 {
					out = append(out, finding(c, Error, ref(u), nc.label()+" sets env "+quote(e.Name)+" more than once",
						"keep one entry; check chart values that append to env (extraEnv, meshConfig)"))
				}
			}
		}
	}
	return out
}
