package fleet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/fleet"
)

// controllerProc is one `meshroll controller` replica run against the hub.
type controllerProc struct {
	cmd *exec.Cmd
	log string
	// done is closed once the process has exited.
	done chan struct{}
}

// startController starts a replica against the API-only hub: no pods run
// there, only the replicas' leases, the member Secrets and FleetUpgrades.
// Metrics, probes and the webhook are off so that two replicas share the
// host; leases are short so that a standby takes over within seconds.
func (w *world) startController(t *testing.T, name string) *controllerProc {
	t.Helper()
	args := []string{"--kubeconfig", w.hubKC, "controller", "--leader-election-namespace", fleet.DefaultNamespace,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--lease-duration", "6s", "--renew-deadline", "4s", "--retry-period", "1s", "--fleet-poll", "1s"}
	if help, _ := exec.Command(w.bin, "controller", "--help").CombinedOutput(); strings.Contains(string(help), "--webhook-bind-address") {
		args = append(args, "--webhook-bind-address", "0")
	}
	p := &controllerProc{log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(w.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); _ = f.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s (pid %d) log:\n%s", name, p.cmd.Process.Pid, tail(p.output(), 60))
		}
	})
	return p
}

func (p *controllerProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// applyCRDs installs the MeshUpgrade and FleetUpgrade CRDs in the hub, as
// the meshroll chart's crds/ would.
func (w *world) applyCRDs(t *testing.T) {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, b := range [][]byte{v1alpha1.CRD, v1alpha1.FleetUpgradeCRD} {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, u)
	}
	a := controlplane.NewApplier(w.hubDyn, w.hub.Discovery(), false)
	if _, err := a.Apply(t.Context(), objs); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitEstablished(t.Context(), []string{objs[0].GetName(), objs[1].GetName()}, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// testController: a FleetUpgrade applied to the hub (as from Git, paused at
// first) is carried out by `meshroll controller` replicas, not by the CLI:
// the leader is SIGKILLed mid-stage and the standby resumes from the
// FleetUpgrade's status. It upgrades preprod, which the halted run rolled
// back to 1.23.2.
func testController(t *testing.T, w *world) {
	pre := w.member("preprod")
	w.applyCRDs(t)
	store := fleet.Store{Dynamic: w.hubDyn}
	fu := &v1alpha1.FleetUpgrade{ObjectMeta: metav1.ObjectMeta{Name: "ctl"}, Spec: v1alpha1.FleetUpgradeSpec{
		Version: toVersion, Paused: true,
		Stages:           []v1alpha1.FleetStage{{Name: "preprod", Selector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "preprod"}}}},
		ClusterSoak:      metav1.Duration{Duration: 3 * time.Second},
		ProgressDeadline: metav1.Duration{Duration: 5 * time.Minute},
		Unreachable:      v1alpha1.UnreachableWait,
		Member: v1alpha1.MemberStrategy{Waves: "1,100%", RolloutTimeout: metav1.Duration{Duration: 20 * time.Second},
			Rollback: v1alpha1.RollbackAuto},
	}}
	if _, err := store.Create(t.Context(), fu); err != nil {
		t.Fatal(err)
	}
	// The replicas are SIGKILLed at the end (cleanups run last-in first):
	// then their leader Lease goes too, or the CLI runs that follow would
	// take the dead controller for a live one for its lease's duration.
	t.Cleanup(func() {
		_ = w.hub.CoordinationV1().Leases(fleet.DefaultNamespace).Delete(context.Background(), controller.LeaderElectionID, metav1.DeleteOptions{})
	})
	start := time.Now()
	a, b := w.startController(t, "replica-a"), w.startController(t, "replica-b")
	holders := w.watchHolders(t, "meshupgrade-fleet-ctl")

	// Paused from Git: the controller records why and touches no member.
	waitFor(t, time.Minute, "the paused FleetUpgrade says so", func() bool {
		got, err := store.Get(t.Context(), "ctl")
		c := (*metav1.Condition)(nil)
		if err == nil {
			c = meta(got.Status.Conditions, v1alpha1.FleetConditionProgressing)
		}
		return c != nil && c.Reason == v1alpha1.ReasonPaused
	})
	if _, err := pre.dyn.Resource(v1alpha1.GroupVersion.WithResource("meshupgrades")).Get(t.Context(), fleet.MemberUpgradeName("ctl"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("paused FleetUpgrade: preprod's MeshUpgrade exists or cannot be read: %v", err)
	}
	if _, err := w.hubDyn.Resource(v1alpha1.FleetUpgradeGVR).Patch(t.Context(), "ctl", types.MergePatchType, []byte(`{"spec":{"paused":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// Kill the leader once preprod's member run has been going a while.
	waitFor(t, 3*time.Minute, "preprod upgrading under the controller", func() bool {
		got, err := store.Get(t.Context(), "ctl")
		if err != nil || len(got.Status.Clusters) == 0 {
			return false
		}
		c := got.Status.Clusters[0]
		return c.State == v1alpha1.ClusterUpgrading && c.StartedAt != nil && time.Since(c.StartedAt.Time) > 4*time.Second
	})
	leader, standby := a, b
	if h := holders.current(); h == b.cmd.Process.Pid {
		leader, standby = b, a
	} else if h != a.cmd.Process.Pid {
		t.Fatalf("the FleetUpgrade's lease is held by pid %d, neither replica (%d, %d)", h, a.cmd.Process.Pid, b.cmd.Process.Pid)
	}
	_ = leader.cmd.Process.Signal(syscall.SIGKILL)
	<-leader.done
	killed := time.Now()
	t.Logf("leader SIGKILLed %s after the FleetUpgrade was applied", killed.Sub(start).Round(time.Second))

	var got *v1alpha1.FleetUpgrade
	waitFor(t, 6*time.Minute, "the standby finishes the FleetUpgrade", func() bool {
		var err error
		got, err = store.Get(t.Context(), "ctl")
		return err == nil && got.Status.Phase.Final()
	})
	t.Logf("FleetUpgrade ctl %s %s after the kill (%s in all): %s", got.Status.Phase, time.Since(killed).Round(time.Second),
		time.Since(start).Round(time.Second), got.Status.Message)
	if got.Status.Phase != v1alpha1.FleetSucceeded {
		t.Fatalf("phase %s: %s\nstandby log:\n%s", got.Status.Phase, got.Status.Message, tail(standby.output(), 40))
	}
	if !holders.saw(standby.cmd.Process.Pid) {
		t.Errorf("the standby (pid %d) never held the FleetUpgrade's lease; holders seen %v\n%s", standby.cmd.Process.Pid, holders.all(), tail(standby.output(), 20))
	}
	if g := images(t, pre); g[toImage] != 4 || len(g) != 1 {
		t.Errorf("preprod after the controller's run: %v, want every pod on %s", g, toImage)
	}
	evs, err := w.hub.EventsV1().Events("").List(t.Context(), metav1.ListOptions{FieldSelector: "regarding.name=ctl"})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range evs.Items {
		reasons[e.Reason] = true
	}
	if !reasons["Cluster"] || !reasons["Pause"] || !reasons["Fleet"] {
		t.Errorf("events on the FleetUpgrade: reasons %v, want Pause, Cluster and Fleet", reasons)
	}
}

// leaseHolders records which processes held a Lease, by the pid in the
// holder identity (host/pid/start).
type leaseHolders struct {
	mu   sync.Mutex
	last int
	seen map[int]bool
}

func (h *leaseHolders) current() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *leaseHolders) saw(pid int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[pid]
}

func (h *leaseHolders) all() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	for p := range h.seen {
		out = append(out, p)
	}
	return out
}

// watchHolders polls the hub's Lease until the test ends.
func (w *world) watchHolders(t *testing.T, name string) *leaseHolders {
	h := &leaseHolders{seen: map[int]bool{}}
	ctx := t.Context()
	go func() {
		for ctx.Err() == nil {
			l, err := w.hub.CoordinationV1().Leases(fleet.DefaultNamespace).Get(ctx, name, metav1.GetOptions{})
			if err == nil && l.Spec.HolderIdentity != nil {
				if parts := strings.Split(*l.Spec.HolderIdentity, "/"); len(parts) == 3 {
					if pid, err := strconv.Atoi(parts[1]); err == nil {
						h.mu.Lock()
						h.last, h.seen[pid] = pid, true
						h.mu.Unlock()
					}
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	return h
}
