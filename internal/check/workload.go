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
		out = append(out, imageAuto(s, w, obj)...)
		var (
			stale, missing, onMissingRev, unknown, unsupported, behind, meshed, terminated int
			staleImages, goneRevs, unknownImages, skewWhy, behindWhy                       []string
			staleG, missingG, goneG, unknownG, skewG, behindG                              []inventory.ProxyGroup
		)
		for _, p := range w.Proxies {
			n := p.Pods + p.Terminated
			if p.Revision == "" {
				if p.Expected != "" && p.Image != istio.AutoImage {
					missing += p.Pods
					missingG = append(missingG, p)
				}
				continue
			}
			meshed += n
			terminated += p.Terminated
			if p.Revision == inventory.RevisionUnknown {
				unknown += p.Pods
				unknownImages = appendUnique(unknownImages, p.Image)
				unknownG = append(unknownG, p)
				continue
			}
			rev := s.Revision(p.Revision)
			if rev == nil || (rev.Deployment == "" && len(rev.InjectorWebhooks) == 0) {
				onMissingRev += n
				goneRevs = appendUnique(goneRevs, p.Revision)
				goneG = append(goneG, p)
				continue
			}
			if isStale(s, p) {
				stale += p.Pods
				why := ""
				if p.WantImageReason != "" {
					why = ", " + p.WantImageReason
				}
				staleImages = appendUnique(staleImages, p.Image+" (want "+p.WantImage+why+")")
				staleG = append(staleG, p)
			}
			if v := skew(p, rev); v != nil {
				switch v.Level {
				case plan.SkewUnsupported:
					unsupported += n
					skewWhy = appendUnique(skewWhy, v.Reason)
					skewG = append(skewG, p)
				case plan.SkewBehind:
					behind += n
					behindWhy = appendUnique(behindWhy, v.Reason)
					behindG = append(behindG, p)
				}
			}
		}
		if stale+missing+onMissingRev+unknown+unsupported+behind+terminated == 0 && (meshed == 0 || w.Restartable) {
			continue
		}
		add := func(cond bool, code string, sev Severity, msg, fix string) {
			if cond {
				out = append(out, Finding{Code: code, Severity: sev, Object: obj, Message: msg, Fix: fix})
			}
		}
		add(stale > 0, CodeProxyStale, Warning,
			fmt.Sprintf("%d pod(s) run a sidecar image their revision no longer injects: %s", stale, strings.Join(staleImages, ", ")),
			reinjectFix(s, w, staleG))
		add(missing > 0, CodeSidecarMissing, Warning,
			fmt.Sprintf("%d pod(s) have no sidecar although injection selects them (%s)", missing, expectedReason(w)),
			reinjectFix(s, w, missingG))
		add(onMissingRev > 0, CodeRevisionMissing, Error,
			fmt.Sprintf("%d pod(s) have sidecars from revision(s) %s, which no longer exist; they receive no configuration",
				onMissingRev, strings.Join(goneRevs, ", ")), reinjectFix(s, w, goneG))
		add(unknown > 0, CodeProxyRevisionUnknown, Warning,
			fmt.Sprintf("%d pod(s) run sidecar %s that nothing ties to a revision (no istio.io/rev or sidecar.istio.io/status annotation, no istiod discovery address, no injector that predates them and injects that version)",
				unknown, strings.Join(unknownImages, ", ")), reinjectFix(s, w, unknownG))
		add(unsupported > 0, CodeSkewUnsupported, Error,
			fmt.Sprintf("%d pod(s): %s", unsupported, strings.Join(skewWhy, "; ")), reinjectFix(s, w, skewG))
		add(behind > 0, CodeSkewBehind, Info,
			fmt.Sprintf("%d pod(s): %s", behind, strings.Join(behindWhy, "; ")), reinjectFix(s, w, behindG))
		add(meshed > terminated && !w.Restartable, CodeWorkloadNotRestartable, Warning,
			fmt.Sprintf("%d meshed pod(s) cannot be moved by a restart: %s", meshed-terminated, w.RestartReason), manualFix(w))
		add(terminated > 0, CodeTerminatedPodsPin, Warning,
			fmt.Sprintf("%d terminated pod(s) with sidecars keep their revision in use until deleted", terminated),
			fmt.Sprintf("kubectl delete pods -n %s --field-selector=status.phase!=Running,status.phase!=Pending", w.Namespace))
	}
	return out
}

