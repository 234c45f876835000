package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
)

// clusterHint is appended to connection errors: the commonest cause on a
// developer machine is a sandbox that is not running.
const clusterHint = "is the cluster running and is this the right kubeconfig? For the local sandbox: meshroll sandbox up && export KUBECONFIG=$(meshroll sandbox kubeconfig)"

// restConfig turns the kubectl-style flags into a client config, translating
// clientcmd's errors into one sentence that names the fix.
func restConfig(kube *genericclioptions.ConfigFlags) (*rest.Config, error) {
	cfg, err := kube.ToRESTConfig()
	if err != nil {
		msg := err.Error()
		switch {
		case clientcmd.IsEmptyConfig(err):
			return nil, fmt.Errorf("no kubeconfig found: pass --kubeconfig or set KUBECONFIG (%s)", clusterHint)
		case strings.Contains(msg, "context") && strings.Contains(msg, "does not exist"):
			return nil, fmt.Errorf("failed to load kubeconfig: %v; list the contexts with `kubectl config get-contexts` and pass one with --context", err)
		default:
			return nil, fmt.Errorf("failed to load kubeconfig: %v; check the file given by --kubeconfig or KUBECONFIG", err)
		}
	}
	// Inventory reads tens of thousands of pods: protobuf decodes several
	// times faster than JSON, and a higher QPS avoids client-side throttling
	// of the paged LISTs.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.QPS, cfg.Burst = 100, 200
	return cfg, nil
}

// clusterClients builds the clients inventory needs and proves the API server
// answers, so an unreachable cluster fails once, early and clearly.
func clusterClients(ctx context.Context, kube *genericclioptions.ConfigFlags) (inventory.Clients, error) {
	cfg, err := restConfig(kube)
	if err != nil {
		return inventory.Clients{}, err
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return inventory.Clients{}, fmt.Errorf("failed to create kubernetes client: %w", err)
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return inventory.Clients{}, fmt.Errorf("failed to create metadata client: %w", err)
	}
	if err := ping(ctx, kc, cfg.Host); err != nil {
		return inventory.Clients{}, err
	}
	return inventory.Clients{Kube: kc, Meta: mc}, nil
}

func ping(ctx context.Context, kc kubernetes.Interface, host string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res := kc.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx)
	if err := res.Error(); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return fmt.Errorf("cannot reach the Kubernetes API server at %s: %v; %s", host, err, clusterHint)
	}
	return nil
}

// executorClients builds the typed and dynamic clients an executor needs,
// after proving the cluster answers; the inventory clients come along for the
// snapshot most executors judge their step against.
func executorClients(ctx context.Context, kube *genericclioptions.ConfigFlags) (controlplane.Clients, inventory.Clients, error) {
	ic, err := clusterClients(ctx, kube)
	if err != nil {
		return controlplane.Clients{}, ic, err
	}
	cfg, err := restConfig(kube)
	if err != nil {
		return controlplane.Clients{}, ic, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return controlplane.Clients{}, ic, fmt.Errorf("failed to create dynamic client: %w", err)
	}
	return controlplane.Clients{Kube: ic.Kube, Dynamic: dyn}, ic, nil
}

// dryRunPrefix marks output lines of a dry run.
func dryRunPrefix(dryRun bool) string {
	if dryRun {
		return "(dry run) "
	}
	return ""
}
