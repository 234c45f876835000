package gateway

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

// Labels meshroll puts on gateways and on the Service it owns.
const (
	// LabelGateway names the blue/green gateway a colour belongs to; every
	// pod of every colour carries it, so the Service selects by it plus the
	// revision.
	LabelGateway = "meshroll.io/gateway"
	// LabelManagedBy marks the LoadBalancer Service as meshroll's, so nothing
	// else (Helm, the gateway chart) is mistaken for its owner.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy on meshroll's Service.
	ManagedBy = "meshroll"
	// AnnotationVersion records the Istio release a colour was rendered
	// from on its objects (the charts' own app version label is not the
	// release).
	AnnotationVersion = "meshroll.io/istio-version"
)

// Colour is one revision's gateway Deployment, reduced to what blue/green
// decisions need.
type Colour struct {
	Revision   string `json:"revision"`
	Version    string `json:"version,omitempty"`
	Deployment string `json:"deployment"`
	// Desired is spec.replicas; Updated, ReadyReplicas and Available come
	// from the Deployment's status.
	Desired       int32 `json:"desired"`
	Updated       int32 `json:"updated"`
	ReadyReplicas int32 `json:"ready"`
	Available     int32 `json:"available"`
	// Generation and ObservedGeneration tell whether the status describes
	// the current spec.
	Generation         int64 `json:"generation"`
	ObservedGeneration int64 `json:"observedGeneration"`
}

// Ready reports whether the colour can take all traffic now: at least one
// replica is wanted, the controller has seen the current spec and every
// wanted replica is updated, ready and available. A colour scaled to zero is
// never ready: switching to it would black-hole traffic.
func (c Colour) Ready() bool {
	return c.Desired > 0 &&
		c.ObservedGeneration >= c.Generation &&
		c.Updated >= c.Desired && c.ReadyReplicas >= c.Desired && c.Available >= c.Desired
}

// why explains in words why a colour is not ready.
func (c Colour) why() string {
	switch {
	case c.Desired == 0:
		return "it is scaled to 0 replicas"
	case c.ObservedGeneration < c.Generation:
		return fmt.Sprintf("its controller has not observed generation %d yet", c.Generation)
	default:
		return fmt.Sprintf("%d/%d replicas updated, %d ready, %d available", c.Updated, c.Desired, c.ReadyReplicas, c.Available)
	}
}

// DeploymentName is the name of a colour's Deployment (and its ClusterIP
// Service): the gateway name suffixed with the revision.
func DeploymentName(gw, rev string) string { return gw + "-" + rev }

// ColourOf reads a gateway Deployment as a colour; ok is false when the
// Deployment is not a colour of gateway gw (wrong label or no revision).
func ColourOf(d *appsv1.Deployment, gw string) (Colour, bool) {
	if d.Labels[LabelGateway] != gw {
		return Colour{}, false
	}
	rev := d.Spec.Template.Labels[istio.LabelRev]
	if rev == "" {
		return Colour{}, false
	}
	desired := int32(1)
	if d.Spec.Replicas != nil {
		desired = *d.Spec.Replicas
	}
	return Colour{
		Revision:           rev,
		Version:            d.Annotations[AnnotationVersion],
		Deployment:         d.Name,
		Desired:            desired,
		Updated:            d.Status.UpdatedReplicas,
		ReadyReplicas:      d.Status.ReadyReplicas,
		Available:          d.Status.AvailableReplicas,
		Generation:         d.Generation,
		ObservedGeneration: d.Status.ObservedGeneration,
	}, true
}

// RenderValues are the gateway chart values for colour rev of gateway gw:
// its Service is ClusterIP (meshroll's LoadBalancer Service is the only
// entry point), and every pod carries istio=<gw> (so Istio Gateway resources
// select all colours alike) and meshroll.io/gateway=<gw>; the chart adds the
// revision label itself. The version is recorded as an annotation for status.
func RenderValues(gw, version string) map[string]any {
	return map[string]any{
		"annotations": map[string]any{AnnotationVersion: version},
		"service":     map[string]any{"type": string(corev1.ServiceTypeClusterIP)},
		"labels": map[string]any{
			"istio":      gw,
			LabelGateway: gw,
		},
	}
}

// LiveRevision returns the colour a Service selector points at. It fails
// unless the selector names gateway gw and exactly one revision, which is the
// invariant every meshroll write keeps.
func LiveRevision(selector map[string]string, gw string) (string, error) {
	if selector[LabelGateway] != gw {
		return "", fmt.Errorf("selector %v does not select gateway %q (label %s)", selector, gw, LabelGateway)
	}
	rev := selector[istio.LabelRev]
	if rev == "" {
		return "", fmt.Errorf("selector %v names no revision (label %s)", selector, istio.LabelRev)
	}
	return rev, nil
}

