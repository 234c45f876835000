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
// kwok, not the process, decides the pod's Ready condition: a pod is Ready
// before its istiod serves. Callers that need istiod answering wait for it
// (Ready, or the runner's /istiods report).
package istiod
