package plan

// renderable mirrors istio.Releases() at the time of writing; the planner
// tests use it as the default Available list so cases read like real runs.
var renderable = []string{
	"1.21.2", "1.21.3", "1.22.1", "1.23.2", "1.24.0", "1.24.2",
	"1.25.1", "1.26.0", "1.26.1", "1.27.9", "1.28.2", "1.29.1",
}

// vs parses version literals for table cases.
func vs(ss ...string) []Version {
	if len(ss) == 0 {
		return nil
	}
	out := make([]Version, len(ss))
	for i, s := range ss {
		out[i] = MustParseVersion(s)
	}
	return out
}

// without returns renderable minus the given versions.
func without(drop ...string) []string {
	var out []string
	for _, r := range renderable {
		keep := true
		for _, d := range drop {
			if r == d {
				keep = false
			}
		}
		if keep {
			out = append(out, r)
		}
	}
	return out
}

// with returns renderable plus the given versions, appended unsorted.
func with(add ...string) []string {
	return append(append([]string(nil), renderable...), add...)
}
