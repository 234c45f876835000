package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/istio"
)

// upgradeSteps are the steps of `meshroll upgrade`, in order; each can be
// skipped with --skip.
var upgradeSteps = []string{"install", "gateways", "migrate", "tags", "prune"}

// upgradeFlags bind the flags of `meshroll upgrade`.
type upgradeFlags struct {
	render                       renderFlags
	from, name                   string
	namespaces, excludeNS        []string
	excludeWL, first, last, skip []string
	nsSelector, waves            string
	parallelism, maxFailed       int
	pause, bake, rolloutTimeout  time.Duration
	gates                        []string
	promURL                      string
	probe                        string
	rollback                     string
	drill, prune, dryRun         bool
	// wait follows a MeshUpgrade handed to a running controller until it
	// ends (upgrade_controller.go).
	wait    bool
	report  string
	webhook bool
	// hop is set on the flags of one hop of a multi-hop upgrade
	// (upgrade_hops.go).
	hop *hopInfo
}

func (f *upgradeFlags) bind(cmd *cobra.Command) {
	f.render.bind(cmd)
	fl := cmd.Flags()
	_ = fl.MarkHidden("version")
	fl.StringVar(&f.render.version, "to", "", "Istio release to upgrade to, e.g. 1.24.2 (required)")
	fl.StringVar(&f.from, "from", "", "revision the data plane runs now (default: the one revision other than the target that runs proxies)")
	fl.StringVar(&f.name, "name", "", "MeshUpgrade name (default <from>-to-<to>); rerunning with the same name resumes")
	fl.StringSliceVar(&f.namespaces, "namespace-only", nil, "migrate only these namespaces")
	fl.StringVar(&f.nsSelector, "namespace-selector", "", "migrate only namespaces matching this label selector")
	fl.StringSliceVar(&f.excludeNS, "exclude-namespace", nil, "never touch these namespaces")
	fl.StringArrayVar(&f.excludeWL, "exclude-workload", nil, `never touch this workload, "Kind namespace/name" (repeatable)`)
	fl.StringSliceVar(&f.first, "first", nil, "canary namespaces (names or key=value label selectors) migrated first")
	fl.StringSliceVar(&f.last, "last", nil, "critical namespaces (names or key=value label selectors) migrated last")
	fl.StringVar(&f.waves, "waves", "1,10%,50%,100%", "wave sizes, counts or percentages; the last repeats")
	fl.IntVar(&f.parallelism, "parallelism", 0, "workloads restarted at once inside a wave (default: one per 25 planned workloads, at least 20, at most 100)")
	fl.DurationVar(&f.pause, "pause", 0, "pause after each wave's gates pass, before the next wave")
	fl.DurationVar(&f.bake, "bake", 0, "soak time after every wave, the last included: the gates run again at its end, and tags and prune wait for the last one")
	fl.DurationVar(&f.rolloutTimeout, "rollout-timeout", 0, "fail a workload whose rollout makes no progress for this long (default: a Deployment's progressDeadlineSeconds, 10m for other kinds)")
	fl.IntVar(&f.maxFailed, "max-failed-workloads", 0, "workloads of one wave whose rollout may fail (each is put back on the old revision) before the run halts or rolls back; API errors are retried and never count")
	fl.StringArrayVar(&f.gates, "gate", nil, `gate after each wave: a preset (error-rate, push-time, proxy-memory, cardinality) or "name=<promql> <op> <threshold>" (repeatable)`)
	fl.StringVar(&f.promURL, "prometheus", "", "Prometheus URL the gates query")
	fl.StringVar(&f.probe, "probe", "", "URL a Fortio load probe hits after each wave (gate: any non-2xx fails)")
	fl.StringVar(&f.rollback, "rollback", "auto", "after a failed rollout or gate: auto (restore every moved workload) or manual (halt)")
	fl.BoolVar(&f.drill, "drill", false, "roll forward, then roll everything back: rehearse the rollback")
	fl.BoolVar(&f.prune, "prune", false, "remove the old revision once nothing references it")
	fl.BoolVar(&f.wait, "wait", true, "where a meshroll controller runs, follow the MeshUpgrade it was handed with the live view until it ends (false: create it and return)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the full plan (version path, objects, waves) and change nothing")
	fl.StringSliceVar(&f.skip, "skip", nil, "steps to skip: "+strings.Join(upgradeSteps, ", "))
	fl.StringVar(&f.report, "report", "", "write the HTML report of the run to this file")
	fl.BoolVar(&f.webhook, "assignment-webhook", false, "serve the revision-assignment webhook on 127.0.0.1 while migrating (sandbox and local clusters)")
}

