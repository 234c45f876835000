package check

import (
	"strings"
)

// portProtocol reports Service and ServiceEntry ports whose protocol Istio
// cannot tell: without an http-/grpc-/tcp-… name prefix or appProtocol, Istio
// falls back to protocol sniffing, which adds latency and fails for
// server-first protocols (MySQL, SMTP).
type portProtocol struct{}

// Name implements Checker.
func (portProtocol) Name() string { return "port-protocol" }

// Code implements Checker.
func (portProtocol) Code() string { return "MV007" }

// istioProtocols are the protocols Istio recognises in port names and appProtocol.
var istioProtocols = map[string]bool{
	"http": true, "http2": true, "https": true, "grpc": true, "grpc-web": true, "tcp": true,
	"tls": true, "udp": true, "mongo": true, "mysql": true, "redis": true, "h2c": true,
	"kubernetes.io/h2c": true, "kubernetes.io/ws": true, "kubernetes.io/wss": true,
}

// protocolOf returns the protocol Istio derives from a port name, or "".
func protocolOf(name string) string {
	n := strings.ToLower(name)
	if n == "grpc-web" || strings.HasPrefix(n, "grpc-web-") {
		return "grpc-web"
	}
	p, _, _ := strings.Cut(n, "-")
	if istioProtocols[p] {
		return p
	}
	return ""
}

// Run implements Checker.
func (c portProtocol) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		switch {
		case is(u, "", "Service"):
			if t, _, _ := nestedStr(u.Object, "spec", "type"); t == "ExternalName" {
				continue
			}
			for _, p := range servicePorts(u) {
				if strings.EqualFold(p.protocol, "UDP") || strings.EqualFold(p.protocol, "SCTP") {
					continue
				}
				if p.appProtocol != "" {
					if !istioProtocols[strings.ToLower(p.appProtocol)] {
						out = append(out, finding(c, Warning, ref(u), "port "+quote(p.name)+" has appProtocol "+quote(p.appProtocol)+" that Istio does not know",
							"use one of http, http2, https, grpc, grpc-web, tcp, tls, mongo, mysql, redis"))
					}
					continue
				}
				if protocolOf(p.name) == "" {
					out = append(out, finding(c, Warning, ref(u), "port "+quote(p.name)+" ("+itoa(int(p.port))+") declares no protocol; Istio will sniff it",
						"name the port <protocol>[-<suffix>] (http-web, grpc-api, tcp-db) or set appProtocol"))
				}
			}
		case group(u) == "networking.istio.io" && u.GetKind() == "ServiceEntry":
			for _, p := range servicePorts(u) {
				if p.protocol == "" {
					out = append(out, finding(c, Warning, ref(u), "port "+quote(p.name)+" ("+itoa(int(p.port))+") has no protocol",
						"set ports[].protocol (HTTP, HTTPS, GRPC, TCP, TLS, …)"))
				}
			}
		}
	}
	return out
}
