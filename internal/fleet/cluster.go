package fleet

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// Secret conventions for members registered in a hub. A Secret labelled
// LabelCluster=<name> holds the member's kubeconfig under KeyKubeconfig, or
// under KeyValue as Cluster API writes it (<cluster>-kubeconfig, key value).
// Its other labels (env, region, tier, …) are the cluster's labels.
const (
	LabelCluster  = "meshroll.io/cluster"
	KeyKubeconfig = "kubeconfig"
	KeyValue      = "value"
	// AnnotationPrometheus on a member Secret is the member's Prometheus URL,
	// which its MeshUpgrade's gates query.
	AnnotationPrometheus = "meshroll.io/prometheus"
	// DefaultNamespace holds the member Secrets and the fleet engine's Lease.
	DefaultNamespace = "meshroll-system"
)

// Cluster is one member of the fleet: its name, labels and how to reach it.
type Cluster struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Source says where the credentials come from (a kubeconfig context or a
	// hub Secret), for messages; the credentials themselves never leave
	// Kubeconfig.
	Source string `json:"source"`
	// Prometheus is the member's Prometheus URL for its gates ("" none).
	Prometheus string `json:"prometheus,omitempty"`
	// Kubeconfig is the raw kubeconfig (from a Secret), or nil when
	// KubeconfigPath and Context name it.
	Kubeconfig     []byte `json:"-"`
	KubeconfigPath string `json:"-"`
	Context        string `json:"-"`
}

// RESTConfig builds the member's client configuration.
func (c Cluster) RESTConfig() (*rest.Config, error) {
	var cc clientcmd.ClientConfig
	if c.Kubeconfig != nil {
		raw, err := clientcmd.Load(c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("failed to parse kubeconfig of cluster %q (%s): %w", c.Name, c.Source, err)
		}
		cc = clientcmd.NewDefaultClientConfig(*raw, &clientcmd.ConfigOverrides{})
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		if c.KubeconfigPath != "" {
			rules.ExplicitPath = c.KubeconfigPath
		}
		cc = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context})
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load kubeconfig of cluster %q (%s): %w", c.Name, c.Source, err)
	}
	return cfg, nil
}

// KubeconfigFile returns a kubeconfig path and context for tools that take a
// file (the member upgrade command). A Secret's kubeconfig is written to a
// private temporary file that cleanup removes.
func (c Cluster) KubeconfigFile() (path, context string, cleanup func(), err error) {
	if c.Kubeconfig == nil {
		return c.KubeconfigPath, c.Context, func() {}, nil
	}
	f, err := os.CreateTemp("", "meshroll-member-*.kubeconfig")
	if err != nil {
		return "", "", nil, fmt.Errorf("failed to write kubeconfig of cluster %q: %w", c.Name, err)
	}
	_, werr := f.Write(c.Kubeconfig)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return "", "", nil, fmt.Errorf("failed to write kubeconfig of cluster %q: %w", c.Name, werr)
	}
	return f.Name(), "", func() { _ = os.Remove(f.Name()) }, nil
}

// File is the fleet file the CLI reads with --fleet: clusters by kubeconfig
// context.
//
//	clusters:
//	- name: prod-eu
//	  context: prod-eu          # default: the name, or kubeconfig's current context
//	  kubeconfig: ~/.kube/prod  # default: KUBECONFIG / ~/.kube/config
//	  labels: {env: prod, region: eu}
type File struct {
	Clusters []FileCluster `json:"clusters"`
}

// FileCluster is one entry of a fleet file.
type FileCluster struct {
	Name       string            `json:"name"`
	Context    string            `json:"context,omitempty"`
	Kubeconfig string            `json:"kubeconfig,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Prometheus string            `json:"prometheus,omitempty"`
}

// LoadFile reads a fleet file.
func LoadFile(path string) ([]Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read fleet file %q: %w", path, err)
	}
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("failed to parse fleet file %q: %w (expected `clusters: [{name, context, kubeconfig, labels}]`)", path, err)
	}
	out := make([]Cluster, 0, len(f.Clusters))
	for i, fc := range f.Clusters {
		if fc.Name == "" {
			return nil, fmt.Errorf("invalid fleet file %q: cluster #%d has no name", path, i+1)
		}
		// A cluster of the default kubeconfig is the context of its name;
		// a kubeconfig file of its own is used at its current context.
		ctx := fc.Context
		if ctx == "" && fc.Kubeconfig == "" {
			ctx = fc.Name
		}
		src := "context " + ctx
		if fc.Kubeconfig != "" {
			src = "kubeconfig " + fc.Kubeconfig
			if ctx != "" {
				src += " context " + ctx
			}
		}
		out = append(out, Cluster{Name: fc.Name, Labels: fc.Labels, Context: ctx, KubeconfigPath: fc.Kubeconfig,
			Prometheus: fc.Prometheus, Source: src})
	}
	return sorted(out, path)
}

// LoadSecrets reads the members registered in a hub: every Secret of
// namespace labelled LabelCluster.
func LoadSecrets(ctx context.Context, hub kubernetes.Interface, namespace string) ([]Cluster, error) {
	list, err := hub.CoreV1().Secrets(namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelCluster})
	if err != nil {
		return nil, fmt.Errorf("failed to list member Secrets in namespace %q of the hub: %w", namespace, err)
	}
	secrets := make([]*corev1.Secret, len(list.Items))
	for i := range list.Items {
		secrets[i] = &list.Items[i]
	}
	return FromSecrets(secrets, namespace)
}

// FromSecrets turns the member Secrets of a hub namespace into its
// clusters, sorted by name; a broken Secret or a name used twice is an
// error naming it.
func FromSecrets(secrets []*corev1.Secret, namespace string) ([]Cluster, error) {
	out := make([]Cluster, 0, len(secrets))
	for _, s := range secrets {
		c, err := FromSecret(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return sorted(out, "namespace "+namespace+" of the hub")
}

// FromSecret turns one member Secret into a Cluster.
func FromSecret(s *corev1.Secret) (Cluster, error) {
	name := s.Labels[LabelCluster]
	if name == "" {
		name = s.Name
	}
	kc := s.Data[KeyKubeconfig]
	if kc == nil {
		kc = s.Data[KeyValue]
	}
	if len(kc) == 0 {
		return Cluster{}, fmt.Errorf("member Secret %s/%s of cluster %q has neither a %q nor a %q key: store the member's kubeconfig under one of them",
			s.Namespace, s.Name, name, KeyKubeconfig, KeyValue)
	}
	lbls := map[string]string{}
	for k, v := range s.Labels {
		if !strings.HasPrefix(k, "meshroll.io/") {
			lbls[k] = v
		}
	}
	return Cluster{Name: name, Labels: lbls, Kubeconfig: kc, Source: "Secret " + s.Namespace + "/" + s.Name,
		Prometheus: s.Annotations[AnnotationPrometheus]}, nil
}

func sorted(cs []Cluster, where string) ([]Cluster, error) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	for i := 1; i < len(cs); i++ {
		if cs[i].Name == cs[i-1].Name {
			return nil, fmt.Errorf("cluster %q is registered twice in %s: give each member a unique name", cs[i].Name, where)
		}
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("no member cluster found in %s", where)
	}
	return cs, nil
}

// Select returns the clusters whose labels match sel.
func Select(cs []Cluster, sel labels.Selector) []Cluster {
	var out []Cluster
	for _, c := range cs {
		if sel.Matches(labels.Set(c.Labels)) {
			out = append(out, c)
		}
	}
	return out
}
