package traffic

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// IstiodSelector finds every istiod pod, of every revision: a rollout's
// clients and servers may be connected to different revisions in the middle
// of a mesh upgrade.
const IstiodSelector = "app=istiod"

// DebugPort is istiod's monitoring port, which also serves its debug
// endpoints (/debug/syncz) to callers it authenticates.
const DebugPort = 15014

// tokenAudience is the audience istiod's Kubernetes JWT authenticator
// accepts (security.TokenAudiences, the one proxies use for certificates).
const tokenAudience = "istio-ca"

// Propagation tells when a routing change has reached the proxies: from
// istiod's own record of what it pushed to each proxy and what the proxy
// acknowledged (/debug/syncz, the data behind `istioctl proxy-status`).
// meshroll calls each istiod pod on its pod IP with a token of istiod's own
// service account, so it must run where pod IPs are reachable (in the
// cluster, as the controller does, or on a routed pod network).
type Propagation struct {
	Kube kubernetes.Interface
	// HTTP calls istiod; nil is a client with a 5 s timeout.
	HTTP *http.Client
	// Port is istiod's debug port; 0 is DebugPort.
	Port int
	// Timeout bounds one Wait; 0 is two minutes.
	Timeout time.Duration
	// Interval between reads of istiod's view; 0 is 250 ms.
	Interval time.Duration
}

// Mark is, per istiod pod, the last push it had sent before a change was
// written: a proxy has the change once it acknowledged a later push.
type Mark map[string]uint64

// Mark reads every istiod's last push; call it before writing the change.
func (p *Propagation) Mark(ctx context.Context) (Mark, error) {
	views, err := p.read(ctx)
	if err != nil {
		return nil, err
	}
	m := Mark{}
	for pod, rows := range views {
		m[pod] = LastPush(rows)
	}
	return m, nil
}

// Wait waits until every proxy of every istiod that watches one of types
// has acknowledged a push made after m. what names the change in the error.
func (p *Propagation) Wait(ctx context.Context, m Mark, what string, types ...string) error {
	timeout, interval := p.Timeout, p.Interval
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	if interval == 0 {
		interval = 250 * time.Millisecond
	}
	var lagging []string
	var readErr error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		views, err := p.read(ctx)
		if err != nil {
			readErr = err
			return false, nil
		}
		readErr, lagging = nil, nil
		for pod, rows := range views {
			for _, l := range Lagging(rows, m[pod], types) {
				lagging = append(lagging, pod+": "+l)
			}
		}
		return len(lagging) == 0, nil
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("failed to wait for %s to reach the proxies: %w", what, ctx.Err())
	}
	if readErr != nil {
		return fmt.Errorf("failed to wait for %s to reach the proxies within %s: %w", what, timeout, readErr)
	}
	const show = 5
	n, more := len(lagging), ""
	if n > show {
		more = fmt.Sprintf(" and %d more", len(lagging)-show)
		lagging = lagging[:show]
	}
	return fmt.Errorf("failed to wait for %s to reach the proxies within %s: %d not synced: %s%s; check them with `istioctl proxy-status` (a refused config shows as not acknowledged) or raise --sync-timeout",
		what, timeout, n, strings.Join(lagging, ", "), more)
}

// read returns every running istiod pod's /debug/syncz rows, by pod.
func (p *Propagation) read(ctx context.Context) (map[string][]ProxySync, error) {
	pods, err := p.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: IstiodSelector})
	if err != nil {
		return nil, fmt.Errorf("failed to list istiod pods (%s): %w", IstiodSelector, err)
	}
	views := map[string][]ProxySync{}
	tokens := map[string]string{}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		key := pod.Namespace + "/" + pod.Spec.ServiceAccountName
		if tokens[key] == "" {
			tok, err := p.token(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
			if err != nil {
				return nil, err
			}
			tokens[key] = tok
		}
		rows, err := p.syncz(ctx, pod, tokens[key])
		if err != nil {
			return nil, err
		}
		views[pod.Namespace+"/"+pod.Name] = rows
	}
	if len(views) == 0 {
		return nil, errors.New("no running istiod pod (" + IstiodSelector + ") to ask whether its proxies have the change")
	}
	return views, nil
}

// token is a short-lived token of istiod's own service account with the
// audience istiod authenticates its debug callers with.
func (p *Propagation) token(ctx context.Context, ns, sa string) (string, error) {
	exp := int64(600)
	tr, err := p.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{tokenAudience}, ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to create a token of service account %q to read istiod's sync status: %w", ns+"/"+sa, err)
	}
	return tr.Status.Token, nil
}

func (p *Propagation) syncz(ctx context.Context, pod *corev1.Pod, token string) ([]ProxySync, error) {
	port := p.Port
	if port == 0 {
		port = DebugPort
	}
	client := p.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port)) + "/debug/syncz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to ask istiod %q for its sync status: %w", pod.Namespace+"/"+pod.Name, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("failed to ask istiod %q for its sync status at %s (meshroll must reach istiod's pod IP): %w", pod.Namespace+"/"+pod.Name, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to read istiod %q sync status: %w", pod.Namespace+"/"+pod.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to ask istiod %q for its sync status at %s: %s: %.200s", pod.Namespace+"/"+pod.Name, url, resp.Status, body)
	}
	return ParseSyncz(body)
}
