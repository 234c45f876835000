// Package sandbox runs a real, local Kubernetes control plane on 127.0.0.1 without containers, so
// that meshroll can be demonstrated and tested against a genuine kube-apiserver on any machine that
// has Go installed.
//
// A sandbox is etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (which fakes
// nodes and pod status instead of a kubelet), started as detached processes that outlive the
// command that started them. Everything a sandbox needs lives in one state directory: the PKI, an
// admin kubeconfig, etcd's data, one log per component and a JSON state file with the ports and
// process ids. Ports are picked free at the first Up, so several sandboxes (one per test package)
// coexist on one machine.
//
// # Binaries
//
// The control-plane binaries are built from source on first use by EnsureBinaries, because no
// registry serves them here and Docker is not assumed. Their Go module (k8s.io/kubernetes,
// etcd/server and kwok, with the staging replaces k8s.io/kubernetes needs) is embedded in this
// package under toolsrc/, with every file renamed with a ".txt" suffix so that neither the main
// module nor go:embed sees a nested module. The .txt files are the single source of truth.
//
// To change the tool module (for example to bump Kubernetes), expand it, edit it with the go
// command, and copy it back:
//
//	d=$(mktemp -d)
//	(cd sandbox/toolsrc && find . -name '*.txt' | while read -r f; do
//	    mkdir -p "$d/$(dirname "$f")" && cp "$f" "$d/${f%.txt}"; done)
//	(cd "$d" && go get k8s.io/kubernetes@v1.x.y && go build ./cmd/...)
//	(cd "$d" && find . -name 'go.mod' -o -name 'go.sum' -o -name 'main.go' | while read -r f; do
//	    cp "$f" "$OLDPWD/sandbox/toolsrc/$f.txt"; done)
//
// and update toolVersion in binary.go. Changing any embedded byte changes the content hash, so the
// next EnsureBinaries rebuilds into a fresh directory.
//
// # Real istiod
//
// Istio's webhooks are answered by real istiod, built from Istio's own module, and nothing of
// Istio's is rewritten: meshroll's production code knows nothing of the sandbox.
//
//   - Up claims one of RoutedPodRanges for this sandbox and routes it to lo (`ip route replace
//     local <range> dev lo`, needs CAP_NET_ADMIN). Without it Up fails, saying what is missing and
//     how to get it (run as root, or `setcap cap_net_admin+ep` the binary); with
//     Options.AllowNoIstiod (sandboxtest sets it) it starts with no istiod instead (IstiodNone),
//     recording why in State.IstiodNote, and tests that install Istio skip, saying why. Down
//     removes the route. kwok hands pod addresses from that range, so a process can bind a pod's
//     own address.
//   - kube-apiserver runs with --enable-aggregator-routing=true: webhooks that name a Service are
//     called on a ready endpoint of it, which the real endpoints controller takes from the pod's
//     address and Ready condition.
//   - kwok gets pod stages (kwok-pod-stages.yaml) that start istiod pods Running but not Ready.
//   - package sandbox/istiod runs one pilot-discovery per istiod pod (built by
//     EnsurePilotDiscovery; `make sandbox-bin` prebuilds PilotDiscoveryReleases), bound to the
//     pod's address, and sets the pod Ready from istiod's own /ready. `sandbox up` runs it as its
//     istiod runner process (Options.Runner); tests run it in-process (sandboxtest.Main).
//
// Pod addresses stay unique across restarts of kwok (which forgets what it handed out): each
// kwok start takes a block of the pod range that no live pod holds an address in (State.KwokBlock).
package sandbox
