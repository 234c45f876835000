package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// gracefulStopMax bounds the graceful stop after the drain: calls still
// running then are cut.
const gracefulStopMax = 5 * time.Second

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	port := fs.Int("port", 8080, "gRPC port on POD_IP")
	admin := fs.Int("admin", 8081, "HTTP port on POD_IP for /ready")
	version := fs.String("version", os.Getenv("VERSION"), "version named in the x-version response header (default $VERSION)")
	delay := fs.Duration("delay", 10*time.Millisecond, "simulated work per call")
	drain := fs.Duration("drain", 3*time.Second, "keep serving this long after SIGTERM; 0 exits at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ip := os.Getenv("POD_IP")
	if ip == "" {
		return errors.New("failed to start server: POD_IP is not set")
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(*port)))
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", ip, err)
	}
	var draining atomic.Bool
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-version", *version))
		time.Sleep(*delay)
		return h(ctx, req)
	}))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()

	adminLis, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(*admin)))
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", ip, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	go func() { _ = http.Serve(adminLis, mux) }() //nolint:gosec // test app on a pod address
	log.Printf("server %s serving on %s:%d (delay %s, drain %s)", *version, ip, *port, *delay, *drain)

	<-ctx.Done()
	if *drain == 0 {
		log.Printf("SIGTERM: exiting at once (no drain)")
		os.Exit(0)
	}
	draining.Store(true)
	log.Printf("SIGTERM: draining for %s", *drain)
	time.Sleep(*drain)
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(gracefulStopMax):
		srv.Stop()
	}
	log.Printf("stopped")
	return nil
}
