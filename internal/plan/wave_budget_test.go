package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNextFailureBudget pins the failure budget (issue 9 defect 5): up to
// MaxFailedPerWave failed workloads per wave are reverted and the wave goes
// on; one more halts or rolls back; skipped workloads never count.
func TestNextFailureBudget(t *testing.T) {
	plan := WavePlan{Parallelism: 2, Waves: []Wave{
		{Index: 1, Workloads: []WorkloadRef{ref("n", "a"), ref("n", "b"), ref("n", "c")}},
		{Index: 2, Workloads: []WorkloadRef{ref("n", "d"), ref("n", "e")}},
	}}
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	ok, fail, rev, skip, pend := OutcomeSucceeded, OutcomeFailed, OutcomeReverted, OutcomeSkipped, OutcomePending
	done := func(kv ...any) Progress {
		p := Progress{Done: map[string]Outcome{}}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Done[ref("n", kv[i].(string)).String()] = kv[i+1].(Outcome)
		}
		return p
	}
	names := func(ns ...string) []WorkloadRef {
		var out []WorkloadRef
		for _, n := range ns {
			out = append(out, ref("n", n))
		}
		return out
	}
	gated := map[int]WaveGate{1: {Passed: now.Add(-time.Hour)}}
	tests := []struct {
		name      string
		prog      Progress
		gates     map[int]WaveGate
		budget    int
		auto      bool
		want      Decision
		reasonHas []string
	}{
		{name: "a failure within the budget is reverted first", prog: done("a", fail, "b", pend), budget: 1,
			want: Decision{Action: ActionRevert, Wave: 1, Workloads: names("a")}, reasonHas: []string{"Deployment n/a", "budget of 1"}},
		{name: "a reverted workload lets the wave go on", prog: done("a", rev, "b", ok), budget: 1,
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("c"), Record: names("c")}},
		{name: "the wave is gated without its reverted workload", prog: done("a", rev, "b", ok, "c", ok), budget: 1,
			want: Decision{Action: ActionGate, Wave: 1, Workloads: names("a", "b", "c")}},
		{name: "one failure beyond the budget halts", prog: done("a", rev, "b", fail), budget: 1,
			want: Decision{Action: ActionHalt, Wave: 1, Workloads: names("a", "b")}, reasonHas: []string{"wave 1 failed"}},
		{name: "beyond the budget with auto rollback", prog: done("a", rev, "b", fail, "c", pend), budget: 1, auto: true,
			want: Decision{Action: ActionRollback, Wave: 1, Workloads: names("c", "b", "a")}},
		{name: "the budget is per wave", prog: done("a", rev, "b", ok, "c", ok, "d", fail), gates: gated, budget: 1,
			want: Decision{Action: ActionRevert, Wave: 2, Workloads: names("d")}},
		{name: "skipped workloads are not failures", prog: done("a", skip, "b", skip, "c", ok),
			want: Decision{Action: ActionGate, Wave: 1, Workloads: names("a", "b", "c")}},
		{name: "a skipped workload is not handed out again", prog: done("a", skip, "b", pend),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("b", "c"), Record: names("c")}},
		{name: "done says what was skipped and reverted", prog: done("a", skip, "b", rev, "c", ok, "d", ok, "e", ok), budget: 1,
			gates: map[int]WaveGate{1: {Passed: now}, 2: {Passed: now}},
			want:  Decision{Action: ActionDone}, reasonHas: []string{"1 skipped", "1 failed within the budget"}},
		{name: "zero budget keeps the old rule", prog: done("a", fail), auto: true,
			want: Decision{Action: ActionRollback, Wave: 1, Workloads: names("a")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Next(plan, State{Progress: tt.prog, Gates: tt.gates, RollbackAuto: tt.auto, MaxFailedPerWave: tt.budget}, now)
			reason := got.Reason
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(reason, s) {
					t.Errorf("Reason %q lacks %q", reason, s)
				}
			}
		})
	}
}
