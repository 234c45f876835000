package report

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// fixtureStart is when every fixture run started; fixed so golden files and
// chart geometry never depend on the clock.
func fixtureStart() time.Time { return time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC) }

// at is fixtureStart plus d as the API's time type.
func at(d time.Duration) metav1.Time { return metav1.NewTime(fixtureStart().Add(d)) }

// atp is at as a pointer, for StartedAt/CompletedAt.
func atp(d time.Duration) *metav1.Time { t := at(d); return &t }

// fixtureSpec is the spec all fixtures share: 1-23-2 → 1-24-2, three waves,
// two gates.
func fixtureSpec() v1alpha1.MeshUpgradeSpec {
	return v1alpha1.MeshUpgradeSpec{
		From: "1-23-2",
		To:   "1-24-2",
		Strategy: v1alpha1.Strategy{
			Waves:             []v1alpha1.WaveSize{{Count: 4}, {Percent: 30}, {Percent: 100}},
			First:             []string{"canary"},
			Last:              []string{"payments"},
			Parallelism:       4,
			PauseBetweenWaves: metav1.Duration{Duration: 2 * time.Minute},
		},
		Gates: []v1alpha1.Gate{
			{Name: "error-rate", Prometheus: &v1alpha1.PrometheusGate{
				Query: `sum(rate(istio_requests_total{response_code=~"5.."}[2m])) / sum(rate(istio_requests_total[2m]))`,
				Op:    "<", Threshold: "0.01"}},
			{Name: "checkout-probe", Probe: &v1alpha1.ProbeGate{URL: "http://checkout.shop:8080/healthz", QPS: 20, MaxErrorPercent: "0"}},
		},
		Rollback: v1alpha1.RollbackAuto,
	}
}

// fixtureWorkloads plans 40 workloads: 4 canaries, 12 in wave 2, 24 in wave 3.
func fixtureWorkloads() []v1alpha1.WorkloadStatus {
	namespaces := []string{"shop", "search", "platform", "payments"}
	names := []string{"frontend", "cart", "checkout", "catalog", "ratings", "reviews", "inventory", "shipping", "auth", "ledger", "notify", "gateway-api"}
	var ws []v1alpha1.WorkloadStatus
	for i := range 40 {
		wave, ns := 3, namespaces[i%len(namespaces)]
		switch {
		case i < 4:
			wave, ns = 1, "canary"
		case i < 16:
			wave = 2
		}
		kind, mech := "Deployment", v1alpha1.MechanismPod
		if i%9 == 5 {
			kind = "StatefulSet"
		}
		if ns == "search" {
			mech = v1alpha1.MechanismNamespace
		}
		ws = append(ws, v1alpha1.WorkloadStatus{
			Kind: kind, Namespace: ns, Name: fmt.Sprintf("%s-%d", names[i%len(names)], i),
			Wave: wave, Mechanism: mech, Via: "1-23-2", Pods: 2 + i%4,
			RolloutMillis: int64(8000 + (i*7919)%50000),
		})
	}
	return ws
}

