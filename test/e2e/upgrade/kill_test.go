package upgrade

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// Kill points: the step of `meshroll upgrade` (or of `meshroll rollback`)
// during which the process gets SIGKILL.
const (
	killInstall  = "install"
	killGateways = "gateways"
	killWaves    = "waves"
	killGating   = "gating"
	killBake     = "bake"
	killTags     = "tags"
	killRollback = "rollback"
)

// killSchedule is how many kills each step gets (22 in all).
var killSchedule = map[string]int{
	killInstall: 2, killGateways: 3, killWaves: 4, killGating: 3, killBake: 3, killTags: 3, killRollback: 4,
}

// TestKilledAndResumed runs the real `meshroll upgrade` and `meshroll
// rollback` processes and kills them with SIGKILL at 22 random points spread
// over every step (install, gateway flip, waves, gating, bake, tag moves and
// the rollback itself), each followed by a rerun or by `meshroll rollback`.
// The upgrades go back and forth between two revisions over one mesh (a
// namespace per mechanism: namespace label, pod label, revision tag; a tag no
// workload uses; a blue/green gateway). After each follow-up everything is
// consistently on one revision: every pod's sidecar, namespace labels, pod
// templates, both tags and the gateway's Service; no workload restarted twice
// (its generation moved once forward, or forward and back), none without a
// sidecar. The schedule's seed is logged; MESHROLL_KILL_SEED replays one.
func TestKilledAndResumed(t *testing.T) {
	e := newEnv(t)
	k := newKillRig(t, e)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("MESHROLL_KILL_SEED"); s != "" {
		if _, err := fmt.Sscan(s, &seed); err != nil {
			t.Fatalf("MESHROLL_KILL_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill schedule seed %d (replay with MESHROLL_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var points []string
	for step, n := range killSchedule {
		for range n {
			points = append(points, step)
		}
	}
	slices.Sort(points)
	rng.Shuffle(len(points), func(i, j int) { points[i], points[j] = points[j], points[i] })
	// The installs come first: each adds a revision the later upgrades use.
	slices.SortStableFunc(points, func(a, b string) int { return boolCmp(a == killInstall, b == killInstall) })

	start := time.Now()
	outcomes := map[string]int{}
	kills, cycles := 0, 0
	for len(points) > 0 && cycles < 2*len(killSchedule)+30 {
		point := points[0]
		points = points[1:]
		cycles++
		outcome, killed := k.cycle(t, cycles, point, rng)
		if !killed {
			// The step ended before the kill came: try that step again.
			points = append(points, point)
			continue
		}
		kills++
		outcomes[outcome]++
	}
	t.Logf("%d kills in %d cycles in %s: %v", kills, cycles, time.Since(start).Round(time.Second), outcomes)
	if len(points) > 0 {
		t.Errorf("steps never caught: %v", points)
	}
}

func boolCmp(a, b bool) int {
	switch {
	case a && !b:
		return -1
	case b && !a:
		return 1
	}
	return 0
}

// killRig is the mesh the kill test moves back and forth.
type killRig struct {
	e   *env
	bin string
	kc  string
	nss []string
	// revNS, podNS and tagNS are the namespaces of each mechanism.
	revNS, podNS, tagNS string
	workloads           int
	// cur is the revision everything is on; other the one the next
	// upgrade goes to; version maps revisions to their release.
	cur, other string
	version    map[string]string
	// probe is a load-probe target answering 200; probed counts its
	// requests (a probe gate running is the gating step under way).
	probe  string
	probed *atomic.Int64
}

const (
	killTag     = "kill-used" // the tag tagNS is labelled with
	killIdleTag = "kill-idle" // tags no workload uses: moved by the tags step
	killIdle2   = "kill-idle2"
	killGW      = "killgw"
	killGWNS    = "kill-gw"
)

func newKillRig(t *testing.T, e *env) *killRig {
	t.Helper()
	ctx := t.Context()
	for _, tag := range []string{killTag, killIdleTag, killIdle2} {
		if _, err := controlplane.SetTag(ctx, e.cp(), controlplane.TagOptions{Tag: tag, Revision: fromRev, Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "killed", Namespaces: 3, Workloads: 9, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	// killed-00 namespace label, killed-01 pod labels, killed-02 the tag.
	tagNS := p.Namespaces[2].Name
	p.Namespaces[2].Labels[istio.LabelRev] = killTag
	for i := range p.Workloads {
		if p.Workloads[i].Namespace == tagNS {
			delete(p.Workloads[i].PodLabels, istio.LabelRev)
		}
	}
	if err := demo.Apply(ctx, e.kube, p); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitReady(ctx, e.kube, p); err != nil {
		t.Fatal(err)
	}
	gatewayOn(t, killGW, killGWNS, fromRev)
	var probed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { probed.Add(1) }))
	t.Cleanup(srv.Close)
	return &killRig{probe: srv.URL, probed: &probed,
		e: e, bin: buildMeshroll(t), kc: sandboxtest.Kubeconfig(t), nss: p.NamespaceNames(),
		revNS: p.Namespaces[0].Name, podNS: p.Namespaces[1].Name, tagNS: tagNS, workloads: len(p.Workloads),
		cur: fromRev, other: toRev, version: map[string]string{fromRev: fromVersion, toRev: toVersion},
	}
}

// cycle runs one upgrade killed at point, follows it up (a rerun or a
// rollback, or for a killed rollback its rerun) and checks the mesh. It
// returns how the cycle ended, for the summary.
func (k *killRig) cycle(t *testing.T, n int, point string, rng *rand.Rand) (string, bool) {
	t.Helper()
	name := fmt.Sprintf("kill-%02d", n)
	to := k.other
	args := []string{"upgrade", "--kubeconfig", k.kc, "--to", k.version[k.other], "--from", k.cur, "--name", name,
		"--namespace-only", strings.Join(k.nss, ","), "--waves", "3,100%", "--parallelism", "3", "--bake", "2s"}
	if point == killInstall {
		// A revision of its own, so the install step has work to do (of
		// the newer release: meshroll refuses to install a downgrade).
		to = fmt.Sprintf("kill-c%02d", n)
		k.version[to] = toVersion
		args[4] = toVersion
	} else {
		args = append(args, "--skip", "install")
	}
	args = append(args, "--revision", to)
	if point == killGating {
		// A probe gate makes gating last (3 s a run) long enough to hit.
		args = append(args, "--probe", k.probe)
	}
	before := k.generations(t)
	cycleStart := time.Now()

	// Where in the step, in milliseconds after it is seen.
	delay := time.Duration(rng.IntN(map[string]int{killInstall: 1500, killGateways: 40, killWaves: 30, killGating: 2500, killBake: 1500, killTags: 20, killRollback: 600}[point])) * time.Millisecond
	wave := 1 + rng.IntN(k.workloads-1) // for waves: kill once this many were patched
	back := rng.IntN(2) == 0            // follow-up: rollback (true) or rerun

	var at string
	killed := true
	if point == killRollback {
		// Upgrade partly (kill it in the waves) or fully, then kill the
		// rollback itself and rerun it.
		if rng.IntN(2) == 0 {
			at, _ = k.killAt(t, name, args, k.trigger(t, name, killWaves, to, wave%4+1), 0)
		} else {
			k.run(t, args...)
		}
		if k.mu(t, name) == nil {
			back, killed = false, false
		} else {
			var rb string
			rb, killed = k.killAt(t, name, []string{"rollback", name, "--kubeconfig", k.kc}, func(mu *v1alpha1.MeshUpgrade) bool {
				return mu != nil && mu.Status.Phase == v1alpha1.PhaseRollingBack
			}, delay)
			at += " then rollback " + rb
			back = true
		}
	} else {
		at, killed = k.killAt(t, name, args, k.trigger(t, name, point, to, wave), delay)
	}
	mu := k.mu(t, name)
	switch {
	case back && mu != nil:
		k.run(t, "rollback", name, "--kubeconfig", k.kc)
		to = k.cur
	case mu != nil && mu.Status.Phase == v1alpha1.PhaseSucceeded:
		// The run had finished when the kill came: nothing to resume.
	default:
		back = false
		k.run(t, args...)
	}
	outcome := "rerun → " + to
	if back {
		outcome = "rollback → " + to
	}
	k.check(t, name, to, before, back)
	t.Logf("cycle %2d, kill at %-9s %-60s %s (%s)", n, point, at, outcome, time.Since(cycleStart).Round(100*time.Millisecond))
	if to != k.cur {
		k.cur, k.other = to, k.cur
	}
	return point + ": " + strings.Fields(outcome)[0], killed
}

// trigger says when the step of point is under way.
func (k *killRig) trigger(t *testing.T, name, point, to string, moved int) func(*v1alpha1.MeshUpgrade) bool {
	switch point {
	case killInstall:
		return func(*v1alpha1.MeshUpgrade) bool {
			_, err := k.e.kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+to, metav1.GetOptions{})
			return err == nil
		}
	case killGateways:
		return func(mu *v1alpha1.MeshUpgrade) bool { return mu != nil && mu.Status.Step(v1alpha1.StepGateways) != nil }
	case killWaves:
		// The workloads' own label, not the record (written about once a
		// second): the kill lands right after the moved-th patch.
		return func(*v1alpha1.MeshUpgrade) bool {
			n := 0
			for _, ns := range k.nss {
				l, err := k.e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "meshroll.io/upgrade=" + name})
				if err == nil {
					n += len(l.Items)
				}
			}
			return n >= moved
		}
	case killGating:
		// The Gating phase is written with the verdicts, so the probe's
		// traffic is what says the gates are running.
		from := k.probed.Load()
		return func(*v1alpha1.MeshUpgrade) bool { return k.probed.Load() > from }
	case killBake:
		return func(mu *v1alpha1.MeshUpgrade) bool { return mu != nil && mu.Status.Phase == v1alpha1.PhaseBaking }
	case killTags:
		// The tags step is quicker than its record shows: the kill comes
		// right after its first write (kill-idle moved, kill-idle2 not yet).
		return func(*v1alpha1.MeshUpgrade) bool {
			w, err := k.e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), istio.TagWebhookPrefix+killIdleTag, metav1.GetOptions{})
			return err == nil && w.Labels[istio.LabelRev] == to
		}
	}
	t.Fatalf("unknown kill point %q", point)
	return nil
}

