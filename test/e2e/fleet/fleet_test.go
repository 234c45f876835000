package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
)

func getWorld(t *testing.T) *world {
	t.Helper()
	if the == nil {
		t.Skip("fleet e2e skipped: needs the five sandboxes TestMain starts (run without -short)")
	}
	return the
}

// meshroll runs the built binary against the hub.
func (w *world) meshroll(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, append([]string{"--kubeconfig", w.hubKC}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

func (w *world) member(env string) *member {
	for _, m := range w.members {
		if m.env == env {
			return m
		}
	}
	panic("no member " + env)
}

// stageArgs is the three-stage rollout both runs use.
func stageArgs(name string) []string {
	return []string{"fleet", "upgrade", "--to", toVersion, "--name", name,
		"--stage", "early=env in (testing,dev)", "--stage", "preprod=env=preprod", "--stage", "prod=env=prod",
		"--canary", "tier=canary", "--require-approval", "prod", "--max-concurrent", "2",
		"--cluster-soak", "3s", "--stage-soak", "5s", "--progress-deadline", "5m",
		"--waves", "1,100%", "--rollout-timeout", "20s", "--poll", "1s"}
}

// TestFleet runs in order: status and check over the fleet (one member
// unreachable), bad input refused with no member touched, a FleetUpgrade
// halted by a planted failure in preprod (prod untouched, preprod rolled
// back), a FleetUpgrade applied to the hub that `meshroll controller`
// replicas carry out (preprod upgraded; the leader killed mid-stage), then
// the full FleetUpgrade from the CLI with approval, kills and an unreachable
// member, every pod of every member on 1.24.2 at the end.
func TestFleet(t *testing.T) {
	w := getWorld(t)
	t.Run("status", func(t *testing.T) { testStatus(t, w) })
	t.Run("bad input", func(t *testing.T) { testBadInput(t, w) })
	if t.Failed() {
		return
	}
	t.Run("planted failure halts promotion", func(t *testing.T) { testHalt(t, w) })
	if t.Failed() {
		return
	}
	t.Run("hub controller runs a FleetUpgrade", func(t *testing.T) { testController(t, w) })
	if t.Failed() {
		return
	}
	t.Run("full rollout with kills", func(t *testing.T) { testFullRollout(t, w) })
}

func testStatus(t *testing.T, w *world) {
	// A fifth member that does not answer is a row with its error.
	dead := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gone-kubeconfig", Namespace: fleet.DefaultNamespace,
		Labels: map[string]string{fleet.LabelCluster: "gone-1", "env": "lab"}},
		Data: map[string][]byte{fleet.KeyKubeconfig: []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`)}}
	if _, err := w.hub.CoreV1().Secrets(fleet.DefaultNamespace).Create(t.Context(), dead, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = w.hub.CoreV1().Secrets(fleet.DefaultNamespace).Delete(context.Background(), dead.Name, metav1.DeleteOptions{})
	}()
	start := time.Now()
	out, errOut, code := w.meshroll(t, "fleet", "status", "-o", "json", "--cluster-timeout", "10s")
	if code != 0 {
		t.Fatalf("fleet status exit %d: %s", code, errOut)
	}
	t.Logf("fleet status over 5 members in %s", time.Since(start).Round(time.Millisecond))
	var view struct{ Clusters []fleet.ClusterStatus }
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	if len(view.Clusters) != 5 {
		t.Fatalf("%d rows, want 5", len(view.Clusters))
	}
	for _, r := range view.Clusters {
		if r.Name == "gone-1" {
			if r.Error == "" || !strings.Contains(r.Error, "127.0.0.1:1") {
				t.Errorf("unreachable row error = %q", r.Error)
			}
			continue
		}
		if r.Error != "" {
			t.Errorf("%s: %s", r.Name, r.Error)
			continue
		}
		if len(r.Proxies) != 1 || r.Proxies[0].Key != fromVersion || r.Proxies[0].Pods != 4 || r.Labels["env"] == "" {
			t.Errorf("%s: proxies %+v labels %v, want 4 pods on %s", r.Name, r.Proxies, r.Labels, fromVersion)
		}
		if len(r.Revisions) != 1 || r.Revisions[0].Version != fromVersion || r.Skew != "ok" {
			t.Errorf("%s: revisions %+v skew %s", r.Name, r.Revisions, r.Skew)
		}
	}
	table, _, _ := w.meshroll(t, "fleet", "status", "--cluster-timeout", "10s")
	if !strings.Contains(table, "prod-1") || !strings.Contains(table, "1.23.2:4") || !strings.Contains(table, "5 cluster(s), 1 unreachable") {
		t.Errorf("table:\n%s", table)
	}
	_, _, code = w.meshroll(t, "fleet", "check", "--cluster-timeout", "10s")
	if code != 1 {
		t.Errorf("fleet check with an unreachable member: exit %d, want 1", code)
	}
}

// memberState is every object of a member that an upgrade could touch, by
// resourceVersion.
func memberState(t *testing.T, m *member) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	add := func(kind string, o metav1.Object) {
		out[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = o.GetResourceVersion()
	}
	deps, err := m.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range deps.Items {
		add("Deployment", &deps.Items[i])
	}
	nss, err := m.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range nss.Items {
		add("Namespace", &nss.Items[i])
	}
	pods, err := m.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		add("Pod", &pods.Items[i])
	}
	hooks, err := m.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range hooks.Items {
		add("MutatingWebhookConfiguration", &hooks.Items[i])
	}
	crds, err := m.dyn.Resource(v1alpha1.GroupVersionResource).List(ctx, metav1.ListOptions{})
	if err == nil {
		out["MeshUpgrades"] = strconv.Itoa(len(crds.Items))
	}
	return out
}

func diffState(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if after[k] != v {
			d = append(d, fmt.Sprintf("%s: %s -> %s", k, v, after[k]))
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, k+" created")
		}
	}
	sort.Strings(d)
	return d
}

func testBadInput(t *testing.T, w *world) {
	states := map[string]map[string]string{}
	for _, m := range w.members {
		states[m.name] = memberState(t, m)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"selector matching no cluster", []string{"fleet", "upgrade", "--to", toVersion, "--stage", "a=env=testing", "--stage", "b=env=staging"},
			`stage "b" selector "env=staging" matches no cluster`},
		{"stage order skipping the canary", []string{"fleet", "upgrade", "--to", toVersion, "--canary", "tier=canary",
			"--stage", "dev=env=dev", "--stage", "testing=env=testing", "--stage", "rest=env in (preprod,prod)"},
			`stage order skips the canary: stage "dev" runs before stage "testing"`},
		{"approval for a stage not reached", []string{"fleet", "approve", "nope", "prod"}, `failed to get FleetUpgrade "nope"`},
	}
	for _, tc := range cases {
		_, errOut, code := w.meshroll(t, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q, want 1 and %q", tc.name, code, errOut, tc.want)
		}
	}
	// A member Secret without a kubeconfig: refused before anything.
	broken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "broken-kubeconfig", Namespace: fleet.DefaultNamespace,
		Labels: map[string]string{fleet.LabelCluster: "broken-1", "env": "lab"}}, Data: map[string][]byte{"token": []byte("x")}}
	if _, err := w.hub.CoreV1().Secrets(fleet.DefaultNamespace).Create(t.Context(), broken, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := w.meshroll(t, append(stageArgs("bad"), "--dry-run")...)
	if code != 1 || !strings.Contains(errOut, `member Secret meshroll-system/broken-kubeconfig of cluster "broken-1" has neither a "kubeconfig" nor a "value" key`) {
		t.Errorf("missing kubeconfig Secret: exit %d, stderr %q", code, errOut)
	}
	if err := w.hub.CoreV1().Secrets(fleet.DefaultNamespace).Delete(t.Context(), broken.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Dry run: the plan, and nothing written.
	out, errOut, code := w.meshroll(t, append(stageArgs("dry"), "--dry-run")...)
	if code != 0 || !strings.Contains(out, "1      early    testing-1  true") || !strings.Contains(out, "prod     prod-1     false   required") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	for _, m := range w.members {
		if d := diffState(states[m.name], memberState(t, m)); len(d) > 0 {
			t.Errorf("bad input touched %s: %v", m.name, d)
		}
	}
	if _, err := w.hubDyn.Resource(v1alpha1.FleetUpgradeGVR).List(t.Context(), metav1.ListOptions{}); err == nil {
		t.Errorf("bad input or a dry run created the FleetUpgrade CRD in the hub")
	}
}

// plantFailure makes every restart in preprod's first namespace impossible:
// a pods quota at the current count, and a 5s progress deadline.
func plantFailure(t *testing.T, m *member, on bool) {
	t.Helper()
	ctx := t.Context()
	ns := m.nss[0]
	deadline := `{"spec":{"progressDeadlineSeconds":600}}`
	if on {
		deadline = `{"spec":{"progressDeadlineSeconds":5}}`
		pods, err := m.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "planted", Namespace: ns},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(int64(len(pods.Items)), resource.DecimalSI)}}}
		if _, err := m.kube.CoreV1().ResourceQuotas(ns).Create(ctx, q, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "the quota counts the pods", func() bool {
			got, err := m.kube.CoreV1().ResourceQuotas(ns).Get(ctx, "planted", metav1.GetOptions{})
			return err == nil && got.Status.Used.Pods().Value() == int64(len(pods.Items))
		})
	} else if err := m.kube.CoreV1().ResourceQuotas(ns).Delete(ctx, "planted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deps, err := m.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		if _, err := m.kube.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.MergePatchType, []byte(deadline), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting until %s", d, what)
		}
	}
}

// images counts a member's running pods in the seeded namespaces by proxy
// image, once every old pod is gone.
func images(t *testing.T, m *member) map[string]int {
	t.Helper()
	out := map[string]int{}
	waitFor(t, 2*time.Minute, m.name+"'s pods settled", func() bool {
		clear(out)
		n := 0
		for _, ns := range m.nss {
			pods, err := m.kube.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
			if err != nil {
				return false
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil {
					return false
				}
				n++
				for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
					if c.Name == "istio-proxy" {
						out[c.Image]++
					}
				}
			}
		}
		return n == 4
	})
	return out
}

func (w *world) fleetUpgrade(t *testing.T, name string) *v1alpha1.FleetUpgrade {
	t.Helper()
	fu, err := fleet.Store{Dynamic: w.hubDyn}.Get(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return fu
}

func testHalt(t *testing.T, w *world) {
	pre, prod := w.member("preprod"), w.member("prod")
	plantFailure(t, pre, true)
	defer plantFailure(t, pre, false)
	before := memberState(t, prod)
	start := time.Now()
	args := stageArgs("planted")
	out, errOut, code := w.meshroll(t, args...)
	t.Logf("planted run: exit %d in %s\n%s", code, time.Since(start).Round(time.Second), out)
	if code != 3 {
		t.Fatalf("planted failure: exit %d, want 3 (halted)\n%s", code, tail(errOut, 40))
	}
	fu := w.fleetUpgrade(t, "planted")
	if fu.Status.Phase != v1alpha1.FleetHalted || !strings.Contains(fu.Status.Message, "preprod-1") || !strings.Contains(fu.Status.Message, "untouched: prod-1") {
		t.Errorf("phase %s: %s", fu.Status.Phase, fu.Status.Message)
	}
	if d := diffState(before, memberState(t, prod)); len(d) > 0 {
		t.Errorf("prod touched by the halted run: %v", d)
	}
	if got := images(t, pre); got[fromImage] != 4 {
		t.Errorf("preprod after the halt: %v, want every pod back on %s", got, fromImage)
	}
	for _, env := range []string{"testing", "dev"} {
		if got := images(t, w.member(env)); got[toImage] != 4 {
			t.Errorf("%s after the halt: %v, want every pod on %s", env, got, toImage)
		}
	}
	rep, _, _ := w.meshroll(t, "fleet", "report", "planted")
	if !strings.Contains(rep, "halted") || !strings.Contains(rep, "RolledBack") {
		t.Errorf("report does not say why it halted:\n%s", rep)
	}
	page := filepath.Join(t.TempDir(), "fleet.html")
	if _, errOut, code := w.meshroll(t, "fleet", "report", "planted", "--html", page); code != 0 {
		t.Fatalf("fleet report --html: exit %d: %s", code, errOut)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"untouched: prod-1", `id="halted"`, "stage preprod · Halted", "preprod-1"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testFullRollout kills the engine at random points, approves prod when it
// waits, cuts prod off mid-upgrade, and ends with every pod on 1.24.2.
func testFullRollout(t *testing.T, w *world) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("MESHROLL_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("kill seed %d (MESHROLL_KILL_SEED replays)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	prod := w.member("prod")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	events := make(chan string, 16)
	opDone := make(chan struct{})
	go func() { defer close(opDone); w.operator(ctx, t, "full", prod, events) }()
	args := append([]string{"--kubeconfig", w.hubKC}, stageArgs("full")...)
	kills := 0
	logDir := t.TempDir()
	for run := 1; ; run++ {
		logf := filepath.Join(logDir, fmt.Sprintf("run-%d.log", run))
		f, err := os.Create(logf)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(w.bin, args...)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var timer <-chan time.Time
		if kills < 5 {
			d := time.Duration(2000+rng.IntN(6000)) * time.Millisecond
			timer = time.After(d)
		}
		select {
		case <-timer:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
			fu, _ := fleet.Store{Dynamic: w.hubDyn}.Get(t.Context(), "full")
			where := "before it was recorded"
			if fu != nil {
				where = fmt.Sprintf("%s, stage %s", fu.Status.Phase, fu.Status.CurrentStage)
			}
			t.Logf("kill %d: run %d SIGKILLed (%s)", kills, run, where)
			_ = f.Close()
			continue
		case err := <-done:
			_ = f.Close()
			b, _ := os.ReadFile(logf)
			if err != nil {
				t.Fatalf("run %d ended: %v\n%s", run, err, tail(string(b), 60))
			}
			t.Logf("run %d finished after %d kill(s):\n%s", run, kills, tail(string(b), 12))
		case <-time.After(8 * time.Minute):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			b, _ := os.ReadFile(logf)
			t.Fatalf("run %d did not finish in 8 minutes:\n%s", run, tail(string(b), 60))
		}
		break
	}
	cancel()
	<-opDone
	seen := map[string]bool{}
	for len(events) > 0 {
		seen[<-events] = true
	}
	fu := w.fleetUpgrade(t, "full")
	if fu.Status.Phase != v1alpha1.FleetSucceeded {
		t.Fatalf("phase %s: %s", fu.Status.Phase, fu.Status.Message)
	}
	if kills < 5 {
		t.Errorf("the engine was killed %d times, want at least 5", kills)
	}
	for _, want := range []string{"approved", "unreachable seen", "reachable again"} {
		if !seen[want] {
			t.Errorf("operator never saw %q", want)
		}
	}
	for _, m := range w.members {
		if got := images(t, m); got[toImage] != 4 || len(got) != 1 {
			t.Errorf("%s: %v, want every pod on %s", m.name, got, toImage)
		}
	}
	// testing and dev were already on 1.24.2 (the planted run moved them),
	// and preprod too (the controller's run): a rollback of this run
	// restores only what it changed.
	out, errOut, code := w.meshroll(t, "fleet", "rollback", "full", "--dry-run")
	if code != 0 || !strings.Contains(out, "in this order:\n  prod-1\n(dry run) nothing changed") {
		t.Errorf("rollback dry run: exit %d\n%s%s", code, out, errOut)
	}
}

// operator plays the humans around a run: approves prod once it waits, and
// cuts prod's API server off while prod upgrades, until the FleetUpgrade
// shows the member unreachable, then lets it back.
func (w *world) operator(ctx context.Context, t *testing.T, name string, prod *member, events chan<- string) {
	store := fleet.Store{Dynamic: w.hubDyn}
	approved, cut := false, false
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		fu, err := store.Get(ctx, name)
		if err != nil {
			continue
		}
		if !approved && fu.Status.Phase == v1alpha1.FleetWaitingApproval {
			out, errOut, code := w.meshroll(t, "fleet", "approve", name, "prod")
			t.Logf("approve prod: exit %d %s%s", code, out, errOut)
			if code == 0 {
				approved = true
				events <- "approved"
			}
		}
		var pc *v1alpha1.FleetClusterStatus
		for i := range fu.Status.Clusters {
			if fu.Status.Clusters[i].Name == prod.name {
				pc = &fu.Status.Clusters[i]
			}
		}
		if !cut && pc != nil && pc.State == v1alpha1.ClusterUpgrading && pc.StartedAt != nil && time.Since(pc.StartedAt.Time) > 3*time.Second {
			cut = true
			prod.proxy.close()
			t.Logf("prod cut off")
			end := time.Now().Add(90 * time.Second)
			for time.Now().Before(end) && ctx.Err() == nil {
				time.Sleep(time.Second)
				fu, err := store.Get(ctx, name)
				if err != nil {
					continue
				}
				if c := meta(fu.Status.Conditions, v1alpha1.FleetConditionReachable); c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, prod.name) {
					t.Logf("while prod is cut off: phase %s, condition %s: %s", fu.Status.Phase, c.Reason, c.Message)
					if fu.Status.Phase == v1alpha1.FleetWaitingForMember {
						events <- "unreachable seen"
						break
					}
				}
			}
			if err := prod.proxy.open(); err != nil {
				t.Errorf("reopen prod: %v", err)
			}
			events <- "reachable again"
		}
	}
}

func meta(cs []metav1.Condition, typ string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
