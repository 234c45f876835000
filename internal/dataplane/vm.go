package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// VMExecutor assigns revisions to VMs (annotations on their WorkloadEntries
// that meshroll-agent acts on) and waits for the agents to report.
type VMExecutor struct {
	Dyn dynamic.Interface
	// Poll is how often a wait rereads the WorkloadEntry (default 1 s).
	Poll time.Duration
	// StaleAfter is how old a heartbeat may be before the agent counts as
	// unreachable (default 2 minutes).
	StaleAfter time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// ErrVMFailed is wrapped by a wait that ended because the agent gave up
// (Failed, RolledBack) or stopped reporting.
var ErrVMFailed = errors.New("vm agent failed")

// AssignVM points one VM at an assignment. The same merge patch records the
// upgrade that moved it and what it ran before (kept from the first move of
// that upgrade, so a resumed or repeated assignment never overwrites it). It
// reads the WorkloadEntry first and guards the patch with that
// resourceVersion, so the record is computed from what the object holds; the
// agent's own status writes make conflicts common, and a conflict is read
// and tried again.
func (e VMExecutor) AssignVM(ctx context.Context, ref inventory.VMProxy, to vmagent.Assignment, upgrade string) error {
	var err error
	for range 10 {
		var vm inventory.VMProxy
		if vm, err = e.GetVM(ctx, ref.Namespace, ref.Name); err != nil {
			return err
		}
		if err = e.assign(ctx, vm, to, upgrade); !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

func (e VMExecutor) assign(ctx context.Context, vm inventory.VMProxy, to vmagent.Assignment, upgrade string) error {
	ann := map[string]any{
		vmagent.AnnotationDesiredRevision: to.Revision,
		vmagent.AnnotationDesiredVersion:  to.Version,
		inventory.AnnotationVMUpgrade:     upgrade,
	}
	if vm.Upgrade != upgrade || vm.Previous == "" {
		prev := vm.Desired
		if prev.IsZero() {
			prev = vm.Running
		}
		ann[inventory.AnnotationVMPrevious] = prev.String()
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann, "resourceVersion": vm.ResourceVersion}})
	if err != nil {
		return fmt.Errorf("failed to encode assignment of VM %q: %w", vm.Ref(), err)
	}
	_, err = e.Dyn.Resource(inventory.WorkloadEntryGVR).Namespace(vm.Namespace).
		Patch(ctx, vm.Name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: "meshroll"})
	if err != nil {
		return fmt.Errorf("failed to assign %s to VM %q: %w", to, vm.Ref(), err)
	}
	return nil
}

// GetVM reads one VM.
func (e VMExecutor) GetVM(ctx context.Context, ns, name string) (inventory.VMProxy, error) {
	u, err := e.Dyn.Resource(inventory.WorkloadEntryGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return inventory.VMProxy{}, fmt.Errorf("failed to read WorkloadEntry %q: %w", ns+"/"+name, err)
	}
	vm, _ := inventory.VMFromAnnotations(ns, name, u.GetAnnotations())
	vm.ResourceVersion = u.GetResourceVersion()
	return vm, nil
}

// WaitVM waits until the agent reports the sidecar healthy on want. It fails
// with ErrVMFailed when the agent gives up on want (its reason included) or
// its heartbeat goes stale, and with a timeout error after timeout.
func (e VMExecutor) WaitVM(ctx context.Context, ns, name string, want vmagent.Assignment, timeout time.Duration) (inventory.VMProxy, error) {
	poll := e.Poll
	if poll <= 0 {
		poll = time.Second
	}
	stale := e.StaleAfter
	if stale <= 0 {
		stale = 2 * time.Minute
	}
	now := e.Now
	if now == nil {
		now = time.Now
	}
	deadline := now().Add(timeout)
	for {
		vm, err := e.GetVM(ctx, ns, name)
		switch {
		case err != nil:
			// A read error is retried until the deadline, not a failed VM.
		case vm.HealthyOn(want):
			return vm, nil
		case vm.FailedOn(want):
			return vm, fmt.Errorf("%w: VM %s: agent reports %s: %s", ErrVMFailed, vm.Ref(), vm.Phase, vm.Error)
		case vm.Unreachable(now(), stale):
			return vm, fmt.Errorf("%w: VM %s: agent unreachable (last heartbeat %s, older than %s)", ErrVMFailed, vm.Ref(), heartbeat(vm), stale)
		}
		if now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("agent reports %s on %s", vm.Phase, vm.Running)
			}
			return vm, fmt.Errorf("%w: VM %s not healthy on %s within %s: %v", ErrVMFailed, ns+"/"+name, want, timeout, err)
		}
		select {
		case <-ctx.Done():
			return vm, fmt.Errorf("failed to wait for VM %q: %w", ns+"/"+name, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}

func heartbeat(vm inventory.VMProxy) string {
	if vm.Heartbeat.IsZero() {
		return "never"
	}
	return vm.Heartbeat.Format(time.RFC3339)
}
