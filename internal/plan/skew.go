package plan

import "fmt"

// MaxProxyMinorsBehind is how many minor releases a sidecar may trail its
// control plane before meshroll calls the pair unsupported.
//
// Istio's "Supported Releases" page (istio.io/latest/docs/releases/supported-releases,
// section "Control Plane/Data Plane Skew") says the control plane may be ahead
// of the data plane and that the data plane must never be ahead of the control
// plane; its canary-upgrade page says revision-based upgrades may jump two
// minor releases at once (e.g. 1.15 → 1.17). During such a jump every proxy
// still on the old release is two minors behind its new control plane, so
// meshroll tolerates n-2 while a migration is in flight and reports n-1..n-2
// as a lag, not an error. Anything further behind is outside what Istio
// tests.
const MaxProxyMinorsBehind = 2

// SkewLevel grades a proxy/control-plane pair.
type SkewLevel string

const (
	// SkewNone means the proxy runs the control plane's minor release.
	SkewNone SkewLevel = "none"
	// SkewBehind means the proxy trails by 1..MaxProxyMinorsBehind minors:
	// supported, but a restart onto the new sidecar is due.
	SkewBehind SkewLevel = "behind"
	// SkewUnsupported means the pair is outside Istio's support: the proxy is
	// newer than its control plane, or too far behind.
	SkewUnsupported SkewLevel = "unsupported"
)

// SkewVerdict is the outcome of comparing a proxy with its control plane.
type SkewVerdict struct {
	// Level grades the pair.
	Level SkewLevel `json:"level"`
	// MinorsBehind is how many minors the proxy trails (negative when ahead).
	MinorsBehind int `json:"minorsBehind"`
	// Reason explains the verdict for an operator.
	Reason string `json:"reason"`
}

// Supported reports whether Istio supports the pair.
func (v SkewVerdict) Supported() bool { return v.Level != SkewUnsupported }

// Skew grades a sidecar of version proxy connected to a control plane of
// version controlPlane, per MaxProxyMinorsBehind's rule.
func Skew(proxy, controlPlane Version) SkewVerdict {
	behind := proxy.MinorsBehind(controlPlane)
	switch {
	case proxy.Major != controlPlane.Major:
		return SkewVerdict{Level: SkewUnsupported, MinorsBehind: behind,
			Reason: fmt.Sprintf("proxy %s and control plane %s differ in major release", proxy, controlPlane)}
	case behind < 0 || (behind == 0 && proxy.Compare(controlPlane) > 0):
		return SkewVerdict{Level: SkewUnsupported, MinorsBehind: behind,
			Reason: fmt.Sprintf("proxy %s is newer than its control plane %s; the data plane must never be ahead", proxy, controlPlane)}
	case behind == 0:
		return SkewVerdict{Level: SkewNone, Reason: fmt.Sprintf("proxy %s matches control plane %s", proxy, controlPlane)}
	case behind <= MaxProxyMinorsBehind:
		return SkewVerdict{Level: SkewBehind, MinorsBehind: behind,
			Reason: fmt.Sprintf("proxy %s trails control plane %s by %d minor release(s), within the supported n-%d", proxy, controlPlane, behind, MaxProxyMinorsBehind)}
	default:
		return SkewVerdict{Level: SkewUnsupported, MinorsBehind: behind,
			Reason: fmt.Sprintf("proxy %s trails control plane %s by %d minor releases, beyond the supported n-%d", proxy, controlPlane, behind, MaxProxyMinorsBehind)}
	}
}
