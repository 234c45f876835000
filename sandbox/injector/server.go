package injector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/istio"
)

// Options configure Run.
type Options struct {
	// Addr is where to listen, 127.0.0.1:port. A fixed port keeps webhooks
	// rewritten by an earlier run valid across restarts; port 0 picks a free
	// one (fine for tests, which publish and rewrite after Run starts).
	Addr string
	// CertDir holds the CA and serving certificate; they are reused across
	// restarts so the published caBundle stays the same.
	CertDir string
	// Logger receives the serving URL (Info), pods let through because their
	// revision has no injector ConfigMap (Warn) and every per-pod decision
	// (Debug); nil means slog.Default().
	Logger *slog.Logger
}

// shutdownGrace bounds how long in-flight admission calls may finish once
// ctx is done; the API server's own webhook timeout is 10 s at most.
const shutdownGrace = 5 * time.Second

// Run serves the injector over HTTPS on opts.Addr until ctx is done, after
// publishing its Endpoint (see Publish) so that meshroll can rewrite Istio's
// webhooks to reach it. It watches istio-system's ConfigMaps through an
// informer and serves only once that cache has synced, so the first pods are
// not let through uninjected.
//
// In a sandbox started in real-istiod mode (sandbox.EnvIstiod=real) it runs
// RunReal instead: real istiod answers Istio's webhooks there.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if realMode() {
		return RunReal(ctx, cfg, opts)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.CertDir == "" {
		return fmt.Errorf("failed to start injector %q: CertDir is empty", opts.Addr)
	}
	pair, caPEM, err := loadOrCreateCerts(opts.CertDir, time.Now())
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create client for %q: %w", cfg.Host, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(istio.SystemNamespace))
	configMaps := factory.Core().V1().ConfigMaps()
	configMaps.Informer() // register before Start
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			if err := ctx.Err(); err != nil {
				return nil
			}
			return fmt.Errorf("failed to sync informer %q", typ.String())
		}
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", opts.Addr, err)
	}
	srv := &http.Server{
		Handler:           newHandler(configMaps.Lister().ConfigMaps(istio.SystemNamespace), log),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()

	ep := Endpoint{URL: "https://" + ln.Addr().String(), CABundle: caPEM}
	if err := Publish(ctx, client, ep); err != nil {
		_ = srv.Close()
		<-serveErr
		return err
	}
	log.Info("sandbox injector serving", "url", ep.URL)

	select {
	case err := <-serveErr:
		return fmt.Errorf("failed to serve injector %q: %w", ep.URL, err)
	case <-ctx.Done():
	}
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve injector %q: %w", ep.URL, err)
	}
	return nil
}
