package check

// emptyName reports objects without metadata.name: apply rejects them, and a
// template that renders an empty name usually means a missing value.
type emptyName struct{}

// Name implements Checker.
func (emptyName) Name() string { return "empty-name" }

// Code implements Checker.
func (emptyName) Code() string { return "MV026" }

// Run implements Checker.
func (c emptyName) Run(in *Input) []Finding {
	var out []Finding
	for i, u := range in.Objects {
		if u.GetName() != "" || u.GetGenerateName() != "" {
			continue
		}
		out = append(out, finding(c, Error, ref(u)+"#"+itoa(i), "object has no metadata.name",
			"set metadata.name; check the chart value that should have produced it"))
	}
	return out
}