// ExposeRevision decides which colour a new or re-applied Service selects:
// to when given (it must exist), else the colour the Service already points at
// if it still exists, else the only colour; with none or several colours and
// no --to it refuses rather than guess.
func ExposeRevision(colours []Colour, current, to string) (string, error) {
	revs := revisions(colours)
	switch {
	case to != "":
		if !slices.Contains(revs, to) {
			return "", fmt.Errorf("no gateway colour for revision %q (installed: %s)", to, list(revs))
		}
		return to, nil
	case current != "" && slices.Contains(revs, current):
		return current, nil
	case len(revs) == 0:
		return "", fmt.Errorf("no gateway colour is installed: run `meshroll gateway install` first")
	case len(revs) > 1:
		return "", fmt.Errorf("%d gateway colours are installed (%s): choose one with --to", len(revs), list(revs))
	}
	return revs[0], nil
}

// CheckSwitch decides whether traffic may move to colour to now: the colour
// must exist and be fully ready. Switching to the live colour is allowed and
// changes nothing.
func CheckSwitch(colours []Colour, to string) error {
	for _, c := range colours {
		if c.Revision != to {
			continue
		}
		if !c.Ready() {
			return fmt.Errorf("gateway colour %q (deployment %s) is not ready: %s", to, c.Deployment, c.why())
		}
		return nil
	}
	return fmt.Errorf("no gateway colour for revision %q (installed: %s)", to, list(revisions(colours)))
}

// SelectorPatch is the one write that moves a Service from colour from to
// colour to: a JSON patch whose test operations make it apply only to the
// Service version that was read (resourceVersion) and only while it still
// selects gateway gw and colour from; the replace changes a single map key,
// so no instant selects zero or two colours.
func SelectorPatch(gw, resourceVersion, from, to string) ([]byte, error) {
	if resourceVersion == "" || from == "" || to == "" {
		return nil, fmt.Errorf("failed to build selector patch for gateway %q: resourceVersion, from and to are all required", gw)
	}
	rev := "/spec/selector/" + escapePointer(istio.LabelRev)
	ops := []map[string]string{
		{"op": "test", "path": "/metadata/resourceVersion", "value": resourceVersion},
		{"op": "test", "path": "/spec/selector/" + escapePointer(LabelGateway), "value": gw},
		{"op": "test", "path": rev, "value": from},
		{"op": "replace", "path": rev, "value": to},
	}
	b, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("failed to encode selector patch for gateway %q: %w", gw, err)
	}
	return b, nil
}

// escapePointer escapes a map key for a JSON pointer (RFC 6901).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// Port is one port of meshroll's LoadBalancer Service.
type Port struct {
	Name       string `json:"name"`
	Port       int32  `json:"port"`
	TargetPort int32  `json:"targetPort"`
}

// DefaultPorts mirror the gateway chart's own Service: status, HTTP, HTTPS.
func DefaultPorts() []Port {
	return []Port{
		{Name: "status-port", Port: 15021, TargetPort: 15021},
		{Name: "http2", Port: 80, TargetPort: 80},
		{Name: "https", Port: 443, TargetPort: 443},
	}
}

// ParsePort parses "port[:targetPort]" (e.g. "80:8080") into a Port named
// after its number.
func ParsePort(s string) (Port, error) {
	port, target, hasTarget := strings.Cut(strings.TrimSpace(s), ":")
	p, err := parsePortNumber(port)
	if err != nil {
		return Port{}, fmt.Errorf("failed to parse port %q: %w; use port or port:targetPort, e.g. 80:8080", s, err)
	}
	t := p
	if hasTarget {
		if t, err = parsePortNumber(target); err != nil {
			return Port{}, fmt.Errorf("failed to parse port %q: %w; use port or port:targetPort, e.g. 80:8080", s, err)
		}
	}
	return Port{Name: fmt.Sprintf("port-%d", p), Port: p, TargetPort: t}, nil
}

func parsePortNumber(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return int32(n), nil
}

func revisions(colours []Colour) []string {
	out := make([]string, 0, len(colours))
	for _, c := range colours {
		out = append(out, c.Revision)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func list(revs []string) string {
	if len(revs) == 0 {
		return "none"
	}
	return strings.Join(revs, ", ")
}
