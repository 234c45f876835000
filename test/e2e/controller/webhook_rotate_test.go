package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fortio.org/fortio/fhttp"
	"fortio.org/fortio/periodic"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// Rotation settings short enough for three rotations in a test: a new
// certificate every ~10 s (validity − renew-before), promoted 2 s after its
// CA is published; the controllers then check and reload every second.
var rotationFlags = []string{"--webhook-cert-validity", "25s", "--webhook-cert-renew-before", "15s", "--webhook-ca-propagation", "2s"}

// TestWebhookRotatesUnderLoad: two controller processes run as the chart's
// ServiceAccount and serve the revision-assignment webhook while a
// MeshUpgrade bakes after its first wave (so the webhook has a workload to
// stamp). Fortio drives an owner's redeploys of that workload (dry-run PUTs
// naming the old revision) through the real API server while the leader
// rotates the certificate at least three times and is SIGKILLed once, at a
// moment the API server's connection is on the other replica (a SIGKILL of
// the replica holding it fails its in-flight calls open, whatever the
// certificate does). The webhook fails open, so status codes prove nothing:
// a second client checks every answer carries the mutation, and the
// replicas' own counters must cover every admitted request. Each replica
// serves every promoted certificate (the non-leader re-reads the Secret)
// and answers calls after a rotation; the standby takes over the rotation.
func TestWebhookRotatesUnderLoad(t *testing.T) {
	e := newEnv(t)
	p := e.seed(t, demo.MigrationOptions{Prefix: "rot", Namespaces: 2, Workloads: 4})
	installChart(t)
	// Odd namespaces of the demo name the revision on their pod templates:
	// their workloads move by pod label, the ones the webhook assigns.
	ns := p.NamespaceNames()[1]

	hooks := []string{freeAddr(t), freeAddr(t)}
	front := startFront(t, hooks)
	const lease = 6 * time.Second
	flags := func(hook string) []string {
		return append([]string{"--as", chartSA, "--webhook-bind-address", hook, "--webhook-url", "https://" + front.addr() + "/mutate"}, rotationFlags...)
	}
	procs := []*proc{e.startController(t, "a", lease, "", flags(hooks[0])...), e.startController(t, "b", lease, "", flags(hooks[1])...)}

	mu := &v1alpha1.MeshUpgrade{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade"},
		ObjectMeta: metav1.ObjectMeta{Name: "rot"},
		Spec: v1alpha1.MeshUpgradeSpec{From: fromRev, To: toRev, Version: toVersion,
			Selection: v1alpha1.Selection{Namespaces: []string{ns}},
			Strategy: v1alpha1.Strategy{Waves: []v1alpha1.WaveSize{{Count: 1}}, Parallelism: 1,
				RolloutTimeout: metav1.Duration{Duration: 2 * time.Minute}, Bake: metav1.Duration{Duration: 30 * time.Minute}}},
	}
	// Installed here (not left by an earlier test of the package), 1-24-2
	// goes again with a rollback when the test ends.
	_, err := e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+toRev, metav1.GetOptions{})
	installs := apierrors.IsNotFound(err)
	applied := time.Now()
	e.applyFile(t, mu)
	t.Cleanup(func() { e.endUpgrade(t, mu.Name, installs) })
	w := e.waitBaking(t, mu.Name, procs)
	t.Logf("MeshUpgrade baking after its first wave (%s/%s moved) %s after the apply (installed %s: %v)", w.Namespace, w.Name,
		time.Since(applied).Round(time.Millisecond), toRev, installs)

	cfg := rest.CopyConfig(sandboxtest.Config(t))
	cfg.WarningHandler = rest.NoWarnings{} // one "meshroll: pod template …" warning per call
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The owner's redeploy: the stored Deployment with the revision it was
	// first deployed on (as `kubectl apply` of the original manifest
	// leaves it), sent as a dry run: the API server calls the webhooks,
	// nothing is stored.
	redeploy, err := cs.AppsV1().Deployments(w.Namespace).Get(t.Context(), w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	redeploy.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	redeploy.ResourceVersion, redeploy.ManagedFields, redeploy.Status = "", nil, appsv1.DeploymentStatus{}
	redeploy.Spec.Template.Labels[istio.LabelRev] = fromRev
	dry := metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}
	mutated := func() (bool, error) {
		d, err := cs.AppsV1().Deployments(w.Namespace).Update(t.Context(), redeploy.DeepCopy(), dry)
		return err == nil && d.Spec.Template.Labels[istio.LabelRev] == toRev, err
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if ok, _ := mutated(); ok {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the controllers' webhook did not stamp %s on a redeploy of %s/%s within 30s", toRev, w.Namespace, w.Name)
		}
	}

	rot := e.watchRotations(t, hooks)
	base := e.requestsBy(t, procs)

	// The checker: every answer must carry the webhook's mutation.
	var checked, unmutated atomic.Int64
	stopCheck, checkDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(checkDone)
		for {
			select {
			case <-stopCheck:
				return
			default:
			}
			ok, err := mutated()
			checked.Add(1)
			if !ok {
				unmutated.Add(1)
				t.Errorf("a redeploy during rotation was not stamped %s (err %v)", toRev, err)
			}
		}
	}()

	// The load: Fortio PUTting the redeploy with the admin's certificate.
	body, err := json.Marshal(redeploy)
	if err != nil {
		t.Fatal(err)
	}
	pki := filepath.Join(sandboxtest.Dir(t), "pki")
	const loadFor = 50 * time.Second
	opts := &fhttp.HTTPRunnerOptions{RunnerOptions: periodic.RunnerOptions{QPS: 40, NumThreads: 4, Duration: loadFor, Out: io.Discard},
		AllowInitialErrors: true}
	opts.URL = cfg.Host + "/apis/apps/v1/namespaces/" + w.Namespace + "/deployments/" + w.Name + "?dryRun=All"
	opts.Payload, opts.ContentType, opts.MethodOverride = body, "application/json", http.MethodPut
	opts.CACert, opts.Cert, opts.Key = filepath.Join(pki, "ca.crt"), filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key")
	var res *fhttp.HTTPRunnerResults
	var ferr error
	loadStart := time.Now()
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); res, ferr = fhttp.RunHTTPTest(opts) }()

	// One leader kill, after the first rotation under load, while the API
	// server's connection is on the other replica.
	var killedAt, takeover time.Duration
	var killedCalls float64
	if !rot.waitPromotes(loadStart, 25*time.Second) {
		t.Fatal("no certificate rotation within 25s of the load starting")
	}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && killedAt == 0; time.Sleep(100 * time.Millisecond) {
		i := e.leaderIndex(t, procs)
		if i < 0 || !front.idle(hooks[i], time.Second) {
			continue
		}
		killedCalls = e.requestsBy(t, procs[i:i+1])[0]
		old := e.leader(t.Context())
		killed := time.Now()
		procs[i].kill()
		killedAt = killed.Sub(loadStart)
		t.Logf("SIGKILL leader %s (pid %d) %s into the load; it had answered %.0f calls", procs[i].name, procs[i].cmd.Process.Pid, killedAt.Round(time.Millisecond), killedCalls)
		procs[i] = e.startController(t, procs[i].name+"'", lease, procs[i].metrics, procs[i].extra...)
		for time.Since(killed) < 3*lease && takeover == 0 {
			if l := e.leader(t.Context()); l != "" && l != old {
				takeover = time.Since(killed)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if takeover == 0 {
			t.Fatalf("no standby took over within %s of the kill", 3*lease)
		}
		t.Logf("standby leader after %s", takeover.Round(time.Millisecond))
		// The killed replica's calls are counted up to the kill.
		base[i] -= killedCalls
	}
	<-loadDone
	close(stopCheck)
	<-checkDone
	// A promotion in the load's last moments is still on its way to the
	// replicas when the load ends: give the watcher time to see it served
	// before it stops (it once stopped 110 ms after a promotion).
	rot.waitServed(hooks, rot.promotesBetween(loadStart, loadStart.Add(loadFor)), 15*time.Second)
	rot.stop()
	if ferr != nil {
		t.Fatal(ferr)
	}
	for _, p := range procs {
		if err := p.crashed(); err != nil {
			t.Error(err)
		}
	}

	var ok200 int64
	for code, n := range res.RetCodes {
		if code == http.StatusOK {
			ok200 = n
		} else {
			t.Errorf("fortio got %d answers with status %d", n, code)
		}
	}
	after := e.requestsBy(t, procs)
	var calls float64
	for i := range after {
		calls += after[i] - base[i]
	}
	promotes := rot.promotesBetween(loadStart, loadStart.Add(loadFor))
	t.Logf("fortio: %d redeploys admitted (%.1f/s) in %s; checker: %d, unmutated %d; webhook calls %.0f (a: %.0f, b: %.0f); rotations under load %d; leader killed at %s, takeover %s",
		ok200, res.ActualQPS, loadFor, checked.Load(), unmutated.Load(), calls, after[0]-base[0], after[1]-base[1], len(promotes),
		killedAt.Round(time.Millisecond), takeover.Round(time.Millisecond))
	if ok200 == 0 || checked.Load() == 0 {
		t.Fatal("no load went through")
	}
	if want := float64(ok200 + checked.Load()); calls < want {
		t.Errorf("the replicas answered %.0f admission calls for %.0f admitted requests: %.0f failed open", calls, want, want-calls)
	}
	if len(promotes) < 3 {
		t.Errorf("%d certificate rotations during the %s load, want at least 3", len(promotes), loadFor)
	}
	if len(promotes) == 0 {
		t.FailNow()
	}
	if killedAt == 0 {
		t.Error("the leader was never killed: its replica never went idle for 30s of the load")
	} else if n := len(rot.promotesBetween(loadStart.Add(killedAt+takeover), time.Now())); n == 0 {
		t.Error("no rotation after the standby took over")
	} else {
		t.Logf("%d rotation(s) by the new leader after the takeover", n)
	}
	for _, pr := range promotes {
		for _, h := range hooks {
			if !rot.served(h, pr.serial) {
				t.Errorf("replica on %s never served the certificate promoted at %s (serial %s)", h, pr.at.Sub(loadStart).Round(time.Millisecond), pr.serial)
			}
		}
	}
	// Calls each replica answered after the first rotation under load:
	// the API server opens a connection per CA bundle, the front hands
	// them out in turn.
	for i, h := range hooks {
		if n := front.connsSince(h, promotes[0].at); n == 0 {
			t.Errorf("replica on %s got no admission connection after the first rotation", h)
		}
		if after[i]-base[i] <= 0 {
			t.Errorf("replica on %s answered no admission call during the load", h)
		}
	}
}

// waitBaking waits until the upgrade moved a Deployment by pod label and
// bakes: it stays active (its assignments stand) for the rest of the test.
func (e *env) waitBaking(t *testing.T, name string, procs []*proc) v1alpha1.WorkloadStatus {
	t.Helper()
	store := upgrade.Store{Dynamic: e.dyn}
	var last *v1alpha1.MeshUpgrade
	for end := time.Now().Add(4 * time.Minute); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		for _, p := range procs {
			if err := p.crashed(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := store.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		last = got
		if w, ok := movedByPod(got); ok && got.Status.Phase == v1alpha1.PhaseBaking {
			return w
		}
	}
	t.Fatalf("MeshUpgrade %s not baking a moved workload after 4m: phase %q (%s)\n%s", name, last.Status.Phase, last.Status.Message, procs[0].logTail())
	return v1alpha1.WorkloadStatus{}
}

// endUpgrade deletes the test's upgrade, rolled back first when it
// installed 1-24-2 (the rollback removes it), so the package's sandbox is
// left as the other tests expect it.
func (e *env) endUpgrade(t *testing.T, name string, rollBack bool) {
	ctx := context.Background() // t.Context() is done in a cleanup
	mus := e.dyn.Resource(v1alpha1.GroupVersionResource)
	defer func() { _ = mus.Delete(ctx, name, metav1.DeleteOptions{}) }()
	if !rollBack {
		return
	}
	if _, err := mus.Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"rollbackRequested":true}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("request rollback of %s: %v", name, err)
		return
	}
	store := upgrade.Store{Dynamic: e.dyn}
	start := time.Now()
	for end := start.Add(2 * time.Minute); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if got, err := store.Get(ctx, name); err == nil && got.Status.Phase == v1alpha1.PhaseRolledBack {
			t.Logf("rolled back (and %s removed) in %s", toRev, time.Since(start).Round(time.Millisecond))
			return
		}
	}
	t.Errorf("MeshUpgrade %s not rolled back within 2m", name)
}

