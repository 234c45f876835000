package sandbox

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// contextName names the cluster, user and context in the admin kubeconfig, so users can merge it
// into their own kubeconfig without clashes.
const contextName = "meshroll-sandbox"

// adminKubeconfig renders a self-contained kubeconfig (certificates inlined) for the sandbox's
// admin user, so it stays valid when copied elsewhere.
func adminKubeconfig(apiserverPort int, files pkiFiles) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cluster := clientcmdapi.NewCluster()
	cluster.Server = fmt.Sprintf("https://127.0.0.1:%d", apiserverPort)
	cluster.CertificateAuthorityData = files[fileCACert]
	cfg.Clusters[contextName] = cluster
	user := clientcmdapi.NewAuthInfo()
	user.ClientCertificateData = files[fileAdminCert]
	user.ClientKeyData = files[fileAdminKey]
	cfg.AuthInfos[contextName] = user
	kctx := clientcmdapi.NewContext()
	kctx.Cluster = contextName
	kctx.AuthInfo = contextName
	kctx.Namespace = "default"
	cfg.Contexts[contextName] = kctx
	cfg.CurrentContext = contextName
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to serialise kubeconfig %q: %w", contextName, err)
	}
	return b, nil
}
