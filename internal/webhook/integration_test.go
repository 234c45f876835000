package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestMain starts one API-only sandbox for the package (etcd and
// kube-apiserver are all the webhook needs); with -short only unit tests and
// benchmarks run.
func TestMain(m *testing.M) { os.Exit(sandboxtest.Main(m, sandboxtest.WithAPIOnly())) }

// failOpenBudget is how long a create may take while the webhook is down:
// a refused connection must not cost anything like the webhook timeout.
const failOpenBudget = 3 * time.Second

func TestSandboxRevisionAssignment(t *testing.T) {
	cs, err := kubernetes.NewForConfig(sandboxtest.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ns := fmt.Sprintf("wh-%x", time.Now().UnixNano()&0xffffff)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
		_ = Unregister(context.WithoutCancel(ctx), cs)
	})

	pair, caPEM := ensureCertTwice(t, cs, ns)

	table := NewTable()
	assign := map[Key]string{}
	for _, name := range []string{"probe", "web", "plain", "down", "hung"} {
		assign[Key{Upgrade: upgradeName, Kind: "Deployment", Namespace: ns, Name: name}] = newRev
	}
	table.Replace(assign)
	h := NewHandler(table, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})))
	addr, stop := startServe(t, pair, h)
	if err := Register(ctx, cs, Registration{URL: "https://" + addr + PathMutate, CABundle: caPEM}); err != nil {
		t.Fatal(err)
	}
	if err := Register(ctx, cs, Registration{URL: "https://" + addr + PathMutate, CABundle: caPEM}); err != nil {
		t.Fatalf("second Register() = %v, want an idempotent apply", err)
	}
	deps := cs.AppsV1().Deployments(ns)

	// The API server picks webhook configurations up asynchronously.
	waitFor(t, 30*time.Second, "the webhook to take effect", func() (bool, error) {
		d, err := deps.Create(ctx, labelledDeployment("probe", true), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && templateRev(d) == newRev, err
	})

	t.Run("create is stamped", func(t *testing.T) {
		if _, err := deps.Create(ctx, labelledDeployment("web", true), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := storedRev(t, cs, ns, "web"); got != newRev {
			t.Errorf("stored %s = %q, want %q", istio.LabelRev, got, newRev)
		}
	})
	t.Run("update putting the old revision back is stamped", func(t *testing.T) {
		d, err := deps.Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.Spec.Template.Labels[istio.LabelRev] = oldRev
		d.Spec.Template.Annotations = map[string]string{"deploy/sha": "abc123"}
		if _, err := deps.Update(ctx, d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := storedRev(t, cs, ns, "web"); got != newRev {
			t.Errorf("after update: stored %s = %q, want %q", istio.LabelRev, got, newRev)
		}
		// What `kubectl apply` sends: a strategic merge patch with the owner's value.
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"labels":{%q:%q}}}}}`, istio.LabelRev, oldRev)
		if _, err := deps.Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := storedRev(t, cs, ns, "web"); got != newRev {
			t.Errorf("after patch: stored %s = %q, want %q", istio.LabelRev, got, newRev)
		}
	})
	t.Run("unlabelled workload is never sent to the webhook", func(t *testing.T) {
		before := h.Stats().Requests
		if _, err := deps.Create(ctx, labelledDeployment("plain", false), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := storedRev(t, cs, ns, "plain"); got != oldRev {
			t.Errorf("stored %s = %q, want the owner's %q", istio.LabelRev, got, oldRev)
		}
		if after := h.Stats().Requests; after != before {
			t.Errorf("webhook saw %d requests for an unlabelled Deployment, want 0", after-before)
		}
	})

	t.Run("fails open when the server is down", func(t *testing.T) {
		if err := stop(); err != nil {
			t.Fatalf("Serve() = %v after cancel, want nil", err)
		}
		start := time.Now()
		if _, err := deps.Create(ctx, labelledDeployment("down", true), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with the webhook down: %v", err)
		}
		if took := time.Since(start); took > failOpenBudget {
			t.Errorf("create with the webhook down took %v, want < %v", took, failOpenBudget)
		} else {
			t.Logf("create with the webhook down took %v", took)
		}
		if got := storedRev(t, cs, ns, "down"); got != oldRev {
			t.Errorf("stored %s = %q, want %q (nobody stamped it)", istio.LabelRev, got, oldRev)
		}
	})

	t.Run("fails open within the timeout when the server hangs", func(t *testing.T) {
		hungAddr, accepted := blackHole(t)
		if err := Register(ctx, cs, Registration{URL: "https://" + hungAddr + PathMutate, CABundle: caPEM}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the API server to call the hung webhook", func() (bool, error) {
			_, err := deps.Create(ctx, labelledDeployment("probe", true), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return accepted.Load() > 0, err
		})
		start := time.Now()
		if _, err := deps.Create(ctx, labelledDeployment("hung", true), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create with the webhook hung: %v", err)
		}
		took := time.Since(start)
		t.Logf("create with the webhook hung took %v (timeout %ds)", took, TimeoutSeconds)
		if limit := time.Duration(TimeoutSeconds)*time.Second + 2*time.Second; took > limit {
			t.Errorf("create with the webhook hung took %v, want < %v", took, limit)
		}
	})

	if err := Unregister(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := Unregister(ctx, cs); err != nil {
		t.Errorf("second Unregister() = %v, want nil", err)
	}
}

// ensureCertTwice checks that a second EnsureCert reuses the Secret the first
// one wrote, and returns the certificate.
func ensureCertTwice(t *testing.T, cs kubernetes.Interface, ns string) (tls.Certificate, []byte) {
	t.Helper()
	hosts := []string{"127.0.0.1", "localhost"}
	pair, caPEM, err := EnsureCert(t.Context(), cs, ns, "meshroll-webhook-tls", hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair2, caPEM2, err := EnsureCert(t.Context(), cs, ns, "meshroll-webhook-tls", hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(pair.Certificate[0]) != string(pair2.Certificate[0]) || string(caPEM) != string(caPEM2) {
		t.Error("second EnsureCert() issued a new certificate instead of reusing the Secret")
	}
	return pair, caPEM
}

// startServe runs Serve on a free loopback port; stop cancels it and returns
// Serve's error. The test's cleanup stops it too.
func startServe(t *testing.T, pair tls.Certificate, h *Handler) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- Serve(ctx, "127.0.0.1:0", pair, h, func(a string) { addrc <- a }) }()
	var once atomic.Bool
	var result error
	stop := func() error {
		if once.Swap(true) {
			return result
		}
		cancel()
		select {
		case result = <-errc:
		case <-time.After(10 * time.Second):
			result = errors.New("Serve did not return within 10s of cancel")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case a := <-addrc:
		return a, stop
	case err := <-errc:
		t.Fatalf("Serve() = %v before it was ready", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve() not ready within 10s")
	}
	return "", nil
}

// blackHole accepts connections on loopback and never answers, like a webhook
// stuck in a deadlock; it counts accepted connections.
func blackHole(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					_ = c.Close()
				}
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), &accepted
}

// labelledDeployment is a Deployment whose owner pins istio.io/rev=oldRev,
// optionally labelled as covered by an upgrade.
func labelledDeployment(name string, selected bool) *appsv1.Deployment {
	d := deployment()
	d.Name, d.Namespace = name, ""
	d.Annotations = nil
	if !selected {
		delete(d.Labels, LabelUpgrade)
	}
	d.Spec.Selector.MatchLabels = map[string]string{"app": name}
	d.Spec.Template.Labels["app"] = name
	return d
}

func templateRev(d *appsv1.Deployment) string { return d.Spec.Template.Labels[istio.LabelRev] }

// storedRev reads the Deployment back so the assertion is about what etcd
// holds, not about the create/update response.
func storedRev(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return templateRev(d)
}

// waitFor polls cond every 200ms until it holds, failing after timeout with
// cond's last error. Errors are retried: the webhook configuration reaches
// the API server's cache late.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error %v)", timeout, what, err)
		}
		if err != nil && !apierrors.IsInternalError(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsTimeout(err) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
