package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/cli"
)

// writeProxy sits between the meshroll CLI and the sandbox's API server and
// counts what the CLI writes: the CLI builds its own clients from a
// kubeconfig, so counting has to happen on the wire. It speaks plain HTTP on
// loopback and forwards with the sandbox's admin credentials.
type writeProxy struct {
	kubeconfig string // points the CLI at the proxy
	writes     atomic.Int64
}

// startWriteProxy serves until the test ends.
func startWriteProxy(tb testing.TB, cfg *rest.Config) *writeProxy {
	tb.Helper()
	target, err := url.Parse(cfg.Host)
	if err != nil {
		tb.Fatalf("failed to parse API server URL %q: %v", cfg.Host, err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		tb.Fatalf("failed to build API server transport: %v", err)
	}
	wp := &writeProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("failed to listen for the write proxy: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			wp.writes.Add(1)
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })

	wp.kubeconfig = filepath.Join(tb.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster:
    server: http://%s
users:
- name: bench
  user: {}
contexts:
- name: bench
  context:
    cluster: bench
    user: bench
current-context: bench
`, l.Addr())
	if err := os.WriteFile(wp.kubeconfig, []byte(kc), 0o600); err != nil {
		tb.Fatal(err)
	}
	return wp
}

// runCLI runs `meshroll <args>` in-process against the proxy and returns
// its exit code and everything it printed.
func (wp *writeProxy) runCLI(ctx context.Context, args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Main(ctx, append(args, "--kubeconfig", wp.kubeconfig), &out, &out)
	return code, out.String()
}
