package sandbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Readiness budgets. They are generous because parallel test packages share two cores, and every
// wait reports the component's log when it runs out.
const (
	etcdTimeout      = 60 * time.Second
	apiserverTimeout = 120 * time.Second
	clientTimeout    = 60 * time.Second
	runnerTimeout    = 60 * time.Second
	probeTimeout     = 5 * time.Second
)

// kwokAnnotation marks the nodes kwok manages; real nodes (none here) would be left alone.
const (
	kwokAnnotationKey   = "kwok.x-k8s.io/node"
	kwokAnnotationValue = "fake"
)

// component is one process of the sandbox: how to start it and how to tell it is ready.
type component struct {
	name    string
	args    []string
	env     []string
	probe   func(ctx context.Context) error
	timeout time.Duration
}

// prober checks component health over loopback. It carries its own HTTP clients so that no
// global transport is configured.
type prober struct {
	ports map[string]int
	// api trusts the sandbox CA and presents the admin certificate.
	api *http.Client
	// insecure reaches the controller-manager and scheduler, which serve self-signed certificates
	// generated at start.
	insecure *http.Client
	plain    *http.Client
}

// newProber builds the HTTP clients for the health checks from the sandbox's PKI.
func newProber(ports map[string]int, files pkiFiles) (*prober, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files[fileCACert]) {
		return nil, fmt.Errorf("failed to parse certificate %q: no PEM data", fileCACert)
	}
	admin, err := tls.X509KeyPair(files[fileAdminCert], files[fileAdminKey])
	if err != nil {
		return nil, fmt.Errorf("failed to load key pair %q: %w", fileAdminCert, err)
	}
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: probeTimeout, Transport: &http.Transport{
			TLSClientConfig: cfg, DisableKeepAlives: true, Proxy: nil,
		}}
	}
	return &prober{
		ports:    ports,
		api:      client(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{admin}, MinVersion: tls.VersionTLS12}),
		insecure: client(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}), //nolint:gosec // loopback, self-signed
		plain:    client(nil),
	}, nil
}

