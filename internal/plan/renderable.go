package plan

import "github.com/meshroll/meshroll/internal/istio"

// Renderable is every release meshroll can render (istio.Releases), parsed:
// PathRequest.Available for the callers that plan against what meshroll
// ships. An entry that does not parse is left out.
func Renderable() []Version {
	var out []Version
	for _, r := range istio.Releases() {
		if v, err := ParseVersion(r.Version); err == nil {
			out = append(out, v)
		}
	}
	return out
}