// leaderIndex is the index in procs of the leader (controller-runtime's
// leader_election_master_status on its /metrics), -1 when none.
func (e *env) leaderIndex(t *testing.T, procs []*proc) int {
	for i, p := range procs {
		if v, ok := scrape(t, p.metrics, `leader_election_master_status{name="`+controller.LeaderElectionID+`"}`); ok && v == 1 {
			return i
		}
	}
	return -1
}

// requestsBy reads each process's meshroll_webhook_requests_total.
func (e *env) requestsBy(t *testing.T, procs []*proc) []float64 {
	out := make([]float64, len(procs))
	for i, p := range procs {
		v, ok := scrape(t, p.metrics, "meshroll_webhook_requests_total")
		if !ok {
			t.Fatalf("controller %s serves no meshroll_webhook_requests_total", p.name)
		}
		out[i] = v
	}
	return out
}

// scrape reads one series of a controller's /metrics (retried: a
// replacement process may still be starting).
func scrape(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	var last error
	for range 20 {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, series+" "); ok {
						n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
						return n, err == nil
					}
				}
				return 0, false
			}
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("scrape %s: %v", addr, last)
	return 0, false
}

// promote is one certificate the leader made the serving one.
type promote struct {
	serial string
	at     time.Time
}

// rotations watches the certificate Secret and what each replica serves.
type rotations struct {
	mu       sync.Mutex
	promotes []promote
	seen     map[string]map[string]bool // replica address → serials served
	done     chan struct{}
	finished chan struct{}
}

