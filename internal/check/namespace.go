package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/plan"
)

// The namespace checks. Their fixes follow three rules, pinned by tests: a
// fix never removes an opt-out (istio-injection=disabled), keeps what is
// injected today unless the finding is that today is wrong, and names only
// revisions and tags that are installed.

// namespaceBothLabels reports istio-injection=enabled beside istio.io/rev:
// the default injector wins and the revision label is silently ignored. The
// fix drops the ignored label, which changes nothing today. istio-injection
// with any other value is an opt-out (or a typo, see namespaceInjectionValue),
// never a conflict.
func namespaceBothLabels(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, ns := range s.Namespaces {
		if !ns.HasInjectionLabel || !ns.HasRevLabel || ns.InjectionLabel != "enabled" {
			continue
		}
		out = append(out, Finding{
			Code: CodeNamespaceBothLabels, Severity: Warning, Object: object("Namespace", "", ns.Name),
			Message: fmt.Sprintf("namespace has both %s=enabled and %s=%s; %s wins, so the revision label is ignored (%s)",
				istio.LabelInjection, istio.LabelRev, ns.RevLabel, istio.LabelInjection, ns.Injection.Reason),
			Fix: fmt.Sprintf("kubectl label namespace %s %s-", ns.Name, istio.LabelRev),
		})
	}
	return out
}

// namespaceInjectionValue reports istio-injection values other than enabled
// and disabled: no webhook matches them, so the namespace is silently not
// injected — and a revision label beside it is ignored too.
func namespaceInjectionValue(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, ns := range s.Namespaces {
		v := ns.InjectionLabel
		if !ns.HasInjectionLabel || v == "enabled" || v == "disabled" {
			continue
		}
		fix := fmt.Sprintf("kubectl label namespace %s %s=disabled --overwrite", ns.Name, istio.LabelInjection)
		if yes(v) {
			fix = injectFix(s, ns.Name, true)
		}
		out = append(out, Finding{
			Code: CodeNamespaceInjectionValue, Severity: Warning, Object: object("Namespace", "", ns.Name),
			Message: fmt.Sprintf("namespace label %s=%s is neither enabled nor disabled: no injector matches it, so pods here start without sidecars",
				istio.LabelInjection, v),
			Fix: fix,
		})
	}
	return out
}

// namespaceRevisionMissing reports namespaces whose istio.io/rev names no
// installed revision or tag: no webhook matches them, so every new pod there
// silently starts without a sidecar (typically left behind by a removed revision).
func namespaceRevisionMissing(s *inventory.Snapshot) []Finding {
	inj := s.Injectors()
	var out []Finding
	for _, ns := range s.Namespaces {
		if !ns.HasRevLabel || ns.HasInjectionLabel {
			continue
		}
		if _, ok := inj.Resolve(ns.RevLabel); ok {
			continue
		}
		fix := "install a revision first: meshroll revision install --version <release>"
		if v := installedValue(s); v != "" {
			fix = fmt.Sprintf("kubectl label namespace %s %s=%s --overwrite", ns.Name, istio.LabelRev, v)
		}
		out = append(out, Finding{
			Code: CodeNamespaceRevisionMissing, Severity: Error, Object: object("Namespace", "", ns.Name),
			Message: fmt.Sprintf("namespace label %s=%s names no installed revision or tag: new pods here start without a sidecar",
				istio.LabelRev, ns.RevLabel),
			Fix: fix,
		})
	}
	return out
}

// namespaceAmbientSidecar reports a namespace in ambient mode that also
// selects sidecar injection: new pods get sidecars and ztunnel leaves pods
// with sidecars alone, so the namespace runs two data planes at once. The fix
// keeps what runs today (sidecars); the message names the other way out.
func namespaceAmbientSidecar(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, ns := range s.Namespaces {
		if ns.DataplaneMode != istio.DataplaneModeAmbient || !(ns.HasRevLabel || ns.InjectionLabel == "enabled") {
			continue
		}
		label := istio.LabelRev + "=" + ns.RevLabel
		if ns.HasInjectionLabel {
			label = istio.LabelInjection + "=" + ns.InjectionLabel
		}
		out = append(out, Finding{
			Code: CodeNamespaceAmbientSidecar, Severity: Warning, Object: object("Namespace", "", ns.Name),
			Message: fmt.Sprintf("namespace has %s=%s and sidecar injection (%s): new pods get sidecars, which ztunnel then bypasses; choose one data plane (to go ambient instead, remove %s and restart the workloads)",
				istio.LabelDataplaneMode, istio.DataplaneModeAmbient, label, strings.SplitN(label, "=", 2)[0]),
			Fix: fmt.Sprintf("kubectl label namespace %s %s-", ns.Name, istio.LabelDataplaneMode),
		})
	}
	return out
}

