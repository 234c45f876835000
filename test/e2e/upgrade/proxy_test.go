package upgrade

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// writeCounter is a plain-HTTP reverse proxy on 127.0.0.1 in front of the
// sandbox's API server that counts the writes (every method but GET, server
// side dry runs excepted) made through it, so a test can prove that a `meshroll` command wrote nothing:
// the command gets a kubeconfig naming the proxy, and nothing else can reach
// the cluster through it.
type writeCounter struct {
	kubeconfig string
	writes     atomic.Int64
	mu         sync.Mutex
	seen       []string
}

// startWriteCounter starts the proxy for the test's lifetime.
func startWriteCounter(t *testing.T) *writeCounter {
	t.Helper()
	cfg := sandboxtest.Config(t)
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{}
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = target.Host },
		Transport:     rt,
		FlushInterval: -1, // watches stream
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.URL.Query().Get("dryRun") == "" {
			wc.writes.Add(1)
			wc.mu.Lock()
			wc.seen = append(wc.seen, r.Method+" "+r.URL.Path)
			wc.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: srv.URL}
	kc.AuthInfos["proxy"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "proxy"}
	kc.CurrentContext = "proxy"
	wc.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, wc.kubeconfig); err != nil {
		t.Fatal(err)
	}
	return wc
}

// since returns the writes counted after n and what they were.
func (wc *writeCounter) since(n int64) (int64, []string) {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	got := wc.writes.Load() - n
	return got, append([]string(nil), wc.seen[len(wc.seen)-int(got):]...)
}
