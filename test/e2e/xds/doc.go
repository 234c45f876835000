// Package xds is the end-to-end proof of meshroll's central promise on a real
// xDS data plane: proxyless gRPC clients and servers (test/xdsapp) run as the
// real processes of kwok pods (sandbox/podproc), injected by the real istiod
// of their revision (sandbox/istiod) and bootstrapped to it, so every call is
// routed by the listeners, routes, clusters and endpoints istiod pushes. The
// tests count every call through a whole `meshroll upgrade` and through
// naive procedures that must show failures in the same harness.
package xds