// isStale says whether a group's sidecars run another image than their own
// revision would inject into them now (pins and image types included).
func isStale(s *inventory.Snapshot, p inventory.ProxyGroup) bool {
	if p.Revision == "" || p.Revision == inventory.RevisionUnknown || p.WantImage == "" || p.Image == p.WantImage {
		return false
	}
	return s.Revision(p.Revision) != nil
}

// changedByRestart says whether recreating a group's pods changes their
// sidecar: injection selects them (else a restart removes the sidecar), the
// template does not carry a sidecar of its own (injected by hand: the
// injector leaves such pods alone), and it would pick another revision or
// another image.
func changedByRestart(w *inventory.Workload, p inventory.ProxyGroup) bool {
	if p.Expected == "" || handInjected(w) {
		return false
	}
	return p.Revision == "" || p.Expected != p.Revision || (p.WantImage != "" && p.WantImage != p.Image)
}

// restartHelps says whether restarting the workload changes any of its stale sidecars.
func restartHelps(s *inventory.Snapshot, w *inventory.Workload) bool {
	for _, p := range w.Proxies {
		if isStale(s, p) && changedByRestart(w, p) {
			return true
		}
	}
	return false
}

// handInjected says whether the workload's template itself carries an
// istio-proxy container with a real image (istioctl kube-inject output).
func handInjected(w *inventory.Workload) bool {
	return w.Template != nil && w.Template.ProxyImage != "" && w.Template.ProxyImage != istio.AutoImage
}

// reinjectFix is the fix for sidecars that should be re-injected: a restart
// when it changes them, and otherwise what stands in the way — a restart
// that would drop sidecars or re-create the same pods is never suggested.
func reinjectFix(s *inventory.Snapshot, w *inventory.Workload, groups []inventory.ProxyGroup) string {
	for _, p := range groups {
		if changedByRestart(w, p) {
			return restartCommand(w)
		}
	}
	if handInjected(w) {
		return fmt.Sprintf("the pod template of %s/%s carries its own istio-proxy container (injected by hand), so no restart re-injects it: re-apply the manifest without the sidecar and let the injector add it",
			strings.ToLower(w.Kind), w.Name)
	}
	for _, p := range groups {
		if p.Expected == "" && p.Revision != "" {
			return fmt.Sprintf("injection no longer selects these pods (%s): make a revision select them before restarting, or the restart removes their sidecars", p.ExpectedReason)
		}
	}
	for _, p := range groups {
		if rev := s.Revision(p.Revision); rev != nil && p.WantImage == p.Image {
			return fmt.Sprintf("revision %s's injector itself injects %s: reinstall it (meshroll revision install --version %s), or move the workload to a newer revision with meshroll upgrade",
				rev.Name, p.Image, orUnknown(rev.Version))
		}
	}
	return restartCommand(w)
}

func orUnknown(v string) string {
	if v == "" {
		return "<release>"
	}
	return v
}

