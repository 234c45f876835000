package istiod

import (
	"context"
	"fmt"
	"os"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// tokenLifetime is how long an istiod's ServiceAccount token lives. A real
// kubelet refreshes the projected token; the runner asks for a long one
// instead and a sandbox runs for hours, not weeks.
const tokenLifetime = 7 * 24 * 60 * 60

// identityKubeconfig returns the kubeconfig that stands in for the pod's
// in-cluster configuration: the API server the runner reaches, its CA, and a
// token of the pod's ServiceAccount bound to the pod, so istiod works with
// exactly the RBAC its chart grants (a missing rule fails here as it would
// in a cluster), and its token dies with its pod.
func identityKubeconfig(ctx context.Context, kube kubernetes.Interface, cfg *rest.Config, s spec) ([]byte, error) {
	ns, name := splitKey(s.key)
	exp := int64(tokenLifetime)
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, s.sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{
			ExpirationSeconds: &exp,
			BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, UID: s.uid},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("failed to request token of service account %q: %w", ns+"/"+s.sa, err)
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return nil, fmt.Errorf("failed to read CA %q: %w", cfg.CAFile, err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["sandbox"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: ca}
	kc.AuthInfos[s.sa] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["pod"] = &clientcmdapi.Context{Cluster: "sandbox", AuthInfo: s.sa, Namespace: ns}
	kc.CurrentContext = "pod"
	b, err := clientcmd.Write(*kc)
	if err != nil {
		return nil, fmt.Errorf("failed to encode kubeconfig of pod %q: %w", s.key, err)
	}
	return b, nil
}
