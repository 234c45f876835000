package inventory

import (
	"context"
	"fmt"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/meshroll/meshroll/internal/vmagent"
)

// WorkloadEntryGVR is the resource VMs are registered as.
var WorkloadEntryGVR = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}

// VM annotations meshroll writes beside the assignment: which upgrade moved
// the VM and what it ran before, the record a rollback reads. They go in the
// same patch as the assignment, so the record can never miss a move.
const (
	AnnotationVMUpgrade  = "meshroll.io/vm-upgrade"
	AnnotationVMPrevious = "meshroll.io/vm-previous"
)

// VMProxy is a VM's sidecar as its WorkloadEntry says: what meshroll
// assigned and what meshroll-agent reports.
type VMProxy struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ResourceVersion guards an assignment against a concurrent change.
	ResourceVersion string `json:"-"`
	// Desired is the assignment; Running what the agent reports running.
	Desired vmagent.Assignment `json:"desired"`
	Running vmagent.Assignment `json:"running"`
	// Phase, Target and Error are the agent's last report.
	Phase  vmagent.Phase `json:"phase,omitempty"`
	Target string        `json:"target,omitempty"`
	Error  string        `json:"error,omitempty"`
	// Heartbeat is when the agent last reported (zero: never).
	Heartbeat time.Time `json:"heartbeat,omitempty"`
	// Upgrade and Previous are meshroll's record of its last move.
	Upgrade  string `json:"upgrade,omitempty"`
	Previous string `json:"previous,omitempty"`
	// Override is set while a break-glass override file decides the version.
	Override string `json:"override,omitempty"`
}

// Ref is "namespace/name".
func (v VMProxy) Ref() string { return v.Namespace + "/" + v.Name }

// Unreachable says the agent has not reported within maxAge.
func (v VMProxy) Unreachable(now time.Time, maxAge time.Duration) bool {
	return v.Heartbeat.IsZero() || now.Sub(v.Heartbeat) > maxAge
}

// Stale says the VM does not run what it is assigned.
func (v VMProxy) Stale() bool { return !v.Desired.IsZero() && v.Desired != v.Running }

// HealthyOn says the agent reports the sidecar Ready on a.
func (v VMProxy) HealthyOn(a vmagent.Assignment) bool {
	return v.Phase == vmagent.PhaseReady && v.Running == a
}

// FailedOn says the agent gave up on a (Failed or RolledBack).
func (v VMProxy) FailedOn(a vmagent.Assignment) bool {
	return (v.Phase == vmagent.PhaseFailed || v.Phase == vmagent.PhaseRolledBack) && v.Target == a.String()
}

// ReadVMs lists the WorkloadEntries meshroll-agent manages (those with an
// assignment or an agent report), in every namespace, sorted. A cluster
// without Istio's WorkloadEntry CRD has no VMs.
func ReadVMs(ctx context.Context, dyn dynamic.Interface) ([]VMProxy, error) {
	var out []VMProxy
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := dyn.Resource(WorkloadEntryGVR).List(ctx, opts)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to list WorkloadEntries: %w", err)
		}
		for _, it := range list.Items {
			if vm, ok := VMFromAnnotations(it.GetNamespace(), it.GetName(), it.GetAnnotations()); ok {
				vm.ResourceVersion = it.GetResourceVersion()
				out = append(out, vm)
			}
		}
		if opts.Continue = list.GetContinue(); opts.Continue == "" {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref() < out[j].Ref() })
	return out, nil
}

// VMFromAnnotations reads one WorkloadEntry's annotations; ok is false for
// an entry no agent manages and meshroll never assigned.
func VMFromAnnotations(ns, name string, ann map[string]string) (VMProxy, bool) {
	vm := VMProxy{
		Namespace: ns, Name: name,
		Desired:  vmagent.FromAnnotations(ann),
		Running:  vmagent.Assignment{Revision: ann[vmagent.AnnotationRevision], Version: ann[vmagent.AnnotationVersion]},
		Phase:    vmagent.Phase(ann[vmagent.AnnotationPhase]),
		Target:   ann[vmagent.AnnotationTarget],
		Error:    ann[vmagent.AnnotationError],
		Upgrade:  ann[AnnotationVMUpgrade],
		Previous: ann[AnnotationVMPrevious],
		Override: ann[vmagent.AnnotationOverride],
	}
	if t, err := time.Parse(time.RFC3339, ann[vmagent.AnnotationHeartbeat]); err == nil {
		vm.Heartbeat = t
	}
	_, agent := ann[vmagent.AnnotationAgent]
	return vm, agent || !vm.Desired.IsZero()
}

// VMGroup counts VMs running one revision and version.
type VMGroup struct {
	Revision string `json:"revision"`
	Version  string `json:"version"`
	VMs      int    `json:"vms"`
}

// GroupVMs counts VMs by running revision and version ("" when the agent has
// not reported one yet).
func GroupVMs(vms []VMProxy) []VMGroup {
	n := map[vmagent.Assignment]int{}
	for _, v := range vms {
		n[v.Running]++
	}
	out := make([]VMGroup, 0, len(n))
	for a, c := range n {
		out = append(out, VMGroup{Revision: a.Revision, Version: a.Version, VMs: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Revision != out[j].Revision {
			return out[i].Revision < out[j].Revision
		}
		return out[i].Version < out[j].Version
	})
	return out
}
