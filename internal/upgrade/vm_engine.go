package upgrade

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// This file is how the engine moves a VM (a workload of mechanism VM, put in
// the plan by vm_plan.go): a move is one assignment on its WorkloadEntry,
// which meshroll-agent on the VM downloads, installs, restarts and
// health-checks, then a wait for the agent to report it Ready. Its intent is
// the plan's record (Pending before the write, its previous assignment in
// Via), so a kill between the write and the record never hides it: a rerun
// assigns the same target again (a no-op) and waits; rollback assigns Via.

// defaultVMTimeout bounds one VM's move when the upgrade sets no rollout
// timeout: download, install, restart and health of one sidecar.
const defaultVMTimeout = 5 * time.Minute

// vmJob is what one VM move assigns, copied on the main goroutine.
type vmJob struct {
	to      vmagent.Assignment
	upgrade string
}

// vmJob builds the assignment of workload w: the target revision with the
// frozen release going forward, the recorded previous one going back.
func (r *run) vmJob(w v1alpha1.WorkloadStatus, forward bool) vmJob {
	j := vmJob{upgrade: r.mu.Name, to: vmagent.Assignment{Revision: r.mu.Spec.To, Version: r.mu.Status.VMVersion}}
	if !forward {
		rev, ver, _ := strings.Cut(w.Via, "@")
		j.to = vmagent.Assignment{Revision: rev, Version: ver}
	}
	return j
}

// moveVM assigns j's target to the VM unless its WorkloadEntry already says
// so (a resumed run or a repeated rollback writes nothing), then waits for
// its agent to report the sidecar Ready on it. An agent that gives up (it
// rolled the VM back itself) or stops reporting fails the move like a
// failed rollout; a deleted WorkloadEntry is gone.
func (r *run) moveVM(ctx context.Context, j job) (dataplane.Result, error) {
	ref := j.namespace + "/" + j.name
	if r.VMs == nil {
		return dataplane.Result{}, fmt.Errorf("failed to move VM %q: this engine has no VM executor", ref)
	}
	if err := j.vm.to.Validate(); err != nil {
		return dataplane.Result{}, fmt.Errorf("failed to move VM %q: recorded assignment %q: %w", ref, j.vm.to, err)
	}
	var res dataplane.Result
	start := time.Now()
	err := r.retry(ctx, func(ctx context.Context) error {
		vm, err := r.VMs.GetVM(ctx, j.namespace, j.name)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("failed to move VM %q: %w", ref, dataplane.ErrGone)
		}
		if err != nil || vm.Desired == j.vm.to {
			return err
		}
		res.Wrote = true
		return r.VMs.AssignVM(ctx, vm, j.vm.to, j.vm.upgrade)
	})
	if err != nil {
		return res, err
	}
	timeout := j.timeout
	if timeout <= 0 {
		timeout = defaultVMTimeout
	}
	_, err = r.VMs.WaitVM(ctx, j.namespace, j.name, j.vm.to, timeout)
	res.Took = time.Since(start)
	return res, err
}

// vmReady is the readiness gate's judgement of a VM of wave: a VM that
// moved must still be reported Ready on the target by its agent, with a
// fresh heartbeat. A deleted WorkloadEntry is skipped, as a deleted workload
// is. The reports are listed once per gate into *reports (one LIST, not a
// GET per VM: a wave can hold hundreds). It returns why the VM is not ready
// ("" when it is).
func (r *run) vmReady(ctx context.Context, wave int, w *v1alpha1.WorkloadStatus, reports *map[string]inventory.VMProxy) (string, error) {
	if w.Outcome != v1alpha1.OutcomeSucceeded {
		return "", nil
	}
	if r.VMs == nil {
		return "no VM executor to read the agent's report", nil
	}
	if *reports == nil {
		var vms []inventory.VMProxy
		err := r.retry(ctx, func(ctx context.Context) error {
			var err error
			vms, err = inventory.ReadVMs(ctx, r.VMs.Dyn)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("failed to read the VMs' reports for the readiness gate: %w", err)
		}
		*reports = make(map[string]inventory.VMProxy, len(vms))
		for _, vm := range vms {
			(*reports)[vm.Ref()] = vm
		}
	}
	to := r.vmJob(*w, true).to
	vm, ok := (*reports)[w.Namespace+"/"+w.Name]
	switch {
	case !ok:
		w.Outcome, w.Message = v1alpha1.OutcomeSkipped, "WorkloadEntry deleted after it moved: nothing left to judge"
		r.event("skipped", wave, w.Ref()+": "+w.Message)
		return "", nil
	case vm.Unreachable(r.now(), staleAfter(r.VMs.StaleAfter)):
		return fmt.Sprintf("agent unreachable (last heartbeat %s)", heartbeatText(vm)), nil
	case !vm.HealthyOn(to):
		why := fmt.Sprintf("agent reports %s on %s, want Ready on %s", vm.Phase, vm.Running, to)
		if vm.Error != "" {
			why += ": " + vm.Error
		}
		return why, nil
	}
	return "", nil
}
