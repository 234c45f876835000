// Command xdsapp is the proxyless gRPC workload of meshroll's xDS data-plane
// tests: the binary that sandbox/podproc runs for kwok pods of the test
// Deployments. It is its own module so grpc-go and its xds package (the
// release Istio 1.24 pins) stay out of meshroll's dependencies.
//
//	xdsapp server --port 8080 --admin 8081 --version v1 --delay 10ms --drain 3s
//	xdsapp client --target xds:///echo.ns.svc.cluster.local:8080 --qps 250 --stats DIR
//
// The server answers grpc.health.v1.Health/Check on the pod's address
// (POD_IP), after --delay of simulated work, naming its --version in the
// response header x-version. On SIGTERM it keeps serving for --drain (as an
// application with a preStop delay does, while the mesh learns the endpoint
// is gone), then stops gracefully; with --drain 0 it exits at once, cutting
// the requests in flight, as an application without drain handling does.
//
// The client resolves its target through xDS (GRPC_XDS_BOOTSTRAP, written by
// the sandbox for the pod's istiod), becomes ready at its first successful
// call, then sends --qps calls per second, open loop, and appends one JSON
// line per second to DIR/<pod>.jsonl: calls ok and failed, failures by gRPC
// code, answers by server version and a latency histogram (see Second). On
// SIGTERM it stops sending, waits for the calls in flight and writes the rest.
package main