// namespaceInjectionCoverage is the istioctl-analyze style note on
// namespaces without any injection label: in a mesh where other namespaces
// are injected, their pods run without sidecars; with
// enableNamespacesByDefault they are injected without anyone having asked.
// Only namespaces with pods are reported, and never Kubernetes' own or
// istio-system.
func namespaceInjectionCoverage(s *inventory.Snapshot) []Finding {
	injected, bare := 0, map[string]int{}
	for _, ns := range s.Namespaces {
		if ns.Injection.Injected {
			injected++
		}
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		for _, p := range w.Proxies {
			if p.Revision == "" && p.Expected == "" {
				bare[w.Namespace] += p.Pods
			}
		}
	}
	var out []Finding
	for _, ns := range s.Namespaces {
		if ns.HasInjectionLabel || ns.HasRevLabel || ns.DataplaneMode != "" || ns.Name == istio.SystemNamespace || ignored(ns) {
			continue
		}
		switch {
		case ns.Injection.Injected:
			out = append(out, Finding{
				Code: CodeNamespaceInjectedDefault, Severity: Info, Object: object("Namespace", "", ns.Name),
				Message: fmt.Sprintf("namespace has no injection label, but enableNamespacesByDefault injects its pods with revision %s; label it to say so (or %s=disabled to opt out)",
					ns.Injection.Revision, istio.LabelInjection),
				Fix: fmt.Sprintf("kubectl label namespace %s %s=enabled", ns.Name, istio.LabelInjection),
			})
		case injected > 0 && bare[ns.Name] > 0:
			out = append(out, Finding{
				Code: CodeNamespaceNotInjected, Severity: Info, Object: object("Namespace", "", ns.Name),
				Message: fmt.Sprintf("namespace has no injection label: its %d pod(s) run without sidecars while %d other namespace(s) are injected; make the opt-out explicit, or mesh it (%s, then restart its workloads)",
					bare[ns.Name], injected, strings.TrimPrefix(injectFix(s, ns.Name, false), "kubectl label namespace "+ns.Name+" ")),
				Fix: fmt.Sprintf("kubectl label namespace %s %s=disabled", ns.Name, istio.LabelInjection),
			})
		}
	}
	return out
}

// namespaceProxiesStale rolls the per-workload proxy-stale findings up per
// namespace: how much of it runs images its injectors no longer inject. The
// fix restarts exactly the restartable stale workloads, nothing else.
func namespaceProxiesStale(s *inventory.Snapshot) []Finding {
	type acc struct {
		stale, meshed int
		restart       []string
		workloads     int
	}
	accs := map[string]*acc{}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		a := accs[w.Namespace]
		if a == nil {
			a = &acc{}
			accs[w.Namespace] = a
		}
		stale := 0
		for _, p := range w.Proxies {
			if p.Revision != "" {
				a.meshed += p.Pods
			}
			if isStale(s, p) {
				stale += p.Pods
			}
		}
		if stale > 0 {
			a.stale += stale
			a.workloads++
			if w.Restartable && restartHelps(s, w) {
				a.restart = append(a.restart, strings.ToLower(w.Kind)+"/"+w.Name)
			}
		}
	}
	names := make([]string, 0, len(accs))
	for n, a := range accs {
		if a.stale > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Finding
	for _, n := range names {
		a := accs[n]
		fix := "see the proxy-stale findings of its workloads"
		if len(a.restart) > 0 {
			fix = fmt.Sprintf("kubectl rollout restart -n %s %s", n, strings.Join(a.restart, " "))
		}
		out = append(out, Finding{
			Code: CodeNamespaceProxiesStale, Severity: Info, Object: object("Namespace", "", n),
			Message: fmt.Sprintf("%d of %d meshed pod(s) in %d workload(s) run a sidecar image their injector no longer injects",
				a.stale, a.meshed, a.workloads),
			Fix: fix,
		})
	}
	return out
}

// ignored says whether Istio never injects the namespace whatever its labels.
func ignored(ns inventory.Namespace) bool {
	return strings.Contains(ns.Injection.Reason, "is never injected")
}

// injectFix labels a namespace so that an installed injector covers it:
// istio-injection=enabled when a default injector exists, else istio.io/rev
// naming an installed revision or tag.
func injectFix(s *inventory.Snapshot, ns string, overwrite bool) string {
	o := ""
	if overwrite {
		o = " --overwrite"
	}
	if s.DefaultRevision != "" {
		return fmt.Sprintf("kubectl label namespace %s %s=enabled%s", ns, istio.LabelInjection, o)
	}
	if v := installedValue(s); v != "" {
		if overwrite {
			return fmt.Sprintf("kubectl label namespace %s %s- %s=%s", ns, istio.LabelInjection, istio.LabelRev, v)
		}
		return fmt.Sprintf("kubectl label namespace %s %s=%s", ns, istio.LabelRev, v)
	}
	return "install a revision first: meshroll revision install --version <release>"
}

// installedValue is the istio.io/rev value a fix should suggest: the newest
// revision that has an injector and a running istiod, by version; "" when
// none.
func installedValue(s *inventory.Snapshot) string {
	best, bestV := "", plan.Version{}
	for _, r := range s.Revisions {
		if len(r.InjectorWebhooks) == 0 || r.Deployment == "" {
			continue
		}
		v, err := plan.ParseVersion(r.Version)
		if best == "" || (err == nil && bestV.Compare(v) < 0) {
			best = r.Name
			if err == nil {
				bestV = v
			}
		}
	}
	return best
}

// yes reads an inject flag the way people write it when they mean "on".
func yes(v string) bool {
	switch strings.ToLower(v) {
	case "y", "yes", "true", "on", "1":
		return true
	}
	return false
}
