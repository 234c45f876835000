package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshroll/meshroll/internal/inventory"
)

// Severity grades a finding; it decides the exit code.
type Severity string

// Severities, mildest first.
const (
	Info    Severity = "info"
	Warning Severity = "warning"
	Error   Severity = "error"
)

// Stable finding codes; see the package documentation for their meaning.
const (
	CodeNamespaceBothLabels      = "namespace-both-labels"
	CodeNamespaceRevisionMissing = "namespace-revision-missing"
	CodePodRevOverridden         = "pod-rev-overridden"
	CodeProxyStale               = "proxy-stale"
	CodeSidecarMissing           = "sidecar-missing"
	CodeRevisionMissing          = "revision-missing"
	CodeSkewUnsupported          = "skew-unsupported"
	CodeSkewBehind               = "skew-behind"
	CodeWorkloadNotRestartable   = "workload-not-restartable"
	CodeTerminatedPodsPin        = "terminated-pods-pin"
	CodeWebhookServiceMissing    = "webhook-service-missing"
	CodeTagRevisionMissing       = "tag-revision-missing"
	CodeNamespaceInjectionValue  = "namespace-injection-value-unknown"
	CodeNamespaceAmbientSidecar  = "namespace-ambient-and-sidecar"
	CodeNamespaceNotInjected     = "namespace-not-injected"
	CodeNamespaceInjectedDefault = "namespace-injected-by-default"
	CodeNamespaceProxiesStale    = "namespace-proxies-stale"
	CodeProxyImageAuto           = "proxy-image-auto"
	CodeProxyRevisionUnknown     = "proxy-revision-unknown"
	CodeTagInstallerLabels       = "tag-installer-labels"
)

// Finding is one problem with one object.
type Finding struct {
	// Code is stable across releases (see package documentation).
	Code string `json:"code"`
	// Severity decides the exit code.
	Severity Severity `json:"severity"`
	// Object is "kind/namespace/name" ("kind/name" for cluster-scoped objects).
	Object string `json:"object"`
	// Message says what is wrong, with pod counts where pods are involved.
	Message string `json:"message"`
	// Fix is a one-line command or action that resolves the finding.
	Fix string `json:"fix"`
}

// Run applies every check to s and returns the findings in a deterministic
// order; never nil, so JSON output shows an empty list on a clean mesh.
func Run(s *inventory.Snapshot) []Finding {
	out := []Finding{}
	for _, rule := range [...]func(*inventory.Snapshot) []Finding{
		namespaceBothLabels, namespaceInjectionValue, namespaceRevisionMissing, namespaceAmbientSidecar,
		namespaceInjectionCoverage, tagRevisionMissing, tagInstallerLabels, webhookServiceMissing, workloadFindings, namespaceProxiesStale,
	} {
		out = append(out, rule(s)...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if rank(a.Severity) != rank(b.Severity) {
			return rank(a.Severity) > rank(b.Severity)
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Message < b.Message
	})
	return out
}

// ExitCode maps findings to a process exit code: 0 for none or only info,
// 1 when the worst is a warning, 2 when any is an error.
func ExitCode(findings []Finding) int {
	worst := 0
	for _, f := range findings {
		worst = max(worst, rank(f.Severity))
	}
	return worst
}

func rank(s Severity) int {
	switch s {
	case Error:
		return 2
	case Warning:
		return 1
	}
	return 0
}

func object(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

func tagRevisionMissing(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, t := range s.Tags {
		if r := s.Revision(t.Revision); r != nil && r.Deployment != "" {
			continue
		}
		out = append(out, Finding{
			Code: CodeTagRevisionMissing, Severity: Error, Object: object("Tag", "", t.Name),
			Message: fmt.Sprintf("revision tag %q (webhook %s) points at revision %q, which has no istiod; pods selecting the tag cannot be injected",
				t.Name, t.Webhook, t.Revision),
			Fix: fmt.Sprintf("istioctl tag set %s --revision <installed-revision> --overwrite", t.Name),
		})
	}
	return out
}

// tagInstallerLabels reports revision tags whose webhook carries installer
// labels (tags written by older meshroll or by hand from an install's
// output): `istioctl uninstall --purge` deletes them, and with them injection
// for every namespace on the tag. Re-setting the tag rewrites it as istioctl
// writes tags.
func tagInstallerLabels(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, t := range s.Tags {
		if len(t.InstallerLabels) == 0 {
			continue
		}
		out = append(out, Finding{
			Code: CodeTagInstallerLabels, Severity: Warning, Object: object("Tag", "", t.Name),
			Message: fmt.Sprintf("revision tag %q (webhook %s) carries installer labels %s: istioctl uninstall --purge would delete it and stop injection for every namespace on the tag",
				t.Name, t.Webhook, strings.Join(t.InstallerLabels, ", ")),
			Fix: fmt.Sprintf("meshroll tag set %s --revision %s --overwrite", t.Name, t.Revision),
		})
	}
	return out
}

func webhookServiceMissing(s *inventory.Snapshot) []Finding {
	var out []Finding
	for _, w := range s.Webhooks {
		if w.ServiceExists {
			continue
		}
		what := "the webhook"
		if w.Tag != "" {
			what = "revision tag " + w.Tag
		}
		out = append(out, Finding{
			Code: CodeWebhookServiceMissing, Severity: Error, Object: object(w.Kind, "", w.Name),
			Message: fmt.Sprintf("%s calls Service %s, which does not exist; admission fails for every matching request", what, w.Service),
			Fix:     fmt.Sprintf("reinstall revision %q, or kubectl delete %s %s", w.Revision, w.Kind, w.Name),
		})
	}
	return out
}