// succeededRun is a finished three-wave run of 40 workloads with 20 revision
// samples, gate evidence, label moves, a skipped Job and a straggler pod on
// an old revision.
func succeededRun() *v1alpha1.MeshUpgrade {
	u := &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-1-24-rollout", CreationTimestamp: at(-time.Minute)},
		Spec:       fixtureSpec(),
	}
	ws := fixtureWorkloads()
	for i := range ws {
		ws[i].Outcome = v1alpha1.OutcomeSucceeded
	}
	pods := 0
	for _, w := range ws {
		pods += w.Pods
	}
	st := &u.Status
	st.Phase = v1alpha1.PhaseSucceeded
	st.Message = "all 40 planned workloads run 1-24-2"
	st.Waves, st.CurrentWave = 3, 3
	st.Workloads = ws
	st.Counts = v1alpha1.Tally(ws)
	st.StartedAt, st.CompletedAt = atp(0), atp(42*time.Minute+10*time.Second)
	st.Skipped = []v1alpha1.SkippedWorkload{
		{Kind: "Job", Namespace: "batch", Name: "nightly-reindex", Reason: "Jobs are not restarted; the next Job created from it injects 1-24-2"},
		{Kind: "Pod", Namespace: "debug", Name: "netshoot", Reason: "no controller owns this pod; delete it and recreate it to move it"},
	}
	st.Namespaces = []v1alpha1.LabelMove{{Name: "search", From: "1-23-2", To: "1-24-2", Wave: 2, Done: true}}
	st.Tags = []v1alpha1.LabelMove{{Name: "prod-stable", From: "1-23-2", To: "1-24-2", Wave: 3, Done: true}}
	for wave := 1; wave <= 3; wave++ {
		end := time.Duration(wave*13) * time.Minute
		st.Gates = append(st.Gates,
			v1alpha1.GateResult{Wave: wave, Name: "error-rate", Passed: true, At: at(end),
				Evidence: fmt.Sprintf("0.00%d < 0.01 (1 series)", wave+1)},
			v1alpha1.GateResult{Wave: wave, Name: "checkout-probe", Passed: true, At: at(end + 30*time.Second),
				Evidence: fmt.Sprintf("%d requests, 100%% 2xx, 0 errors ≤ 0%%", 600*wave)})
	}
	for i := range 20 {
		d := time.Duration(i) * 2 * time.Minute
		moved := min(pods, pods*i/17)
		st.Samples = append(st.Samples, v1alpha1.Sample{At: at(d + 10*time.Second), Pods: map[string]int{
			"1-23-2": pods - moved, "1-24-2": moved, "1-22-1": 3,
		}})
	}
	st.History = runHistory(3, false)
	st.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionComplete, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonAllMigrated, LastTransitionTime: *st.CompletedAt}}
	return u
}

// runHistory is a plausible engine timeline through the given waves; when
// failed, the last wave's gate fails and a rollback follows.
func runHistory(waves int, failed bool) []v1alpha1.Event {
	es := []v1alpha1.Event{{At: at(0), Type: "Planned", Message: "planned 40 workloads in 3 waves"}}
	for w := 1; w <= waves; w++ {
		base := time.Duration((w-1)*13) * time.Minute
		es = append(es,
			v1alpha1.Event{At: at(base + time.Minute), Type: "WaveStarted", Wave: w, Message: fmt.Sprintf("restarting wave %d", w)},
			v1alpha1.Event{At: at(base + 11*time.Minute), Type: "WaveMigrated", Wave: w, Message: fmt.Sprintf("wave %d rolled out", w)})
		if failed && w == waves {
			es = append(es,
				v1alpha1.Event{At: at(base + 12*time.Minute), Type: "RolloutFailed", Wave: w, Message: "Deployment shop/checkout-6 did not become ready within 5m0s"},
				v1alpha1.Event{At: at(base + 13*time.Minute), Type: "GateFailed", Wave: w, Message: "gate error-rate failed: 0.042 < 0.01 is false"},
				v1alpha1.Event{At: at(base + 14*time.Minute), Type: "RollbackStarted", Wave: w, Message: "reassigning 1-23-2 to 15 moved workloads"},
				v1alpha1.Event{At: at(base + 19*time.Minute), Type: "RolledBack", Wave: w, Message: "14 workloads back on 1-23-2, 1 failed to roll back"})
			return es
		}
		es = append(es, v1alpha1.Event{At: at(base + 13*time.Minute), Type: "GatePassed", Wave: w, Message: fmt.Sprintf("wave %d gates passed", w)})
	}
	return append(es, v1alpha1.Event{At: at(42*time.Minute + 10*time.Second), Type: "Succeeded", Message: "all workloads run 1-24-2"})
}