// imageAuto reports istio-proxy containers that still say image: auto: a bare
// Pod with such a container was never injected and cannot start (error); a
// controller whose template relies on injection in a namespace nothing
// injects will create pods that cannot start (warning), and its pods already
// stuck on "auto" are counted there.
func imageAuto(s *inventory.Snapshot, w *inventory.Workload, obj string) []Finding {
	stuck := 0
	for _, p := range w.Proxies {
		if p.Image == istio.AutoImage {
			stuck += p.Pods
		}
	}
	if w.Kind == inventory.KindPod {
		if stuck == 0 {
			return nil
		}
		return []Finding{{Code: CodeProxyImageAuto, Severity: Error, Object: obj,
			Message: "pod's istio-proxy container says image: auto and was never injected: it can never start",
			Fix:     autoFix(s, w, w.Proxies[0].ExpectedReason, w.Proxies[0].Expected != "")}}
	}
	t := w.Template
	templateStuck := t != nil && t.ProxyImage == istio.AutoImage && !t.Injection.Injected
	if !templateStuck && stuck == 0 {
		return nil
	}
	reason, injected := "", false
	if t != nil {
		reason, injected = t.Injection.Reason, t.Injection.Injected
	}
	msg := fmt.Sprintf("pod template's istio-proxy container says image: auto but nothing injects it (%s): its next pods can never start", reason)
	if !templateStuck {
		msg = "pods whose istio-proxy container still says image: auto were never injected and cannot start"
	}
	if stuck > 0 && templateStuck {
		msg += fmt.Sprintf("; %d pod(s) are stuck already", stuck)
	} else if stuck > 0 {
		msg += fmt.Sprintf(" (%d pod(s))", stuck)
	}
	return []Finding{{Code: CodeProxyImageAuto, Severity: Warning, Object: obj, Message: msg, Fix: autoFix(s, w, reason, injected)}}
}

// autoFix lets injection reach an image: auto container: a restart when
// injection already selects the pods, a namespace label when nothing does,
// and no label at all when the pods opt out themselves.
func autoFix(s *inventory.Snapshot, w *inventory.Workload, reason string, injected bool) string {
	switch {
	case injected && w.Kind == inventory.KindPod:
		return manualFix(w)
	case injected:
		return restartCommand(w)
	case strings.Contains(reason, "opts out"):
		return "the pods opt out of injection: give the istio-proxy container a real image, or drop it from the template"
	}
	return injectFix(s, w.Namespace, false)
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
	pods, term := w.Total()
	if why := optOut(w); why != "" {
		return []Finding{{
			Code: CodePodRevOverridden, Severity: Info, Object: obj,
			Message: fmt.Sprintf("pod label %s=%s on %d pod(s) is inert: the pods opt out of injection (%s), so no revision injects them, whatever the namespace label says",
				istio.LabelRev, w.TemplateRev, pods+term, why),
			Fix: removeRevLabel(w),
		}}
	}
	today := ""
	if want, _ := inj.Resolve(w.TemplateRev); ns.Injection.Injected && want == ns.Injection.Revision {
		today = fmt.Sprintf("; both select revision %s today, but they will diverge when the namespace label or a tag moves", want)
	}
	label := istio.LabelRev + "=" + ns.RevLabel
	if ns.HasInjectionLabel {
		label = istio.LabelInjection + "=" + ns.InjectionLabel
	}
	return []Finding{{
		Code: CodePodRevOverridden, Severity: Warning, Object: obj,
		Message: fmt.Sprintf("pod label %s=%s on %d pod(s) is ignored: namespace label %s decides injection (%s)%s",
			istio.LabelRev, w.TemplateRev, pods+term, label, ns.Injection.Reason, today),
		Fix: removeRevLabel(w),
	}}
}

// optOut returns why a workload's pods opt out of injection themselves
// (sidecar.istio.io/inject=false), or "" when they do not.
func optOut(w *inventory.Workload) string {
	if w.Template != nil {
		if r := w.Template.Injection.Reason; strings.HasPrefix(r, "pod ") && strings.HasSuffix(r, "opts out") {
			return r
		}
		return ""
	}
	why := ""
	for _, p := range w.Proxies {
		r := p.ExpectedReason
		if !strings.HasPrefix(r, "pod ") || !strings.HasSuffix(r, "opts out") {
			return ""
		}
		why = r
	}
	return why
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