// killAt starts the command, waits (polling every 20 ms) until ready says
// the step is under way, waits delay more and sends SIGKILL. It returns what
// the record showed at the kill. A command that ends first is not an error
// (the step was too quick to catch): the cycle goes on from its end.
func (k *killRig) killAt(t *testing.T, name string, args []string, ready func(*v1alpha1.MeshUpgrade) bool, delay time.Duration) (string, bool) {
	t.Helper()
	cmd := exec.Command(k.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(3 * time.Minute)
	for {
		select {
		case err := <-done:
			return fmt.Sprintf("(ended first: %v)", err), false
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("%s: the step never came\n%s", name, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if ready(k.mu(t, name)) {
			break
		}
	}
	select {
	case err := <-done:
		return fmt.Sprintf("(ended first: %v)", err), false
	case <-time.After(delay):
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	mu := k.mu(t, name)
	if mu == nil {
		return fmt.Sprintf("+%s: no MeshUpgrade yet", delay), true
	}
	steps := []string{}
	for _, s := range mu.Status.Steps {
		steps = append(steps, s.Name+"="+string(s.State))
	}
	return fmt.Sprintf("+%s: %s %d/%d moved %d rolled back %v", delay.Round(time.Millisecond), mu.Status.Phase, mu.Status.Counts.Succeeded, mu.Status.Counts.Total, mu.Status.Counts.RolledBack, steps), true
}

// run runs a command to its end (within 4 minutes); it must succeed.
func (k *killRig) run(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, k.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args[:2], " "), err, out)
	}
}

// mu reads the MeshUpgrade, nil when it does not exist.
func (k *killRig) mu(t *testing.T, name string) *v1alpha1.MeshUpgrade {
	t.Helper()
	mu, err := k.e.store().Get(t.Context(), name)
	if err != nil {
		return nil
	}
	return mu
}

// generations reads every seeded Deployment's generation: a restart (or a
// restore) is one template change, one generation.
func (k *killRig) generations(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, ns := range k.nss {
		l, err := k.e.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range l.Items {
			out[ns+"/"+d.Name] = d.Generation
		}
	}
	return out
}

// check asserts the mesh is consistently on rev after upgrade name: every
// pod (running, ready, injected by rev), labels, templates, tags, gateway;
// each Deployment changed once (forward) or zero or two times (rolled back).
func (k *killRig) check(t *testing.T, name, rev string, before map[string]int64, rolledBack bool) {
	t.Helper()
	ctx := t.Context()
	mu := k.mu(t, name)
	want := v1alpha1.PhaseSucceeded
	if rolledBack {
		want = v1alpha1.PhaseRolledBack
	}
	if mu == nil || mu.Status.Phase != want {
		t.Fatalf("%s: MeshUpgrade %+v, want phase %s", name, mu, want)
	}
	image := "docker.io/istio/proxyv2:" + k.version[rev]
	if imgs := k.e.waitPodsSettled(t, k.nss, k.workloads); imgs[image] != k.workloads || len(imgs) != 1 {
		t.Errorf("%s: pods by proxy image %s; want all %d on %s", name, describe(imgs), k.workloads, image)
	}
	for _, ns := range k.nss {
		pods, err := k.e.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Annotations[istio.LabelRev] != rev {
				t.Errorf("%s: pod %s/%s injected by %q, want %q", name, ns, p.Name, p.Annotations[istio.LabelRev], rev)
			}
		}
	}
	if got := k.e.nsRev(t, k.revNS); got != rev {
		t.Errorf("%s: namespace %s labelled %q, want %q", name, k.revNS, got, rev)
	}
	if got := k.e.nsRev(t, k.tagNS); got != killTag {
		t.Errorf("%s: namespace %s labelled %q, want the tag %q", name, k.tagNS, got, killTag)
	}
	for _, tag := range []string{killTag, killIdleTag, killIdle2} {
		w, err := k.e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, istio.TagWebhookPrefix+tag, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Labels[istio.LabelRev]; got != rev {
			t.Errorf("%s: tag %s points at %q, want %q", name, tag, got, rev)
		}
	}
	if got := k.e.gatewayLive(t, killGWNS, killGW); got != rev {
		t.Errorf("%s: gateway %s/%s selects %q, want %q", name, killGWNS, killGW, got, rev)
	}
	deps, err := k.e.kube.AppsV1().Deployments(k.podNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if got := d.Spec.Template.Labels[istio.LabelRev]; got != rev {
			t.Errorf("%s: Deployment %s/%s template names %q, want %q", name, k.podNS, d.Name, got, rev)
		}
	}
	for key, gen := range k.generations(t) {
		d := gen - before[key]
		if (!rolledBack && d != 1) || (rolledBack && d != 0 && d != 2) {
			t.Errorf("%s: Deployment %s changed %d time(s) (rolled back %v): restarted twice, or never", name, key, d, rolledBack)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// buildMeshroll builds the CLI once per test.
func buildMeshroll(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshroll")
	build := exec.Command("go", "build", "-o", bin, "github.com/meshroll/meshroll/cmd/meshroll")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("go build meshroll: %v", err)
	}
	return bin
}
