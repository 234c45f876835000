package check

// yamlValid reports documents that are not valid YAML or not Kubernetes
// objects: they would make `kubectl apply` fail halfway through a directory.
type yamlValid struct{}

// Name implements Checker.
func (yamlValid) Name() string { return "yaml-valid" }

// Code implements Checker.
func (yamlValid) Code() string { return "MV001" }

// Run implements Checker.
func (c yamlValid) Run(in *Input) []Finding {
	var out []Finding
	for _, d := range in.Raw {
		if d.Err == nil {
			continue
		}
		out = append(out, finding(c, Error, d.Position(), "document does not parse: "+d.Err.Error(),
			"fix the YAML (indentation, duplicate keys, tabs) and make sure every document has apiVersion and kind"))
	}
	return out
}
