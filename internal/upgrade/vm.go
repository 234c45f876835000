package upgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/plan"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// VMKind is the workload kind VMs have in wave plans and reports.
const VMKind = "WorkloadEntry"

// VMOptions is a migration of VM proxies from one revision to another.
type VMOptions struct {
	// Name identifies the upgrade; it is recorded on every VM it moves, which
	// is how a rerun resumes and a rollback finds them.
	Name string
	// From is the revision whose VMs move; To the assignment they get.
	From string
	To   vmagent.Assignment
	// Installed lists the installed revisions: To must be one of them and a
	// rollback's target too.
	Installed []string
	// Waves, First, Last and Parallelism cut and pace the waves as for pods.
	Waves       []plan.WaveSize
	First, Last []string
	Parallelism int
	// Timeout bounds one VM's move (download, install, restart, health).
	Timeout time.Duration
	// StaleAfter is how old an agent's heartbeat may be; such VMs are refused
	// before any write.
	StaleAfter time.Duration
	// Rollback puts every VM the run moved back on its previous assignment
	// when a wave fails; without it the run halts with the failed VMs
	// rolled back on the VM by their agents.
	Rollback bool
	// Gate, when set, runs after every wave's VMs are healthy; an error
	// fails the wave.
	Gate func(ctx context.Context, wave int) error
	// DryRun plans and prints, writes nothing.
	DryRun bool
	// Event receives one line per step.
	Event func(msg string)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// VMResult is what a VM migration did.
type VMResult struct {
	Waves      [][]string `json:"waves"`
	Moved      []string   `json:"moved"`
	Done       []string   `json:"done,omitempty"`
	Failed     []string   `json:"failed,omitempty"`
	RolledBack bool       `json:"rolledBack,omitempty"`
}

// ErrVMWaveFailed is returned when a wave's VMs did not all become healthy.
var ErrVMWaveFailed = errors.New("vm wave failed")

// PlanVMs selects the VMs to move and cuts them into waves, refusing (before
// any write) a target revision that is not installed and agents that do not
// report. VMs already healthy on the target are done; VMs this upgrade
// assigned but that are not healthy yet are moved again (a resumed run).
func PlanVMs(vms []inventory.VMProxy, o VMOptions) (plan.WavePlan, []string, error) {
	if err := o.To.Validate(); err != nil {
		return plan.WavePlan{}, nil, fmt.Errorf("invalid VM target: %w", err)
	}
	if !slices.Contains(o.Installed, o.To.Revision) {
		return plan.WavePlan{}, nil, fmt.Errorf("revision %q is not installed (installed: %s): install it first with `meshroll revision install --version %s`",
			o.To.Revision, strings.Join(o.Installed, ", "), o.To.Version)
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	cands, done, err := selectVMs(vms, o.Name, o.From, o.To, o.StaleAfter, now)
	if err != nil {
		return plan.WavePlan{}, nil, err
	}
	wp, err := plan.PlanWaves(cands, plan.WavePolicy{Waves: o.Waves, Ordering: plan.Ordering{First: o.First, Last: o.Last}, Parallelism: max(1, o.Parallelism)})
	if err != nil {
		return plan.WavePlan{}, nil, fmt.Errorf("invalid VM waves: %w", err)
	}
	return wp, done, nil
}

// staleAfter defaults a heartbeat age limit to two minutes (four of the
// agent's default 30 s heartbeats).
func staleAfter(d time.Duration) time.Duration {
	if d <= 0 {
		return 2 * time.Minute
	}
	return d
}

func heartbeatText(vm inventory.VMProxy) string {
	if vm.Heartbeat.IsZero() {
		return "never"
	}
	return vm.Heartbeat.UTC().Format(time.RFC3339)
}

// MigrateVMs moves VMs wave by wave: every VM of a wave is assigned (the
// assignment carries the upgrade's record, see dataplane.AssignVM), the wave
// waits for every agent to report healthy on the target and then the gate
// runs. The first failed wave stops the run: with Rollback every VM the run
// moved is reassigned its previous version and awaited.
func MigrateVMs(ctx context.Context, ex dataplane.VMExecutor, vms []inventory.VMProxy, o VMOptions) (VMResult, error) {
	wp, done, err := PlanVMs(vms, o)
	if err != nil {
		return VMResult{}, err
	}
	event := o.Event
	if event == nil {
		event = func(string) {}
	}
	res := VMResult{Done: done}
	for _, w := range wp.Waves {
		var names []string
		for _, r := range w.Workloads {
			names = append(names, r.Namespace+"/"+r.Name)
		}
		res.Waves = append(res.Waves, names)
	}
	if o.DryRun {
		for i, w := range res.Waves {
			event(fmt.Sprintf("vm wave %d (dry run): would assign %s to %d VM(s): %s", i+1, o.To, len(w), strings.Join(w, ", ")))
		}
		return res, nil
	}
	byRef := map[string]inventory.VMProxy{}
	for _, vm := range vms {
		byRef[vm.Ref()] = vm
	}
	for i, wave := range res.Waves {
		event(fmt.Sprintf("vm wave %d: assigning %s to %d VM(s)", i+1, o.To, len(wave)))
		failed := forEachVM(ctx, wave, o.Parallelism, func(ctx context.Context, ref string) error {
			if err := ex.AssignVM(ctx, byRef[ref], o.To, o.Name); err != nil {
				return err
			}
			_, err := ex.WaitVM(ctx, byRef[ref].Namespace, byRef[ref].Name, o.To, o.Timeout)
			return err
		})
		for _, ref := range wave {
			if _, bad := failed[ref]; !bad {
				res.Moved = append(res.Moved, ref)
			}
		}
		if len(failed) == 0 && o.Gate != nil {
			if err := o.Gate(ctx, i+1); err != nil {
				failed["gate"] = err
			}
		}
		if len(failed) == 0 {
			event(fmt.Sprintf("vm wave %d: %d VM(s) healthy on %s", i+1, len(wave), o.To))
			continue
		}
		why := joinFailures(failed)
		for ref := range failed {
			if ref != "gate" {
				res.Failed = append(res.Failed, ref)
			}
		}
		slices.Sort(res.Failed)
		event(fmt.Sprintf("vm wave %d failed: %s", i+1, why))
		if !o.Rollback {
			return res, fmt.Errorf("%w: wave %d: %s; the failed VMs' agents keep their previous version; run `meshroll vm rollback %s` to move the others back", ErrVMWaveFailed, i+1, why, o.Name)
		}
		if err := RollbackVMs(ctx, ex, o, event); err != nil {
			return res, fmt.Errorf("%w: wave %d: %s; and the rollback failed: %w", ErrVMWaveFailed, i+1, why, err)
		}
		res.RolledBack = true
		return res, fmt.Errorf("%w: wave %d: %s; every VM moved by %s is back on its previous version", ErrVMWaveFailed, i+1, why, o.Name)
	}
	return res, nil
}

// RollbackVMs reassigns every VM the upgrade o.Name moved its recorded
// previous assignment and waits for the agents to report it. It reads the
// record from the cluster, so it works after a killed run too.
func RollbackVMs(ctx context.Context, ex dataplane.VMExecutor, o VMOptions, event func(string)) error {
	vms, err := inventory.ReadVMs(ctx, ex.Dyn)
	if err != nil {
		return err
	}
	targets := map[string]vmagent.Assignment{}
	byRef := map[string]inventory.VMProxy{}
	var refs []string
	var errs []error
	for _, vm := range vms {
		if vm.Upgrade != o.Name || vm.Previous == "" {
			continue
		}
		rev, ver, ok := strings.Cut(vm.Previous, "@")
		prev := vmagent.Assignment{Revision: rev, Version: ver}
		if !ok || prev.Validate() != nil {
			errs = append(errs, fmt.Errorf("VM %s: recorded previous assignment %q is not revision@version", vm.Ref(), vm.Previous))
			continue
		}
		if len(o.Installed) > 0 && !slices.Contains(o.Installed, prev.Revision) {
			errs = append(errs, fmt.Errorf("VM %s: previous revision %q is no longer installed: reinstall it with `meshroll revision install --version %s`", vm.Ref(), prev.Revision, prev.Version))
			continue
		}
		targets[vm.Ref()], byRef[vm.Ref()] = prev, vm
		refs = append(refs, vm.Ref())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("failed to roll back VMs of %q (nothing written): %w", o.Name, err)
	}
	if event != nil {
		event(fmt.Sprintf("vm rollback: %d VM(s) back to their previous assignment", len(refs)))
	}
	failed := forEachVM(ctx, refs, o.Parallelism, func(ctx context.Context, ref string) error {
		vm, to := byRef[ref], targets[ref]
		if vm.Desired != to {
			if err := ex.AssignVM(ctx, vm, to, o.Name); err != nil {
				return err
			}
		}
		_, err := ex.WaitVM(ctx, vm.Namespace, vm.Name, to, o.Timeout)
		return err
	})
	if len(failed) > 0 {
		return fmt.Errorf("failed to roll back %d VM(s): %s", len(failed), joinFailures(failed))
	}
	return nil
}

// forEachVM runs fn for every ref with at most parallelism at once and
// returns the errors by ref.
func forEachVM(ctx context.Context, refs []string, parallelism int, fn func(context.Context, string) error) map[string]error {
	var mu sync.Mutex
	failed := map[string]error{}
	sem := make(chan struct{}, max(1, parallelism))
	var wg sync.WaitGroup
	for _, ref := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(ctx, ref); err != nil {
				mu.Lock()
				failed[ref] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

func joinFailures(failed map[string]error) string {
	keys := make([]string, 0, len(failed))
	for k := range failed {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, failed[k].Error())
	}
	return strings.Join(parts, "; ")
}