// validate checks flags that need no cluster.
func (f *upgradeFlags) validate() error {
	if f.render.version == "" {
		return fmt.Errorf("--to is required, e.g. --to 1.24.2")
	}
	if _, err := istio.LookupRelease(f.render.version); err != nil {
		return fmt.Errorf("invalid --to: %w", err)
	}
	for _, s := range f.skip {
		if !slices.Contains(upgradeSteps, s) {
			return fmt.Errorf("invalid --skip %q: steps are %s", s, strings.Join(upgradeSteps, ", "))
		}
	}
	if f.rollback != "auto" && f.rollback != "manual" {
		return fmt.Errorf("invalid --rollback %q: use auto or manual", f.rollback)
	}
	if f.parallelism < 0 {
		return fmt.Errorf("invalid --parallelism %d: must be at least 1 (or 0 for the default)", f.parallelism)
	}
	if f.maxFailed < 0 || f.rolloutTimeout < 0 {
		return fmt.Errorf("invalid --max-failed-workloads %d / --rollout-timeout %s: cannot be negative", f.maxFailed, f.rolloutTimeout)
	}
	if f.drill && f.skipped("migrate") {
		return fmt.Errorf("--drill rehearses the rollback of the migration, so it needs the migrate step; drop --skip migrate or --drill")
	}
	if f.bake < 0 || f.pause < 0 {
		return fmt.Errorf("invalid --bake %s / --pause %s: durations cannot be negative", f.bake, f.pause)
	}
	if f.drill && f.prune {
		return fmt.Errorf("--drill rolls back to the old revision, so --prune cannot remove it; drop one of them")
	}
	if _, err := parseWaves(f.waves); err != nil {
		return err
	}
	if f.nsSelector != "" {
		if _, err := metav1.ParseToLabelSelector(f.nsSelector); err != nil {
			return fmt.Errorf("invalid --namespace-selector %q: %w", f.nsSelector, err)
		}
	}
	return nil
}

func (f *upgradeFlags) skipped(step string) bool { return slices.Contains(f.skip, step) }

// parseWaves reads "1,10%,50%,100%".
func parseWaves(s string) ([]v1alpha1.WaveSize, error) {
	var out []v1alpha1.WaveSize
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		pct := strings.HasSuffix(part, "%")
		n, err := strconv.Atoi(strings.TrimSuffix(part, "%"))
		if err != nil || n < 1 || (pct && n > 100) {
			return nil, fmt.Errorf("invalid --waves entry %q: use a count (5) or a percentage (10%%) above zero", part)
		}
		if pct {
			out = append(out, v1alpha1.WaveSize{Percent: n})
		} else {
			out = append(out, v1alpha1.WaveSize{Count: n})
		}
	}
	return out, nil
}

// spec builds the MeshUpgrade spec from the flags.
func (f *upgradeFlags) spec(from, to string, gates []v1alpha1.Gate, excluded []string) (v1alpha1.MeshUpgradeSpec, error) {
	waves, err := parseWaves(f.waves)
	if err != nil {
		return v1alpha1.MeshUpgradeSpec{}, err
	}
	s := v1alpha1.MeshUpgradeSpec{
		From: from, To: to,
		Selection: v1alpha1.Selection{
			Namespaces: f.namespaces, ExcludeNamespaces: f.excludeNS,
			ExcludeWorkloads: append(slices.Clone(f.excludeWL), excluded...),
		},
		Strategy: v1alpha1.Strategy{
			Waves: waves, First: f.first, Last: f.last, Parallelism: f.parallelism,
			PauseBetweenWaves:  metav1.Duration{Duration: f.pause},
			Bake:               metav1.Duration{Duration: f.bake},
			RolloutTimeout:     metav1.Duration{Duration: f.rolloutTimeout},
			MaxFailedWorkloads: f.maxFailed,
		},
		Gates:         gates,
		PrometheusURL: f.promURL,
		Rollback:      v1alpha1.RollbackAuto,
	}
	if f.rollback == "manual" {
		s.Rollback = v1alpha1.RollbackManual
	}
	if f.nsSelector != "" {
		ls, err := metav1.ParseToLabelSelector(f.nsSelector)
		if err != nil {
			return s, fmt.Errorf("invalid --namespace-selector %q: %w", f.nsSelector, err)
		}
		s.Selection.NamespaceSelector = ls
	}
	return s, nil
}
