// Package e2e runs meshroll end to end on the sandbox: a real kube-apiserver,
// etcd, controller-manager, scheduler and kwok, Istio installed from its real
// charts, and real istiod (built from Istio's module) answering its webhooks.
package e2e
