package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestRotateUnderLoad rotates the serving certificate three times while
// Fortio drives dry-run Deployment creates through the real API server,
// which calls the webhook for every one of them. Because the webhook fails
// open, a failed call would not show in Fortio's status codes, so a second
// client checks every answer it gets was mutated, and the handler counts its
// calls: zero unmutated answers and at least one call per admitted request.
func TestRotateUnderLoad(t *testing.T) {
	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.WarningHandler = rest.NoWarnings{} // one "istio.io/rev … assigned" warning per create
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ns := fmt.Sprintf("rot-%x", time.Now().UnixNano()&0xffffff)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), ns, metav1.DeleteOptions{})
		_ = Unregister(context.WithoutCancel(ctx), cs)
	})

	const secret = "meshroll-webhook-cert"
	hosts := []string{"127.0.0.1"}
	pair, caPEM, err := EnsureCert(ctx, cs, ns, secret, hosts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	table := NewTable()
	table.Replace(map[Key]string{
		{Upgrade: upgradeName, Kind: "Deployment", Namespace: ns, Name: "load"}:  newRev,
		{Upgrade: upgradeName, Kind: "Deployment", Namespace: ns, Name: "check"}: newRev,
	})
	h := NewHandler(table, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var calls atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1); h.ServeHTTP(w, r) })
	keeper := NewKeeper(pair)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrc, served := make(chan string, 1), make(chan error, 1)
	go func() { served <- ServeRotating(sctx, "127.0.0.1:0", keeper, counted, func(a string) { addrc <- a }) }()
	url := "https://" + <-addrc + PathMutate
	go keeper.Follow(sctx, cs, ns, secret, 100*time.Millisecond, func(err error) { t.Logf("keeper: %v", err) })
	rot := &Rotator{Kube: cs, Namespace: ns, Secret: secret, Hosts: hosts, Propagation: 2 * time.Second,
		Publish: func(ctx context.Context, b []byte) error {
			return Register(ctx, cs, Registration{URL: url, CABundle: b})
		}}
	if err := rot.Publish(ctx, caPEM); err != nil {
		t.Fatal(err)
	}
	deps := cs.AppsV1().Deployments(ns)
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	waitFor(t, 30*time.Second, "the webhook to take effect", func() (bool, error) {
		d, err := deps.Create(ctx, labelledDeployment("check", true), dry)
		return err == nil && templateRev(d) == newRev, err
	})

	// The checker: every answer must carry the webhook's mutation.
	var checked, unmutated atomic.Int64
	checkDone := make(chan struct{})
	cctx, stopCheck := context.WithCancel(ctx)
	go func() {
		defer close(checkDone)
		for cctx.Err() == nil {
			d, err := deps.Create(cctx, labelledDeployment("check", true), dry)
			if cctx.Err() != nil {
				return
			}
			checked.Add(1)
			if err != nil || templateRev(d) != newRev {
				unmutated.Add(1)
				t.Errorf("admission during rotation not mutated (err %v)", err)
			}
		}
	}()

	// The load: Fortio posting dry-run creates with the admin's client certificate.
	body, err := json.Marshal(labelledDeployment("load", true))
	if err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(sandboxtest.Dir(t), "pki")
	opts := &fhttp.HTTPRunnerOptions{RunnerOptions: periodic.RunnerOptions{
		QPS: 40, NumThreads: 4, Duration: 14 * time.Second, Out: io.Discard,
	}, AllowInitialErrors: true}
	opts.URL = cfg.Host + "/apis/apps/v1/namespaces/" + ns + "/deployments?dryRun=All"
	opts.Payload, opts.ContentType = body, "application/json"
	opts.CACert, opts.Cert, opts.Key = filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key")
	var res *fhttp.HTTPRunnerResults
	var ferr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); res, ferr = fhttp.RunHTTPTest(opts) }()

	time.Sleep(time.Second)
	served0 := keeper.cur.Load().Leaf.SerialNumber
	for i := range 3 {
		start := time.Now()
		if err := rot.Rotate(ctx); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		t.Logf("rotation %d done in %s", i, time.Since(start).Round(time.Millisecond))
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	stopCheck()
	<-checkDone
	if ferr != nil {
		t.Fatal(ferr)
	}
	if keeper.cur.Load().Leaf.SerialNumber.Cmp(served0) == 0 {
		t.Error("the server still serves the first certificate after three rotations")
	}
	var ok201 int64
	for code, n := range res.RetCodes {
		if code == http.StatusCreated {
			ok201 = n
		} else {
			t.Errorf("fortio got %d answers with status %d", n, code)
		}
	}
	t.Logf("fortio: %d creates admitted (%.1f/s); checker: %d, unmutated %d; webhook calls %d",
		ok201, res.ActualQPS, checked.Load(), unmutated.Load(), calls.Load())
	if ok201 == 0 || checked.Load() == 0 {
		t.Fatal("no load went through")
	}
	if got, want := calls.Load(), ok201+checked.Load(); got < want {
		t.Errorf("webhook called %d times for %d admitted requests: %d admissions failed open", got, want, want-got)
	}
	stop()
	if err := <-served; err != nil {
		t.Error(err)
	}
}
