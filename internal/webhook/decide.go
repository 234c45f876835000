package webhook

import (
	"encoding/json"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// LabelUpgrade marks a workload as covered by a MeshUpgrade; its value is the
// MeshUpgrade's name. The engine sets it in the same patch that moves the
// workload, the webhook's objectSelector requires it, and the handler checks it
// again so the webhook behaves the same however it was registered.
const LabelUpgrade = "meshroll.io/upgrade"

// decision is what the handler concluded about one request.
type decision struct {
	patch    []byte // nil: leave the object unchanged
	reason   string // why there is no patch, for debug logs
	name     string
	from, to string
	upgrade  string
}

// warning is shown to whoever made the request (kubectl prints it), so a
// workload owner learns why the revision they sent was not the one stored.
func (d decision) warning() string {
	from := d.from
	if from == "" {
		from = "<unset>"
	}
	return fmt.Sprintf("meshroll: pod template %s %s -> %s (assigned by MeshUpgrade %s)", istio.LabelRev, from, d.to, d.upgrade)
}

// decide computes the patch for req, or why there is none.
func decide(req *requestIn, a Assignments) decision {
	d := decision{name: req.Name}
	if req.Object != nil && d.name == "" {
		d.name = req.Object.Metadata.Name
	}
	switch {
	case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
		d.reason = "operation"
		return d
	case req.SubResource != "":
		d.reason = "subresource"
		return d
	case req.Object == nil:
		d.reason = "no object"
		return d
	}
	tmpl, path, ok := req.Object.template(req.Kind)
	if !ok {
		d.reason = "kind"
		return d
	}
	// The API server's objectSelector also calls for an update whose old object
	// had the label and the new one dropped it; such an owner has taken the
	// workload out of the upgrade, so it is left alone like any other.
	upgrade, selected := req.Object.Metadata.Labels[LabelUpgrade]
	if !selected {
		d.reason = "not labelled " + LabelUpgrade
		return d
	}
	d.upgrade = upgrade
	rev, assigned := a.Assigned(upgrade, req.Kind.Kind, req.Namespace, d.name)
	if !assigned || rev == "" {
		// An empty revision would make istio.io/rev="" and the pod uninjected.
		d.reason = "no assignment"
		return d
	}
	if tmpl == nil {
		// Invalid for every handled kind; validation rejects it after us.
		d.reason = "no pod template"
		return d
	}
	var labels, annotations map[string]string
	if tmpl.Metadata != nil {
		labels, annotations = tmpl.Metadata.Labels, tmpl.Metadata.Annotations
	}
	if labels[istio.LabelSidecarInject] == "false" || annotations[istio.AnnotationSidecarInject] == "false" {
		d.reason = "opted out of injection"
		return d
	}
	current, has := labels[istio.LabelRev]
	if has && current == rev {
		d.reason = "already assigned"
		return d
	}
	d.from, d.to = current, rev
	var op patchOp
	switch {
	case tmpl.Metadata == nil:
		op = patchOp{Op: "add", Path: path + "/metadata", Value: map[string]any{"labels": map[string]string{istio.LabelRev: rev}}}
	case labels == nil:
		op = patchOp{Op: "add", Path: path + "/metadata/labels", Value: map[string]string{istio.LabelRev: rev}}
	default:
		// "add" replaces an existing member, so one op covers both cases.
		op = patchOp{Op: "add", Path: path + "/metadata/labels/" + escapePointer(istio.LabelRev), Value: rev}
	}
	patch, err := json.Marshal([]patchOp{op})
	if err != nil {
		// Only strings and maps of strings are marshalled here.
		d.reason = "failed to encode patch: " + err.Error()
		return d
	}
	d.patch = patch
	return d
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// escapePointer escapes s for use as one JSON Pointer reference token
// (RFC 6901): "~" becomes "~0" first, so the "~1" written for "/" afterwards
// is not escaped again.
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}
