// Package injectortest runs the sandbox injector inside a test binary, so
// integration tests that install Istio get its real webhooks answered without
// starting the injector as a separate process.
package injectortest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox/injector"
)

// started remembers the one injector of this test binary: webhooks installed
// by one test must keep pointing at a live injector (with the same CA) in the
// next, so it is started once and runs until the process exits.
var started struct {
	sync.Once
	err error
}

// Start runs the injector against cfg's cluster once per test binary and waits
// until its endpoint is published; later calls return at once.
func Start(tb testing.TB, cfg *rest.Config) {
	tb.Helper()
	started.Do(func() { started.err = start(cfg) })
	if started.err != nil {
		tb.Fatalf("sandbox injector: %v", started.err)
	}
}

func start(cfg *rest.Config) error {
	ctx := context.Background()
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// A record left by an earlier process must not be mistaken for this one.
	err = kc.CoreV1().ConfigMaps(injector.EndpointNamespace).Delete(ctx, injector.EndpointName, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	dir, err := os.MkdirTemp("", "meshroll-injector-")
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		if err := injector.Run(ctx, cfg, injector.Options{Addr: "127.0.0.1:0", CertDir: dir, Logger: log}); err != nil {
			log.Error("sandbox injector stopped", "err", err)
		}
	}()
	_, err = injector.WaitEndpoint(ctx, kc, time.Minute)
	return err
}
