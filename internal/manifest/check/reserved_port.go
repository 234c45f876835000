package check

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// reservedPort reports application ports that collide with the ports Istio's
// sidecar and control plane use (Istio docs, "Ports used by Istio"). An
// application listening on 15001 or 15006 breaks traffic capture; Istio's own
// components are exempt because they are the ones meant to use them.
type reservedPort struct{}

// Name implements Checker.
func (reservedPort) Name() string { return "reserved-port" }

// Code implements Checker.
func (reservedPort) Code() string { return "MV006" }

// istioPorts are the ports Istio reserves, with what uses them.
var istioPorts = map[int64]string{
	15000: "Envoy admin",
	15001: "Envoy outbound capture",
	15004: "debug",
	15006: "Envoy inbound capture",
	15008: "HBONE mTLS tunnel",
	15009: "HBONE (ztunnel)",
	15010: "istiod XDS plaintext",
	15012: "istiod XDS/CA mTLS",
	15014: "istiod monitoring",
	15017: "istiod webhooks",
	15020: "merged Prometheus telemetry",
	15021: "health checks",
	15053: "DNS proxy",
	15090: "Envoy Prometheus telemetry",
}

// Run implements Checker.
func (c reservedPort) Run(in *Input) []Finding {
	var out []Finding
	report := func(u *unstructured.Unstructured, where string, port int64) {
		if use, ok := istioPorts[port]; ok {
			out = append(out, finding(c, Error, ref(u),
				fmt.Sprintf("%s uses port %d, reserved by Istio for %s", where, port, use),
				"move the application to a port outside 15000-15090"))
		}
	}
	for _, u := range in.Objects {
		if isIstioComponent(u) {
			continue
		}
		if is(u, "", "Service") {
			for _, p := range servicePorts(u) {
				report(u, "service port "+quote(p.name), p.port)
				if p.targetPort > 0 {
					report(u, "target port of "+quote(p.name), p.targetPort)
				}
			}
			continue
		}
		_, spec, ok := podTemplate(u)
		if !ok {
			continue
		}
		for _, nc := range containers(spec) {
			for _, p := range nc.c.Ports {
				report(u, nc.label(), int64(p.ContainerPort))
			}
		}
	}
	return out
}

// svcPort is the part of a Service or ServiceEntry port the checks read.
type svcPort struct {
	name, protocol, appProtocol string
	port, targetPort            int64
}

// servicePorts reads spec.ports of a Service or ServiceEntry without
// decoding the whole object.
func servicePorts(u *unstructured.Unstructured) []svcPort {
	raw, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
	out := make([]svcPort, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			continue
		}
		p := svcPort{}
		p.name, _ = m["name"].(string)
		p.protocol, _ = m["protocol"].(string)
		p.appProtocol, _ = m["appProtocol"].(string)
		p.port = toInt(m["port"])
		if _, isString := m["targetPort"].(string); !isString {
			p.targetPort = toInt(m["targetPort"])
		}
		out = append(out, p)
	}
	return out
}

// toInt reads a JSON number of any Go type unstructured uses.
func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case float64:
		return int64(n)
	}
	return 0
}
