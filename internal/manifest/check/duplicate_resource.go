package check

// duplicateResource reports two objects with the same group, kind, namespace
// and name: the second silently overwrites the first when applied.
type duplicateResource struct{}

// Name implements Checker.
func (duplicateResource) Name() string { return "duplicate-resource" }

// Code implements Checker.
func (duplicateResource) Code() string { return "MV004" }

// Run implements Checker.
func (c duplicateResource) Run(in *Input) []Finding {
	seen := map[string]int{}
	var out []Finding
	for _, u := range in.Objects {
		key := group(u) + "/" + u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		seen[key]++
		if seen[key] == 2 {
			out = append(out, finding(c, Error, ref(u), "object is defined more than once",
				"remove the duplicate or give it another name; the last one applied wins"))
		}
	}
	return out
}
