package podproc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// proxyContainer is the container Istio's injector adds, in every template
// (sidecar and grpc-agent alike).
const proxyContainer = "istio-proxy"

// plaintextXDSPort is istiod's xDS port without TLS (the chart's grpc-xds):
// the sandbox has no workload certificates for 15012.
const plaintextXDSPort = "15010"

// proxyMeta is what the xDS node identity takes from the istio-proxy
// container Istio injected.
type proxyMeta struct {
	clusterID string
	meshID    string
	version   string
}

// proxyOf reads the discovery address and node metadata the injector wrote
// into the pod's istio-proxy container.
func proxyOf(pod *corev1.Pod, c *corev1.Container) (string, proxyMeta, error) {
	key := pod.Namespace + "/" + pod.Name
	m := proxyMeta{clusterID: "Kubernetes"}
	if _, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"); ok {
		m.version = strings.TrimSuffix(tag, "-distroless")
	}
	var discovery string
	for _, e := range c.Env {
		switch e.Name {
		case "PROXY_CONFIG":
			var pc struct {
				DiscoveryAddress string `json:"discoveryAddress"`
			}
			if err := json.Unmarshal([]byte(e.Value), &pc); err != nil {
				return "", m, fmt.Errorf("failed to parse PROXY_CONFIG of pod %q: %w", key, err)
			}
			discovery = pc.DiscoveryAddress
		case "ISTIO_META_CLUSTER_ID":
			m.clusterID = e.Value
		case "ISTIO_META_MESH_ID":
			m.meshID = e.Value
		}
	}
	return discovery, m, nil
}

// bootstrap is the gRPC xDS bootstrap file format (gRFC A27) as Istio's
// grpc-agent writes it.
type bootstrap struct {
	XDSServers []xdsServer `json:"xds_servers"`
	Node       node        `json:"node"`
	// ServerListenerResourceNameTemplate lets xDS-enabled gRPC servers ask
	// istiod for their inbound listener, as with the agent's bootstrap.
	ServerListenerResourceNameTemplate string `json:"server_listener_resource_name_template"`
}

type xdsServer struct {
	ServerURI      string        `json:"server_uri"`
	ChannelCreds   []channelCred `json:"channel_creds"`
	ServerFeatures []string      `json:"server_features"`
}

type channelCred struct {
	Type string `json:"type"`
}

type node struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
}

// bootstrapFor is the bootstrap of s's process, talking to istiod at addr
// (host:port). The node id is Istio's sidecar~<ip>~<pod>.<ns>~<ns>.svc.<domain>
// and GENERATOR=grpc makes istiod answer with its gRPC generator
// (pilot/pkg/networking/grpcgen).
func bootstrapFor(s spec, addr string) bootstrap {
	ns, name := splitKey(s.key)
	meta := map[string]string{
		"GENERATOR":     "grpc",
		"NAMESPACE":     ns,
		"CLUSTER_ID":    s.proxy.clusterID,
		"ISTIO_VERSION": s.proxy.version,
		"INSTANCE_IPS":  s.ip.String(),
	}
	if s.proxy.meshID != "" {
		meta["MESH_ID"] = s.proxy.meshID
	}
	return bootstrap{
		XDSServers: []xdsServer{{ServerURI: addr, ChannelCreds: []channelCred{{Type: "insecure"}}, ServerFeatures: []string{"xds_v3"}}},
		Node: node{
			ID:       fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", s.ip, name, ns, ns),
			Metadata: meta,
		},
		ServerListenerResourceNameTemplate: "xds.istio.io/grpc/lds/inbound/%s",
	}
}

// resolveDiscovery finds the address of a discovery host
// (<svc>.<ns>.svc[:port]) the way cluster DNS plus kube-proxy would: a
// ready endpoint of the Service, on istiod's plaintext xDS port.
func resolveDiscovery(ctx context.Context, kube kubernetes.Interface, discovery string) (string, error) {
	host, _, err := net.SplitHostPort(discovery)
	if err != nil {
		host = discovery
	}
	parts := strings.Split(host, ".")
	if len(parts) < 3 || parts[2] != "svc" {
		return "", fmt.Errorf("failed to resolve discovery address %q: want <service>.<namespace>.svc", discovery)
	}
	svc, ns := parts[0], parts[1]
	slices, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return "", fmt.Errorf("failed to list endpoints of service %q: %w", ns+"/"+svc, err)
	}
	for _, sl := range slices.Items {
		for _, e := range sl.Endpoints {
			if len(e.Addresses) > 0 && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
				return net.JoinHostPort(e.Addresses[0], plaintextXDSPort), nil
			}
		}
	}
	return "", fmt.Errorf("failed to resolve discovery address %q: service %q has no ready endpoint (is its istiod running?)", discovery, ns+"/"+svc)
}

// writeBootstrap writes s's bootstrap to path.
func writeBootstrap(path string, b bootstrap) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode bootstrap %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create directory %q: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("failed to write bootstrap %q: %w", path, err)
	}
	return nil
}
