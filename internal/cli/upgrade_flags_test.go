package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// upgradeFlagsFrom binds upgradeFlags to a bare command and parses args, so
// the flags carry their real defaults.
func upgradeFlagsFrom(t *testing.T, args ...string) *upgradeFlags {
	t.Helper()
	f := &upgradeFlags{}
	cmd := &cobra.Command{Use: "upgrade"}
	f.bind(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("ParseFlags(%q) error = %v", args, err)
	}
	return f
}

func TestUpgradeFlagsValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // error substring; "" means valid
	}{
		{name: "defaults with a target", args: []string{"--to", "1.24.2"}},
		{name: "target with a v prefix", args: []string{"--to", "v1.24.2"}},
		{name: "every step skippable", args: []string{"--to", "1.24.2", "--skip", "install,gateways,migrate,tags,prune"}},
		{name: "manual rollback", args: []string{"--to", "1.24.2", "--rollback", "manual"}},
		{name: "drill alone", args: []string{"--to", "1.24.2", "--drill"}},
		{name: "prune alone", args: []string{"--to", "1.24.2", "--prune"}},
		{name: "namespace selector", args: []string{"--to", "1.24.2", "--namespace-selector", "team=pay,tier notin (critical),!legacy"}},
		{name: "missing --to", args: nil, want: "--to is required"},
		{name: "unknown release", args: []string{"--to", "1.99.0"}, want: "invalid --to"},
		{name: "unknown step", args: []string{"--to", "1.24.2", "--skip", "install,reboot"}, want: `invalid --skip "reboot"`},
		{name: "rollback is lower case", args: []string{"--to", "1.24.2", "--rollback", "Auto"}, want: `invalid --rollback "Auto"`},
		{name: "rollback never", args: []string{"--to", "1.24.2", "--rollback", "never"}, want: "use auto or manual"},
		{name: "parallelism zero is the default", args: []string{"--to", "1.24.2", "--parallelism", "0"}},
		{name: "parallelism negative", args: []string{"--to", "1.24.2", "--parallelism", "-3"}, want: "invalid --parallelism -3"},
		{name: "drill with prune", args: []string{"--to", "1.24.2", "--drill", "--prune"}, want: "--drill rolls back"},
		{name: "bad waves", args: []string{"--to", "1.24.2", "--waves", "1,0"}, want: `invalid --waves entry "0"`},
		{name: "bake", args: []string{"--to", "1.24.2", "--bake", "10m"}},
		{name: "Defect9 drill without the migrate step", args: []string{"--to", "1.24.2", "--drill", "--skip", "migrate"}, want: "--drill rehearses the rollback"},
		{name: "negative bake", args: []string{"--to", "1.24.2", "--bake", "-1s"}, want: "invalid --bake"},
		{name: "bad namespace selector", args: []string{"--to", "1.24.2", "--namespace-selector", "team in (pay"}, want: "invalid --namespace-selector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := upgradeFlagsFrom(t, tc.args...).validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate() error = %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate() error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseWaves(t *testing.T) {
	tests := []struct {
		in      string
		want    []v1alpha1.WaveSize
		wantErr string
	}{
		{in: "1,10%,100%", want: []v1alpha1.WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}}},
		{in: "1,10%,50%,100%", want: []v1alpha1.WaveSize{{Count: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}},
		{in: " 5 , 25% ", want: []v1alpha1.WaveSize{{Count: 5}, {Percent: 25}}},
		{in: "1000", want: []v1alpha1.WaveSize{{Count: 1000}}},
		{in: "", wantErr: `entry ""`},
		{in: "0", wantErr: `entry "0"`},
		{in: "0%", wantErr: `entry "0%"`},
		{in: "101%", wantErr: `entry "101%"`},
		{in: "-2", wantErr: `entry "-2"`},
		{in: "1,,10%", wantErr: `entry ""`},
		{in: "ten", wantErr: `entry "ten"`},
		{in: "10%%", wantErr: `entry "10%%"`},
		{in: "%", wantErr: `entry "%"`},
		{in: "1.5", wantErr: `entry "1.5"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWaves(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseWaves(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWaves(%q) error = %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseWaves(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestUpgradeFlagsSpec(t *testing.T) {
	f := upgradeFlagsFrom(t, "--to", "1.24.2",
		"--namespace-only", "a,b", "--exclude-namespace", "kube-system",
		"--exclude-workload", "Deployment a/web", "--first", "canary", "--last", "tier=critical",
		"--waves", "2,50%", "--parallelism", "4", "--pause", "30s", "--bake", "5m", "--rollout-timeout", "2m",
		"--prometheus", "http://prom:9090", "--rollback", "manual", "--namespace-selector", "team=pay")
	gates := []v1alpha1.Gate{{Name: "probe", Probe: &v1alpha1.ProbeGate{URL: "http://shop/"}}}

	got, err := f.spec("1-23-2", "1-24-2", gates, []string{"Deployment istio-system/istio-ingressgateway"})
	if err != nil {
		t.Fatalf("spec() error = %v", err)
	}
	want := v1alpha1.MeshUpgradeSpec{
		From: "1-23-2", To: "1-24-2",
		Selection: v1alpha1.Selection{
			Namespaces:        []string{"a", "b"},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "pay"}},
			ExcludeNamespaces: []string{"kube-system"},
			ExcludeWorkloads:  []string{"Deployment a/web", "Deployment istio-system/istio-ingressgateway"},
		},
		Strategy: v1alpha1.Strategy{
			Waves: []v1alpha1.WaveSize{{Count: 2}, {Percent: 50}}, First: []string{"canary"}, Last: []string{"tier=critical"},
			Parallelism: 4, PauseBetweenWaves: metav1.Duration{Duration: 30 * time.Second},
			Bake:           metav1.Duration{Duration: 5 * time.Minute},
			RolloutTimeout: metav1.Duration{Duration: 2 * time.Minute},
		},
		Gates:         gates,
		PrometheusURL: "http://prom:9090",
		Rollback:      v1alpha1.RollbackManual,
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("spec() (-want +got):\n%s", diff)
	}
	if len(f.excludeWL) != 1 {
		t.Errorf("spec() appended to the flag's own slice: %q", f.excludeWL)
	}

	def, err := upgradeFlagsFrom(t, "--to", "1.24.2").spec("1-23-2", "1-24-2", nil, nil)
	if err != nil {
		t.Fatalf("spec() error = %v", err)
	}
	// Parallelism 0: upgrade.Start scales it to the plan (plan.DefaultParallelism).
	if def.Rollback != v1alpha1.RollbackAuto || def.Strategy.Parallelism != 0 || def.Selection.NamespaceSelector != nil {
		t.Errorf("default spec: Rollback %q, Parallelism %d, NamespaceSelector %v; want Auto, 0, nil",
			def.Rollback, def.Strategy.Parallelism, def.Selection.NamespaceSelector)
	}
}
