// Package e2e runs meshroll end to end on the sandbox: a real kube-apiserver,
// etcd, controller-manager, scheduler and kwok, Istio installed from its real
// charts, and the sandbox injector answering Istio's real webhooks.
package e2e
