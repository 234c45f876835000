package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts. The API server waits TimeoutSeconds for an answer, so
// nothing legitimate needs longer; the bounds only stop stuck clients from
// holding connections.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 90 * time.Second
	// shutdownGrace lets in-flight admission calls finish once ctx is done;
	// the API server would give up on them after TimeoutSeconds anyway.
	shutdownGrace = 5 * time.Second
)

// Serve serves h over HTTPS (TLS 1.2 or newer) with cert on addr until ctx is
// done, then shuts down gracefully and returns nil. addr may use port 0; ready,
// when not nil, is called with the bound address once the listener accepts
// connections, so callers can register a URL without guessing the port.
func Serve(ctx context.Context, addr string, cert tls.Certificate, h http.Handler, ready func(addr string)) error {
	return ServeRotating(ctx, addr, NewKeeper(cert), h, ready)
}

// ServeRotating is Serve with the certificate taken from certs at every TLS
// handshake, so a rotated certificate (Keeper.Follow, Rotator) is served
// from the next connection on without a restart or a dropped request.
func ServeRotating(ctx context.Context, addr string, certs *Keeper, h http.Handler, ready func(addr string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		TLSConfig:         &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12},
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		// TLS handshake failures (e.g. an API server with a stale caBundle)
		// are the main thing to diagnose here; send them to the app's logger.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	bound := ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	if ready != nil {
		ready(bound)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("failed to serve webhook on %q: %w", bound, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("failed to serve webhook on %q: %w", bound, err)
	}
	return nil
}