// watchRotations polls, every 100 ms, the Secret's serving certificate (a
// change is a promotion) and the certificate each replica hands out in a
// TLS handshake.
func (e *env) watchRotations(t *testing.T, hooks []string) *rotations {
	r := &rotations{seen: map[string]map[string]bool{}, done: make(chan struct{}), finished: make(chan struct{})}
	for _, h := range hooks {
		r.seen[h] = map[string]bool{}
	}
	ns := charts.DefaultNamespace
	go func() {
		defer close(r.finished)
		prev := ""
		for {
			select {
			case <-r.done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s, err := e.kube.CoreV1().Secrets(ns).Get(t.Context(), controller.WebhookSecret, metav1.GetOptions{})
			if err != nil {
				continue
			}
			cur := serialOf(s.Data[corev1.TLSCertKey])
			r.mu.Lock()
			if cur != prev && prev != "" {
				r.promotes = append(r.promotes, promote{serial: cur, at: time.Now()})
			}
			prev = cur
			r.mu.Unlock()
			for _, h := range hooks {
				d := &net.Dialer{Timeout: time.Second}
				c, err := tls.DialWithDialer(d, "tcp", h, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads which certificate is served
				if err != nil {
					continue
				}
				serial := c.ConnectionState().PeerCertificates[0].SerialNumber.String()
				c.Close()
				r.mu.Lock()
				r.seen[h][serial] = true
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *rotations) stop() {
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	<-r.finished
}

// waitPromotes waits for a promotion after since.
func (r *rotations) waitPromotes(since time.Time, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if len(r.promotesBetween(since, time.Now())) > 0 {
			return true
		}
	}
	return false
}

func (r *rotations) promotesBetween(from, to time.Time) []promote {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []promote
	for _, p := range r.promotes {
		if !p.at.Before(from) && !p.at.After(to) {
			out = append(out, p)
		}
	}
	return out
}

// waitServed waits, at most within, until every hook has served every
// promoted certificate of promotes.
func (r *rotations) waitServed(hooks []string, promotes []promote, within time.Duration) {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		all := true
		for _, pr := range promotes {
			for _, h := range hooks {
				all = all && r.served(h, pr.serial)
			}
		}
		if all {
			return
		}
	}
}

func (r *rotations) served(hook, serial string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[hook][serial]
}

func serialOf(certPEM []byte) string {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return ""
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return ""
	}
	return c.SerialNumber.String()
}
