// Package istiod runs real istiod in the sandbox: for every istiod pod (label
// app=istiod) that kwok reports Running, one pilot-discovery process, built
// from the istio.io/istio module of the pod's image tag
// (sandbox.EnsurePilotDiscovery), bound to the pod's own address, with the
// arguments and environment the pod's container declares (the chart's), and
// the pod's ServiceAccount as its identity. The process stops when the pod
// goes away or changes address, and is restarted with backoff when it dies.
//
// Nothing of Istio is rewritten. The sandbox routes kwok's pod range to lo
// (sandbox.IstiodReal), the real endpoints controller publishes the pod's
// address behind the istiod-<rev> Service, and the API server, with endpoint
// routing on, calls the webhooks istiod patches with its own CA on that
// address. To everything else in the cluster, istiod simply runs.
//
// The runner is also the pods' readiness prober: in real-istiod mode kwok
// starts istiod pods Running but not Ready (the sandbox's kwok stages), and
// the runner sets Ready from istiod's own /ready, as a kubelet would. So the
// Deployment is available, and the Service has a ready endpoint, only once
// istiod serves: whoever waits for istiod the way it would on a cluster
// (meshroll's revision install does) waits for the real thing.
package istiod
