// Package podproc runs real processes for chosen kwok pods, the way a kubelet
// runs containers: a pod labelled sandbox.meshroll.io/process=true whose
// container image is one the runner knows (Options.Images maps an image to
// a binary on this host) gets that binary started with the container's
// command, args and environment, bound to the pod's own address (the
// sandbox routes kwok's pod range to lo). The runner sets the pod's Ready
// condition from the container's readinessProbe (httpGet or tcpSocket on the
// pod address), and when the pod goes away it sends SIGTERM and allows the
// pod's terminationGracePeriodSeconds before SIGKILL, as a kubelet does.
//
// kwok starts such pods Running but not Ready (the sandbox's kwok stages), so
// a Deployment of them is available, and its Service has ready endpoints,
// only once the processes serve.
//
// A pod injected by Istio (an istio-proxy container whose PROXY_CONFIG names
// a discovery address) also gets what Istio's grpc-agent would give its
// proxyless gRPC application: a gRPC xDS bootstrap naming that istiod, its
// node identity and GENERATOR=grpc, in GRPC_XDS_BOOTSTRAP. The runner stands
// in for the agent and for cluster DNS: the discovery address's Service is
// resolved to a ready endpoint, and the process talks to istiod's plaintext
// xDS port (15010) there, because the sandbox has no workload certificates.
package podproc
