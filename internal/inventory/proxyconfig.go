package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshroll/meshroll/internal/istio"
)

// proxyConfigPath lists every ProxyConfig; the CRD exists only where
// Istio's base chart is installed, so a 404 means "none".
const proxyConfigPath = "/apis/networking.istio.io/v1beta1/proxyconfigs"

// readProxyConfigs reads the ProxyConfig resources that set an image type.
// It goes through the clientset's REST client rather than a dynamic client:
// the resources are few and only three fields matter.
func readProxyConfigs(ctx context.Context, c Clients) ([]istio.ProxyConfig, error) {
	disc := c.Kube.Discovery()
	if disc == nil {
		return nil, nil
	}
	rc := disc.RESTClient()
	if rc == nil { // fake clientsets have no REST client: no ProxyConfigs
		return nil, nil
	}
	raw, err := rc.Get().AbsPath(proxyConfigPath).SetHeader("Accept", "application/json").Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", "proxyconfigs.networking.istio.io", err)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				Image struct {
					ImageType string `json:"imageType"`
				} `json:"image"`
			} `json:"spec"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("failed to decode %s: %w", "proxyconfigs.networking.istio.io", err)
	}
	var out []istio.ProxyConfig
	for _, it := range list.Items {
		if it.Spec.Image.ImageType == "" {
			continue
		}
		out = append(out, istio.ProxyConfig{Namespace: it.Metadata.Namespace, Name: it.Metadata.Name,
			Selector: it.Spec.Selector.MatchLabels, ImageType: it.Spec.Image.ImageType})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
