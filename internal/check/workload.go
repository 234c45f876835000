package check

import (
	"fmt"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// workloadFindings runs the per-workload checks; they share the workload's
// pod groups, so one pass serves them all.
func workloadFindings(s *inventory.Snapshot) []Finding {
	inj := s.Injectors()
	var out []Finding
	for i := range s.Workloads {
		w := &s.Workloads[i]
		obj := object(w.Kind, w.Namespace, w.Name)
		out = append(out, podRevOverridden(s, inj, w, obj)...)
		var (
			stale, missing, onMissingRev, unsupported, behind, meshed, terminated int
			staleImages, goneRevs, skewWhy, behindWhy                             []string
		)
		for _, p := range w.Proxies {
			n := p.Pods + p.Terminated
			if p.Revision == "" {
				if p.Expected != "" {
					missing += p.Pods
				}
				continue
			}
			meshed += n
			terminated += p.Terminated
			rev := s.Revision(p.Revision)
			if rev == nil || (rev.Deployment == "" && len(rev.InjectorWebhooks) == 0) {
				onMissingRev += n
				goneRevs = appendUnique(goneRevs, p.Revision)
				continue
			}
			if rev.ProxyImage != "" && p.Image != rev.ProxyImage {
				stale += p.Pods
				staleImages = appendUnique(staleImages, p.Image+" (want "+rev.ProxyImage+")")
			}
			if v := skew(p, rev); v != nil {
				switch v.Level {
				case plan.SkewUnsupported:
					unsupported += n
					skewWhy = appendUnique(skewWhy, v.Reason)
				case plan.SkewBehind:
					behind += n
					behindWhy = appendUnique(behindWhy, v.Reason)
				}
			}
		}
		if stale+missing+onMissingRev+unsupported+behind+terminated == 0 && (meshed == 0 || w.Restartable) {
			continue
		}
		restart := restartCommand(w)
		add := func(cond bool, code string, sev Severity, msg, fix string) {
			if cond {
				out = append(out, Finding{Code: code, Severity: sev, Object: obj, Message: msg, Fix: fix})
			}
		}
		add(stale > 0, CodeProxyStale, Warning,
			fmt.Sprintf("%d pod(s) run a sidecar image their revision no longer injects: %s", stale, strings.Join(staleImages, ", ")), restart)
		add(missing > 0, CodeSidecarMissing, Warning,
			fmt.Sprintf("%d pod(s) have no sidecar although injection selects them (%s)", missing, expectedReason(w)), restart)
		add(onMissingRev > 0, CodeRevisionMissing, Error,
			fmt.Sprintf("%d pod(s) have sidecars from revision(s) %s, which no longer exist; they receive no configuration",
				onMissingRev, strings.Join(goneRevs, ", ")), restart)
		add(unsupported > 0, CodeSkewUnsupported, Error,
			fmt.Sprintf("%d pod(s): %s", unsupported, strings.Join(skewWhy, "; ")), restart)
		add(behind > 0, CodeSkewBehind, Info,
			fmt.Sprintf("%d pod(s): %s", behind, strings.Join(behindWhy, "; ")), restart)
		add(meshed > terminated && !w.Restartable, CodeWorkloadNotRestartable, Warning,
			fmt.Sprintf("%d meshed pod(s) cannot be moved by a restart: %s", meshed-terminated, w.RestartReason), manualFix(w))
		add(terminated > 0, CodeTerminatedPodsPin, Warning,
			fmt.Sprintf("%d terminated pod(s) with sidecars keep their revision in use until deleted", terminated),
			fmt.Sprintf("kubectl delete pods -n %s --field-selector=status.phase!=Running,status.phase!=Pending", w.Namespace))
	}
	return out
}

// podRevOverridden reports a pod istio.io/rev label that the namespace's
// injection label makes irrelevant. It is reported even when both select the
// same revision today: the next tag move or namespace relabel will not move
// the workload the way its own label says, which is exactly the surprise an
// upgrade must not have.
func podRevOverridden(s *inventory.Snapshot, inj istio.Injectors, w *inventory.Workload, obj string) []Finding {
	if w.TemplateRev == "" {
		return nil
	}
	ns := s.Namespace(w.Namespace)
	if ns == nil || (!ns.HasInjectionLabel && !ns.HasRevLabel) {
		return nil
	}
	today := ""
	if want, _ := inj.Resolve(w.TemplateRev); ns.Injection.Injected && want == ns.Injection.Revision {
		today = fmt.Sprintf("; both select revision %s today, but they will diverge when the namespace label or a tag moves", want)
	}
	label := istio.LabelRev + "=" + ns.RevLabel
	if ns.HasInjectionLabel {
		label = istio.LabelInjection + "=" + ns.InjectionLabel
	}
	pods, term := w.Total()
	return []Finding{{
		Code: CodePodRevOverridden, Severity: Warning, Object: obj,
		Message: fmt.Sprintf("pod label %s=%s on %d pod(s) is ignored: namespace label %s decides injection (%s)%s",
			istio.LabelRev, w.TemplateRev, pods+term, label, ns.Injection.Reason, today),
		Fix: removeRevLabel(w),
	}}
}

// removeRevLabel drops the ignored label from the workload, which changes
// nothing today and keeps it from surprising anyone when the namespace label goes.
func removeRevLabel(w *inventory.Workload) string {
	if w.Kind == inventory.KindPod {
		return fmt.Sprintf("kubectl label pod %s -n %s %s-", w.Name, w.Namespace, istio.LabelRev)
	}
	path := "/spec/template/metadata/labels/istio.io~1rev"
	if w.Kind == inventory.KindCronJob {
		path = "/spec/jobTemplate/spec/template/metadata/labels/istio.io~1rev"
	}
	return fmt.Sprintf(`kubectl patch %s/%s -n %s --type=json -p '[{"op":"remove","path":"%s"}]'`,
		strings.ToLower(w.Kind), w.Name, w.Namespace, path)
}

// skew grades a proxy group against its revision's control plane; nil when
// either version is unknown.
func skew(p inventory.ProxyGroup, rev *inventory.Revision) *plan.SkewVerdict {
	if p.Version == "" || rev.Version == "" || p.Version == rev.Version {
		return nil
	}
	pv, err := plan.ParseVersion(p.Version)
	if err != nil {
		return nil
	}
	cv, err := plan.ParseVersion(rev.Version)
	if err != nil {
		return nil
	}
	v := plan.Skew(pv, cv)
	return &v
}

func expectedReason(w *inventory.Workload) string {
	for _, p := range w.Proxies {
		if p.Revision == "" && p.Expected != "" {
			return p.ExpectedReason
		}
	}
	return ""
}

// restartCommand is the one-liner that re-injects a workload's pods.
func restartCommand(w *inventory.Workload) string {
	if w.Restartable {
		return fmt.Sprintf("kubectl rollout restart %s/%s -n %s", strings.ToLower(w.Kind), w.Name, w.Namespace)
	}
	return manualFix(w)
}

// manualFix says how to replace pods that no restart replaces.
func manualFix(w *inventory.Workload) string {
	switch w.Kind {
	case inventory.KindPod:
		return fmt.Sprintf("kubectl get pod %s -n %s -o yaml | kubectl replace --force -f -", w.Name, w.Namespace)
	case inventory.KindStatefulSet:
		return fmt.Sprintf("delete the pods of statefulset/%s -n %s one at a time (updateStrategy OnDelete)", w.Name, w.Namespace)
	case inventory.KindJob, inventory.KindCronJob:
		return fmt.Sprintf("let %s/%s -n %s finish; its next pods are injected by the current revision", strings.ToLower(w.Kind), w.Name, w.Namespace)
	}
	return fmt.Sprintf("recreate the pods of %s/%s -n %s through its controller", strings.ToLower(w.Kind), w.Name, w.Namespace)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