// get expects 200 from url and, when want is set, a body containing it.
func get(ctx context.Context, c *http.Client, url, want string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("failed to build request %q: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("failed to probe %q: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("failed to probe %q: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// dial succeeds once something accepts TCP connections on the loopback port.
func dial(ctx context.Context, port int) error {
	d := net.Dialer{Timeout: probeTimeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("failed to connect to port %q: %w", strconv.Itoa(port), err)
	}
	return conn.Close()
}

// loop returns the loopback URL of a named port.
func (p *prober) loop(scheme, port, path string) string {
	return fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, p.ports[port], path)
}

// probeFor returns the health check of a component by name.
func (p *prober) probeFor(name string) func(ctx context.Context) error {
	switch name {
	case nameEtcd:
		return func(ctx context.Context) error {
			return get(ctx, p.plain, p.loop("http", PortEtcd, "/health"), `"health":"true"`)
		}
	case nameAPIServer:
		return func(ctx context.Context) error {
			return get(ctx, p.api, p.loop("https", PortAPIServer, "/readyz"), "ok")
		}
	case nameKCM:
		return func(ctx context.Context) error {
			return get(ctx, p.insecure, p.loop("https", PortKCM, "/healthz"), "ok")
		}
	case nameScheduler:
		return func(ctx context.Context) error {
			return get(ctx, p.insecure, p.loop("https", PortScheduler, "/healthz"), "ok")
		}
	case nameKwok:
		return func(ctx context.Context) error { return get(ctx, p.plain, p.loop("http", PortKwok, "/healthz"), "") }
	default:
		return func(ctx context.Context) error { return dial(ctx, p.ports[PortRunner]) }
	}
}

// kcmConcurrency sizes the controller-manager's workers like a large
// cluster's. The defaults (5 Deployment and 5 ReplicaSet syncs at once) suit
// a small cluster; one that rolls out hundreds of Deployments at once (a
// mesh upgrade, a fleet-wide config change) raises them, as operators of big
// clusters do. With 5 workers and API writes that take a second on a loaded
// host, the Deployment controller alone caps the sandbox at a few syncs a
// second, a handful of rollouts, whatever a client asks for. Workers only
// compute and write; the API server's inflight limits above still bound the
// load, so more of them cost memory, not correctness.
//
// Measured (BenchmarkMigrate, 1,000 Deployments, pods Ready 5–15 s after
// scheduling, host load average ~30 on 2 cores): with these settings too the
// sandbox moved ~0.85 rollouts/s at 40 at once, because every API write then
// waited ~0.9 s for CPU (etcd ~0.45 s of it); the controllers were no longer
// the limit, the host was.
//
// Only a sandbox whose pods start slowly (Options.PodStartDelay, the
// benchmark's) gets them (withStageDelay): every other sandbox keeps the
// defaults the test suite has run on. In the first full `make test` with
// these workers in every sandbox, TestSeedScaleOnSandbox once saw pods
// replaced after all its Deployments were available; not proven to be the
// cause, but they bought nothing measurable either.
func kcmConcurrency() []string {
	return []string{
		"--concurrent-deployment-syncs=50",
		"--concurrent-replicaset-syncs=50",
		"--concurrent-endpoint-syncs=20",
		"--concurrent-service-endpoint-syncs=20",
		"--concurrent-gc-syncs=50",
	}
}

// controlPlane describes the five components in start order (kwok's --cidr is added by Up, see
// withKwokCIDR), with the flags known to work (see
// /work/shared/SANDBOX-NOTES.md): everything bound to 127.0.0.1 on the recorded ports, no leader
// election, raised client QPS so thousands of pods roll out in seconds, and fsync off in etcd.
func controlPlane(dir string, ports map[string]int, p *prober) []component {
	url := func(port string) string { return fmt.Sprintf("http://127.0.0.1:%d", ports[port]) }
	pki := func(file string) string { return pkiPath(dir, file) }
	kubeconfig := KubeconfigPath(dir)
	clientFlags := func(name, port string) []string {
		return []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[port]),
			"--cert-dir=" + filepath.Join(dir, "certs", name),
			"--leader-elect=false",
			"--kube-api-qps=200",
			"--kube-api-burst=400",
		}
	}
	comps := []component{
		{name: nameEtcd, timeout: etcdTimeout, args: []string{
			"--name=default",
			"--data-dir=" + etcdDataDir(dir),
			"--listen-client-urls=" + url(PortEtcd),
			"--advertise-client-urls=" + url(PortEtcd),
			"--listen-peer-urls=" + url(PortEtcdPeer),
			"--initial-advertise-peer-urls=" + url(PortEtcdPeer),
			"--initial-cluster=default=" + url(PortEtcdPeer),
			"--unsafe-no-fsync",
			"--quota-backend-bytes=8589934592",
		}},
		{name: nameAPIServer, timeout: apiserverTimeout, args: []string{
			"--etcd-servers=" + url(PortEtcd),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[PortAPIServer]),
			"--cert-dir=" + filepath.Join(dir, "certs", nameAPIServer),
			"--tls-cert-file=" + pki(fileServerCert),
			"--tls-private-key-file=" + pki(fileServerKey),
			"--client-ca-file=" + pki(fileCACert),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + pki(fileSAPub),
			"--service-account-signing-key-file=" + pki(fileSAKey),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			"--profiling=false",
			"--max-requests-inflight=800",
			"--max-mutating-requests-inflight=400",
			// Webhooks and APIServices that name a Service are called on one of
			// its endpoints' addresses, not its ClusterIP: there is no
			// kube-proxy, but with the pod range routed to lo a process serving
			// a pod's own address answers (see IstiodReal).
			"--enable-aggregator-routing=true",
		}},
		{name: nameKCM, timeout: clientTimeout, args: append(clientFlags(nameKCM, PortKCM),
			"--service-account-private-key-file="+pki(fileSAKey),
			"--root-ca-file="+pki(fileCACert),
			"--service-cluster-ip-range="+serviceCIDR,
		)},
		{name: nameScheduler, timeout: clientTimeout, args: clientFlags(nameScheduler, PortScheduler)},
		{name: nameKwok, timeout: clientTimeout, args: []string{
			"--kubeconfig=" + kubeconfig,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + kwokAnnotationKey + "=" + kwokAnnotationValue,
			"--node-lease-duration-seconds=40",
			"--server-address=127.0.0.1:" + strconv.Itoa(ports[PortKwok]),
		}},
	}
	for i := range comps {
		comps[i].probe = p.probeFor(comps[i].name)
	}
	return comps
}
