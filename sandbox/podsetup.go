package sandbox

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// setupPodRange claims a routed pod range for the sandbox, so istiod pods can
// be real processes (IstiodReal), and returns the mode it can honour. When
// this host cannot route (no CAP_NET_ADMIN, no `ip`) it fails with what is
// missing and how to get it, unless allowNone: then the sandbox runs with no
// istiod (IstiodNone), says why on out and in State.IstiodNote, and gives back
// a route an earlier Up held.
//
// claim is claimRoutedRange; tests pass a host without the capability.
func setupPodRange(ctx context.Context, out io.Writer, st *State, allowNone bool, claim func(ctx context.Context, dir, prefer string) (string, error)) (string, error) {
	st.IstiodNote = ""
	prefer := ""
	if slices.Contains(RoutedPodRanges(), st.PodRange) {
		prefer = st.PodRange
	}
	cidr, err := claim(ctx, st.Dir, prefer)
	switch {
	case errors.Is(err, errNoRoute) && !allowNone:
		return "", fmt.Errorf("failed to start sandbox %q: it runs real istiod for every installed Istio revision, "+
			"bound to its pod's address, which needs kwok's pod range routed to lo: %w", st.Dir, err)
	case errors.Is(err, errNoRoute):
		st.IstiodNote = fmt.Sprintf("no istiod: kwok's pod addresses cannot be routed to lo (%v), "+
			"so nothing answers Istio's webhooks and an Istio install never becomes ready", err)
		fmt.Fprintf(out, "sandbox: %s\n", st.IstiodNote)
	case err != nil:
		return "", err
	default:
		st.PodRange, st.PodRouted = cidr, true
		return IstiodReal, saveState(st)
	}
	if st.PodRouted {
		if err := releaseRoutedRange(ctx, st.Dir, st.PodRange); err != nil {
			return "", err
		}
		st.PodRouted = false
	}
	if st.PodRange == "" || slices.Contains(RoutedPodRanges(), st.PodRange) {
		st.PodRange = unroutedPodRange
	}
	return IstiodNone, saveState(st)
}

// planKwokBlock picks the block kwok hands addresses from at this start (see
// nextKwokBlock) from the addresses live pods hold now, and removes from the
// pods' status the addresses that must not stay (kwok gives those pods new
// ones once it runs). It must run while kwok is stopped.
func planKwokBlock(ctx context.Context, cs kubernetes.Interface, st *State) error {
	pods, err := livePodAddrs(ctx, cs)
	if err != nil {
		return err
	}
	live := make([]netip.Addr, 0, len(pods))
	for a := range pods {
		live = append(live, a)
	}
	plan, err := nextKwokBlock(st.PodRange, st.KwokBlock, live, st.PodRouted)
	if err != nil {
		return err
	}
	for _, a := range plan.Clear {
		p := pods[a]
		patch := []byte(`{"status":{"podIP":null,"podIPs":null}}`)
		_, err := cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
		if err != nil {
			return fmt.Errorf("failed to clear address of pod %q: %w", p.Namespace+"/"+p.Name, err)
		}
	}
	st.KwokBlock = plan.Block
	return saveState(st)
}

// livePodAddrs maps every address a pod that can still run holds (not
// finished, not being deleted, not on the host network) to that pod.
func livePodAddrs(ctx context.Context, cs kubernetes.Interface) (map[netip.Addr]types.NamespacedName, error) {
	out := map[netip.Addr]types.NamespacedName{}
	opts := metav1.ListOptions{Limit: 500}
	for {
		list, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("failed to list pods %q: %w", "all namespaces", err)
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.DeletionTimestamp != nil || p.Spec.HostNetwork ||
				p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
				continue
			}
			if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
				out[a] = types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
			}
		}
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// kwokPodStages are kwok's pod stages in real-istiod mode (see the file):
// istiod pods start Running but not Ready, and the istiod runner sets Ready
// from the process's own readiness, so a Deployment is available, and its
// Service has a ready endpoint, only once istiod serves.
//
//go:embed kwok-pod-stages.yaml
var kwokPodStages []byte

// kwokStagesPath is where Up writes kwokPodStages for kwok's --config.
func kwokStagesPath(dir string) string { return filepath.Join(dir, "kwok-pod-stages.yaml") }

// withKwok returns comps with kwok's --cidr set to block and, in real-istiod
// mode, its pod stages replaced by kwokPodStages (written to dir first).
func withKwok(comps []component, dir, block, mode string) ([]component, error) {
	out := slices.Clone(comps)
	for i := range out {
		if out[i].name != nameKwok {
			continue
		}
		args := append(slices.Clone(out[i].args), "--cidr="+block)
		if mode == IstiodReal {
			if err := os.WriteFile(kwokStagesPath(dir), kwokPodStages, 0o644); err != nil {
				return nil, fmt.Errorf("failed to write kwok stages %q: %w", kwokStagesPath(dir), err)
			}
			args = append(args, "--config="+kwokStagesPath(dir))
		}
		out[i].args = args
	}
	return out, nil
}
