// Command sidecar stands in for istio-proxy in meshroll-agent's tests: it
// serves a readiness endpoint (/healthz/ready), a version endpoint
// (/server_info, like Envoy's admin) and a tiny app route (/), on
// SIDECAR_ADDR. Its version is the VERSION file next to its bin/ directory;
// a FAIL file there makes readiness answer 503 (a broken release).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dir := filepath.Dir(filepath.Dir(exe))
	v, err := os.ReadFile(filepath.Join(dir, "VERSION"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	version := strings.TrimSpace(string(v))
	_, statErr := os.Stat(filepath.Join(dir, "FAIL"))
	broken := statErr == nil
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz/ready", func(w http.ResponseWriter, _ *http.Request) {
		if broken {
			http.Error(w, "broken release "+version, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"version": version, "discovery": os.Getenv("CA_ADDR")})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "hello from %s\n", version) })
	srv := &http.Server{Addr: os.Getenv("SIDECAR_ADDR"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