// rolledBackRun failed in wave 2: one rollout timed out, the error-rate gate
// failed, the automatic rollback restored all but one workload.
func rolledBackRun() *v1alpha1.MeshUpgrade {
	u := &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-1-24-attempt-1"},
		Spec:       fixtureSpec(),
	}
	ws := fixtureWorkloads()
	for i := range ws {
		switch {
		case ws[i].Wave == 3:
			ws[i].RolloutMillis = 0
		case i == 6:
			ws[i].Namespace, ws[i].Name, ws[i].Pods = "shop", "checkout-6", 3
			ws[i].Outcome = v1alpha1.OutcomeFailed
			ws[i].Message = "rollout of Deployment shop/checkout-6 timed out after 5m0s: 1 of 3 updated replicas available; pod checkout-6-7d9f-x2k4 CrashLoopBackOff (istio-proxy: failed to fetch bootstrap config)"
		case i == 9:
			ws[i].Kind, ws[i].Namespace, ws[i].Name = "StatefulSet", "platform", "ledger-9"
			ws[i].Outcome = v1alpha1.OutcomeRollbackFailed
			ws[i].Message = "rollback restart of StatefulSet platform/ledger-9 did not finish: 0 of 2 updated replicas ready"
		default:
			ws[i].Outcome = v1alpha1.OutcomeRolledBack
		}
	}
	st := &u.Status
	st.Phase = v1alpha1.PhaseRolledBack
	st.Message = "gate error-rate failed after wave 2; rolled back 14 workloads, 1 failed to roll back"
	st.Waves, st.CurrentWave = 3, 2
	st.Workloads = ws
	st.Counts = v1alpha1.Tally(ws)
	st.StartedAt, st.CompletedAt = atp(0), atp(32*time.Minute)
	st.Namespaces = []v1alpha1.LabelMove{{Name: "search", From: "1-23-2", To: "1-24-2", Wave: 2}}
	st.Gates = []v1alpha1.GateResult{
		{Wave: 1, Name: "error-rate", Passed: true, At: at(13 * time.Minute), Evidence: "0.002 < 0.01 (1 series)"},
		{Wave: 1, Name: "checkout-probe", Passed: true, At: at(13*time.Minute + 30*time.Second), Evidence: "600 requests, 100% 2xx"},
		{Wave: 2, Name: "error-rate", Passed: false, At: at(26 * time.Minute), Evidence: `0.042 < 0.01 is false for {destination_workload="checkout-6"}`},
	}
	for i := range 16 {
		moved := []int{0, 3, 8, 14, 14, 14, 14, 20, 30, 38, 44, 44, 30, 12, 3, 3}[i]
		st.Samples = append(st.Samples, v1alpha1.Sample{At: at(time.Duration(i) * 2 * time.Minute),
			Pods: map[string]int{"1-23-2": 140 - moved, "1-24-2": moved}})
	}
	st.History = runHistory(2, true)
	return u
}

// emptyRun is a MeshUpgrade the engine has not touched yet.
func emptyRun() *v1alpha1.MeshUpgrade {
	return &v1alpha1.MeshUpgrade{
		ObjectMeta: metav1.ObjectMeta{Name: "just-created"},
		Spec:       fixtureSpec(),
	}
}

// hostileRun carries markup and terminal escapes in every cluster-supplied
// string a report prints.
func hostileRun() *v1alpha1.MeshUpgrade {
	u := rolledBackRun()
	u.Name = `evil"><script>alert(1)</script>`
	w := &u.Status.Workloads[6]
	w.Name = `<script>alert("name")</script>`
	w.Message = "\x1b[2J\x1b[31mgotcha</td></tr></table><img src=x onerror=alert(2)>"
	u.Status.Gates[2].Evidence = `<a href="https://evil.example/">click</a>`
	u.Status.Samples[3].Pods[`<b>rev</b>`] = 5
	u.Status.History[1].Message = "<style>body{display:none}</style>"
	return u
}
