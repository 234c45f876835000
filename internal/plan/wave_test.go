package plan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestWorkloadRefString(t *testing.T) {
	if got, want := ref("shop", "cart").String(), "Deployment shop/cart"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPlanWaves(t *testing.T) {
	count := func(n ...int) []WaveSize {
		var out []WaveSize
		for _, c := range n {
			out = append(out, WaveSize{Count: c})
		}
		return out
	}
	mixed := []Candidate{dep("prod", "api"), dep("canary", "web"), dep("dev", "b"), dep("dev", "a"),
		{Ref: WorkloadRef{Kind: "StatefulSet", Namespace: "dev", Name: "a"}, Restartable: true}}
	tests := []struct {
		name        string
		cands       []Candidate
		policy      WavePolicy
		want        [][]string
		wantSkipped []string // "Kind ns/name: reason substring"
		wantErr     string
	}{
		{name: "no candidates", policy: WavePolicy{Waves: count(1), Parallelism: 1}},
		{name: "one wave holds all", cands: mixed, policy: WavePolicy{Waves: count(10), Parallelism: 1},
			want: [][]string{{"canary/web", "dev/a", "dev/b", "StatefulSet dev/a", "prod/api"}}},
		{name: "sorted by namespace kind name, last size repeats", cands: mixed, policy: WavePolicy{Waves: count(1, 2), Parallelism: 1},
			want: [][]string{{"canary/web"}, {"dev/a", "dev/b"}, {"StatefulSet dev/a", "prod/api"}}},
		{name: "unused sizes are dropped", cands: mixed[:2], policy: WavePolicy{Waves: count(1, 1, 5, 5), Parallelism: 1},
			want: [][]string{{"canary/web"}, {"prod/api"}}},
		{name: "first by namespace name, last by namespace name", cands: mixed,
			policy: WavePolicy{Waves: count(2), Parallelism: 1, Ordering: Ordering{First: []string{"prod"}, Last: []string{"canary"}}},
			want:   [][]string{{"prod/api", "dev/a"}, {"dev/b", "StatefulSet dev/a"}, {"canary/web"}}},
		{name: "first by label selector", cands: []Candidate{dep("a", "x"), labelled(dep("z", "y"), "stage", "canary"), labelled(dep("m", "q"), "stage", "prod")},
			policy: WavePolicy{Waves: count(1), Parallelism: 1, Ordering: Ordering{First: []string{"stage=canary"}}},
			want:   [][]string{{"z/y"}, {"a/x"}, {"m/q"}}},
		{name: "last by label selector, value must match", cands: []Candidate{labelled(dep("a", "x"), "tier", "critical"), dep("b", "y"), labelled(dep("c", "z"), "tier", "normal")},
			policy: WavePolicy{Waves: count(5), Parallelism: 1, Ordering: Ordering{Last: []string{"tier=critical"}}},
			want:   [][]string{{"b/y", "c/z", "a/x"}}},
		{name: "first group sorted by namespace, not by entry order", cands: []Candidate{dep("x", "1"), dep("b", "1"), dep("a", "1")},
			policy: WavePolicy{Waves: count(5), Parallelism: 1, Ordering: Ordering{First: []string{"x", "b"}}},
			want:   [][]string{{"b/1", "x/1", "a/1"}}},
		{name: "matching both lists goes last", cands: []Candidate{labelled(dep("a", "x"), "canary", "true"), dep("b", "y")},
			policy: WavePolicy{Waves: count(5), Parallelism: 1, Ordering: Ordering{First: []string{"canary=true"}, Last: []string{"a"}}},
			want:   [][]string{{"b/y", "a/x"}}},
		{name: "selector with empty value matches empty label", cands: []Candidate{dep("a", "x"), labelled(dep("b", "y"), "flag", "")},
			policy: WavePolicy{Waves: count(5), Parallelism: 1, Ordering: Ordering{First: []string{"flag="}}},
			want:   [][]string{{"b/y", "a/x"}}},
		{name: "skipped kinds are reported with advice, sorted", cands: []Candidate{
			dep("a", "x"),
			stuck("Pod", "b", "bare", ""),
			stuck("Job", "a", "migrate", ""),
			stuck("CronJob", "a", "nightly", ""),
			stuck("StatefulSet", "a", "db", ""),
			stuck("DaemonSet", "a", "odd", "custom reason"),
			stuck("Widget", "a", "w", ""),
		}, policy: WavePolicy{Waves: count(1), Parallelism: 1},
			want: [][]string{{"a/x"}},
			wantSkipped: []string{
				"CronJob a/nightly: nothing to restart",
				"DaemonSet a/odd: custom reason",
				"Job a/migrate: let the Job finish",
				"StatefulSet a/db: OnDelete",
				"Widget a/w: by hand",
				"Pod b/bare: bare Pod",
			}},
		{name: "only skipped", cands: []Candidate{stuck("Job", "a", "j", "")}, policy: WavePolicy{Waves: count(1), Parallelism: 1},
			wantSkipped: []string{"Job a/j: Job"}},
		{name: "percent of seven, 10 25 65", cands: many(7), policy: WavePolicy{Waves: []WaveSize{{Percent: 10}, {Percent: 25}, {Percent: 65}}, Parallelism: 1},
			want: [][]string{{"ns-00/app-00000"}, {"ns-01/app-00001", "ns-02/app-00002"},
				{"ns-03/app-00003", "ns-04/app-00004", "ns-05/app-00005", "ns-06/app-00006"}}},
		// Errors.
		{name: "no sizes", policy: WavePolicy{Parallelism: 1}, wantErr: "at least one wave size"},
		{name: "both count and percent", policy: WavePolicy{Waves: []WaveSize{{Count: 1, Percent: 5}}, Parallelism: 1}, wantErr: "both count and percent"},
		{name: "neither count nor percent", policy: WavePolicy{Waves: []WaveSize{{Count: 1}, {}}, Parallelism: 1}, wantErr: "wave size 2 sets neither"},
		{name: "percent above 100", policy: WavePolicy{Waves: []WaveSize{{Percent: 101}}, Parallelism: 1}, wantErr: "above 100%"},
		{name: "negative count", policy: WavePolicy{Waves: []WaveSize{{Count: -1}}, Parallelism: 1}, wantErr: "negative"},
		{name: "parallelism zero", policy: WavePolicy{Waves: count(1)}, wantErr: "parallelism 0 is below 1"},
		{name: "bad selector", policy: WavePolicy{Waves: count(1), Parallelism: 1, Ordering: Ordering{Last: []string{"=x"}}}, wantErr: `ordering entry "=x"`},
		{name: "empty ordering entry", policy: WavePolicy{Waves: count(1), Parallelism: 1, Ordering: Ordering{First: []string{""}}}, wantErr: `ordering entry ""`},
		{name: "all policy errors at once", policy: WavePolicy{}, wantErr: "below 1"},
		{name: "duplicate candidate", cands: []Candidate{dep("a", "x"), dep("a", "x")}, policy: WavePolicy{Waves: count(1), Parallelism: 1}, wantErr: "listed twice"},
		{name: "incomplete ref", cands: []Candidate{{Ref: WorkloadRef{Kind: "Deployment", Name: "x"}, Restartable: true}}, policy: WavePolicy{Waves: count(1), Parallelism: 1}, wantErr: "are required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.cands)
			got, err := PlanWaves(tt.cands, tt.policy)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "failed to ") {
					t.Errorf("err = %q, want the failed-to convention", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if diff := cmp.Diff(tt.want, waveStrings(got)); diff != "" {
				t.Errorf("waves (-want +got):\n%s", diff)
			}
			for i, w := range got.Waves {
				if w.Index != i+1 {
					t.Errorf("wave %d has Index %d", i, w.Index)
				}
			}
			if got.Parallelism != tt.policy.Parallelism {
				t.Errorf("Parallelism = %d, want %d", got.Parallelism, tt.policy.Parallelism)
			}
			if len(got.Skipped) != len(tt.wantSkipped) {
				t.Fatalf("skipped = %v, want %v", got.Skipped, tt.wantSkipped)
			}
			for i, s := range got.Skipped {
				refStr, reason, _ := strings.Cut(tt.wantSkipped[i], ": ")
				if s.Ref.String() != refStr || !strings.Contains(s.Reason, reason) {
					t.Errorf("skipped[%d] = %s (%q), want %s with %q", i, s.Ref, s.Reason, refStr, reason)
				}
			}
			if diff := cmp.Diff(in, tt.cands); diff != "" {
				t.Errorf("PlanWaves mutated its input (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPlanWavesPercentSizes(t *testing.T) {
	pct := func(p ...int) []WaveSize {
		var out []WaveSize
		for _, v := range p {
			out = append(out, WaveSize{Percent: v})
		}
		return out
	}
	tests := []struct {
		name  string
		n     int
		sizes []WaveSize
		want  []int
	}{
		{name: "7 at 10% rounds up to 1 and repeats", n: 7, sizes: pct(10), want: []int{1, 1, 1, 1, 1, 1, 1}},
		{name: "7 at 25% is 2 per wave", n: 7, sizes: pct(25), want: []int{2, 2, 2, 1}},
		{name: "7 at 65% is 5 then the rest", n: 7, sizes: pct(65), want: []int{5, 2}},
		{name: "7 at 10 25 65", n: 7, sizes: pct(10, 25, 65), want: []int{1, 2, 4}},
		{name: "1000 at 10 25 65", n: 1000, sizes: pct(10, 25, 65), want: []int{100, 250, 650}},
		{name: "1000 at 65%", n: 1000, sizes: pct(65), want: []int{650, 350}},
		{name: "1000 at 25%", n: 1000, sizes: pct(25), want: []int{250, 250, 250, 250}},
		{name: "1 at 1% is at least one", n: 1, sizes: pct(1), want: []int{1}},
		{name: "3 at 100%", n: 3, sizes: pct(100), want: []int{3}},
		{name: "count then percent", n: 10, sizes: []WaveSize{{Count: 1}, {Percent: 50}}, want: []int{1, 5, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanWaves(many(tt.n), WavePolicy{Waves: tt.sizes, Parallelism: 3})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, waveSizes(got)); diff != "" {
				t.Errorf("wave sizes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanWavesDeterministic(t *testing.T) {
	cands := many(500)
	for i := range cands {
		if i%7 == 0 {
			cands[i] = labelled(cands[i], "tier", "critical")
		}
		if i%11 == 0 {
			cands[i].Restartable = false
		}
	}
	policy := WavePolicy{Waves: []WaveSize{{Count: 3}, {Percent: 20}}, Parallelism: 4,
		Ordering: Ordering{First: []string{"ns-03"}, Last: []string{"tier=critical"}}}
	want, err := PlanWaves(cands, policy)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(cands)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		got, err := PlanWaves(shuffled, policy)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("plan depends on input order (-first +shuffled):\n%s", diff)
		}
	}
	// Every movable candidate is placed exactly once; first and last groups bracket the rest.
	var all []WorkloadRef
	for _, w := range want.Waves {
		all = append(all, w.Workloads...)
	}
	if len(all)+len(want.Skipped) != len(cands) {
		t.Errorf("placed %d + skipped %d, want %d", len(all), len(want.Skipped), len(cands))
	}
	if all[0].Namespace != "ns-03" {
		t.Errorf("first workload %s is not in the canary namespace", all[0])
	}
	critical := 0
	for _, c := range cands {
		if c.Restartable && c.Labels["tier"] == "critical" {
			critical++
		}
	}
	for _, r := range all[len(all)-critical:] {
		var n int
		if _, err := fmt.Sscanf(r.Name, "app-%d", &n); err != nil || n%7 != 0 {
			t.Errorf("%s is in the last group but is not critical", r)
		}
	}
}

func TestWavePlanJSON(t *testing.T) {
	p, err := PlanWaves([]Candidate{dep("a", "x"), stuck("Job", "a", "j", "")}, WavePolicy{Waves: []WaveSize{{Count: 1}}, Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"waves":[{"index":1,"workloads":[{"kind":"Deployment","namespace":"a","name":"x"}]}]`, `"parallelism":2`, `"restartable":false`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back WavePlan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, back); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	d, _ := json.Marshal(Decision{Action: ActionDone})
	if strings.Contains(string(d), "notBefore") {
		t.Errorf("zero NotBefore is serialised: %s", d)
	}
}

func TestNext(t *testing.T) {
	// Three waves: [a b c] [d e] [f], parallelism 2.
	plan := WavePlan{Parallelism: 2, Waves: []Wave{
		{Index: 1, Workloads: []WorkloadRef{ref("n", "a"), ref("n", "b"), ref("n", "c")}},
		{Index: 2, Workloads: []WorkloadRef{ref("n", "d"), ref("n", "e")}},
		{Index: 3, Workloads: []WorkloadRef{ref("n", "f")}},
	}, Skipped: []Candidate{stuck("Job", "n", "j", "")}}
	now := time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)
	ok, fail, pend := OutcomeSucceeded, OutcomeFailed, OutcomePending
	done := func(kv ...any) Progress {
		p := Progress{Done: map[string]Outcome{}}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Done[ref("n", kv[i].(string)).String()] = kv[i+1].(Outcome)
		}
		return p
	}
	wave1 := []any{"a", ok, "b", ok, "c", ok}
	wave12 := append(append([]any{}, wave1...), "d", ok, "e", ok)
	all := append(append([]any{}, wave12...), "f", ok)
	names := func(ns ...string) []WorkloadRef {
		var out []WorkloadRef
		for _, n := range ns {
			out = append(out, ref("n", n))
		}
		return out
	}
	passed := func(at time.Time, waves ...int) map[int]WaveGate {
		m := map[int]WaveGate{}
		for _, w := range waves {
			m[w] = WaveGate{Passed: at, Baked: true}
		}
		return m
	}
	long := now.Add(-time.Hour)
	tests := []struct {
		name      string
		plan      *WavePlan // nil means plan
		prog      Progress
		gates     map[int]WaveGate
		auto      bool
		last      time.Time
		pause     time.Duration
		bake      time.Duration
		want      Decision
		reasonHas []string
	}{
		{name: "fresh run records a window and migrates up to parallelism of wave 1", prog: done(),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a", "b"), Record: names("a", "b")}, reasonHas: []string{"2 of 3"}},
		{name: "nil progress map behaves like fresh", prog: Progress{},
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a", "b"), Record: names("a", "b")}},
		{name: "rest of wave 1 needs its own record", prog: done("a", ok, "b", ok),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("c"), Record: names("c")}, reasonHas: []string{"1 of 1"}},
		{name: "recorded window starts without a new record", prog: done("a", pend, "b", pend),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a", "b")}},
		{name: "in-flight workload is handed out again first, next window recorded", prog: done("a", ok, "b", pend),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("b", "c"), Record: names("c")}},
		{name: "unknown outcome counts as unfinished", prog: done("a", Outcome("weird"), "b", ok, "c", ok),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a")}},
		{name: "gate after wave 1", prog: done(wave1...),
			want: Decision{Action: ActionGate, Wave: 1, Workloads: names("a", "b", "c")}, reasonHas: []string{"before wave 2 starts"}},
		{name: "gate failing keeps asking for the gate", prog: done(wave1...), gates: map[int]WaveGate{1: {}},
			want: Decision{Action: ActionGate, Wave: 1, Workloads: names("a", "b", "c")}},
		{name: "pause after gate passed", prog: done(wave1...), gates: passed(long, 1),
			last: now.Add(-time.Minute), pause: 5 * time.Minute,
			want: Decision{Action: ActionPause, Wave: 2, NotBefore: now.Add(4 * time.Minute)}, reasonHas: []string{"5m0s", "waves 1 and 2"}},
		{name: "pause ends exactly at NotBefore", prog: done(wave1...), gates: passed(long, 1),
			last: now.Add(-5 * time.Minute), pause: 5 * time.Minute,
			want: Decision{Action: ActionMigrate, Wave: 2, Workloads: names("d", "e"), Record: names("d", "e")}},
		{name: "zero lastWaveDone means no pause", prog: done(wave1...), gates: passed(long, 1), pause: time.Hour,
			want: Decision{Action: ActionMigrate, Wave: 2, Workloads: names("d", "e"), Record: names("d", "e")}},
		{name: "no pause once the wave has started", prog: done(append(append([]any{}, wave1...), "d", ok)...), gates: passed(long, 1),
			last: now, pause: time.Hour,
			want: Decision{Action: ActionMigrate, Wave: 2, Workloads: names("e"), Record: names("e")}},
		{name: "no pause before wave 1", prog: done(), last: now, pause: time.Hour,
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a", "b"), Record: names("a", "b")}},
		{name: "gate checked before pause", prog: done(wave12...), gates: passed(long, 1),
			last: now, pause: time.Hour,
			want: Decision{Action: ActionGate, Wave: 2, Workloads: names("d", "e")}},
		{name: "last wave", prog: done(wave12...), gates: passed(long, 1, 2),
			want: Decision{Action: ActionMigrate, Wave: 3, Workloads: names("f"), Record: names("f")}},
		{name: "the last wave is gated too", prog: done(all...), gates: passed(long, 1, 2),
			want: Decision{Action: ActionGate, Wave: 3, Workloads: names("f")}, reasonHas: []string{"before the run ends"}},
		{name: "no pause after the last wave", prog: done(all...), gates: passed(long, 1, 2, 3), last: now, pause: time.Hour,
			want: Decision{Action: ActionDone}},
		{name: "bake after the gates pass", prog: done(wave1...), gates: map[int]WaveGate{1: {Passed: now.Add(-time.Minute)}}, bake: 10 * time.Minute,
			want: Decision{Action: ActionBake, Wave: 1, NotBefore: now.Add(9 * time.Minute)}, reasonHas: []string{"baking 10m0s", "before wave 2 starts"}},
		{name: "gates again at the end of the bake", prog: done(wave1...), gates: map[int]WaveGate{1: {Passed: now.Add(-10 * time.Minute)}}, bake: 10 * time.Minute,
			want: Decision{Action: ActionGate, Wave: 1, Workloads: names("a", "b", "c"), AfterBake: true}},
		{name: "baked wave lets the next one start", prog: done(wave1...), gates: map[int]WaveGate{1: {Passed: long, Baked: true}}, bake: 10 * time.Minute,
			want: Decision{Action: ActionMigrate, Wave: 2, Workloads: names("d", "e"), Record: names("d", "e")}},
		{name: "the last wave bakes before done", prog: done(all...), gates: map[int]WaveGate{1: {Passed: long, Baked: true}, 2: {Passed: long, Baked: true}, 3: {Passed: now}},
			bake: time.Minute,
			want: Decision{Action: ActionBake, Wave: 3, NotBefore: now.Add(time.Minute)}, reasonHas: []string{"before the run ends"}},
		{name: "the last wave is gated after its bake", prog: done(all...), gates: map[int]WaveGate{1: {Passed: long, Baked: true}, 2: {Passed: long, Baked: true}, 3: {Passed: long}},
			bake: time.Minute,
			want: Decision{Action: ActionGate, Wave: 3, Workloads: names("f"), AfterBake: true}},
		{name: "done", prog: done(all...), gates: passed(long, 1, 2, 3), bake: time.Minute,
			want: Decision{Action: ActionDone}, reasonHas: []string{"all 3 wave(s)", "1 skipped workload(s) need manual action"}},
		{name: "empty plan is done", plan: &WavePlan{}, prog: done(),
			want: Decision{Action: ActionDone}},
		{name: "zero parallelism in a hand-made plan moves one at a time", plan: &WavePlan{Waves: plan.Waves}, prog: done(),
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a"), Record: names("a")}},
		{name: "failure halts without auto rollback", prog: done("a", ok, "b", fail),
			want: Decision{Action: ActionHalt, Wave: 1, Workloads: names("b")}, reasonHas: []string{"Deployment n/b", "rollback is off"}},
		{name: "failure halts even when a gate and pause are due", prog: done(append(append([]any{}, wave1...), "d", fail)...), last: now, pause: time.Hour,
			want: Decision{Action: ActionHalt, Wave: 2, Workloads: names("d")}},
		{name: "halt names every failed workload", prog: done("a", fail, "b", ok, "c", fail),
			want: Decision{Action: ActionHalt, Wave: 1, Workloads: names("a", "c")}, reasonHas: []string{"Deployment n/a, Deployment n/c"}},
		{name: "auto rollback in reverse migration order", prog: done(append(append([]any{}, wave1...), "d", ok, "e", fail)...), auto: true,
			gates: passed(long, 1),
			want:  Decision{Action: ActionRollback, Wave: 2, Workloads: names("e", "d", "c", "b", "a")}, reasonHas: []string{"wave 2 failed", "5 workload(s)"}},
		{name: "auto rollback includes in-flight workloads, skips untouched", prog: done("a", ok, "b", fail, "c", pend), auto: true,
			want: Decision{Action: ActionRollback, Wave: 1, Workloads: names("c", "b", "a")}},
		{name: "progress for workloads outside the plan is ignored", prog: Progress{Done: map[string]Outcome{"Deployment other/x": OutcomeFailed}},
			want: Decision{Action: ActionMigrate, Wave: 1, Workloads: names("a", "b"), Record: names("a", "b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := plan
			if tt.plan != nil {
				p = *tt.plan
			}
			got := Next(p, State{Progress: tt.prog, Gates: tt.gates, RollbackAuto: tt.auto, LastWaveDone: tt.last, Pause: tt.pause, Bake: tt.bake}, now)
			reason := got.Reason
			got.Reason = ""
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Next (-want +got):\n%s", diff)
			}
			if reason == "" {
				t.Error("empty Reason")
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(reason, s) {
					t.Errorf("Reason %q lacks %q", reason, s)
				}
			}
		})
	}
}

// TestDefect1LastWaveGatedAndBaked pins issue 9 defect 1: with a single
// wave (--waves 100%) the run used to be "done" the moment the wave
// migrated, with no gate at all and no bake before prune. Every wave, the
// last included, must be gated, baked and gated again before "done".
func TestDefect1LastWaveGatedAndBaked(t *testing.T) {
	p, err := PlanWaves(many(5), WavePolicy{Waves: []WaveSize{{Percent: 100}}, Parallelism: 5})
	if err != nil {
		t.Fatal(err)
	}
	prog := Progress{Done: map[string]Outcome{}}
	for _, r := range p.Waves[0].Workloads {
		prog.Done[r.String()] = OutcomeSucceeded
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := State{Progress: prog, Bake: 5 * time.Minute, Gates: map[int]WaveGate{}}
	want := []struct {
		action    string
		afterBake bool
	}{{ActionGate, false}, {ActionBake, false}, {ActionGate, true}, {ActionDone, false}}
	for i, w := range want {
		d := Next(p, s, now)
		if d.Action != w.action || d.AfterBake != w.afterBake {
			t.Fatalf("step %d: Next = %s (afterBake %v), want %s (afterBake %v): %s", i, d.Action, d.AfterBake, w.action, w.afterBake, d.Reason)
		}
		switch {
		case d.Action == ActionGate && !d.AfterBake:
			s.Gates[1] = WaveGate{Passed: now}
		case d.Action == ActionBake:
			if got := d.NotBefore.Sub(now); got != 5*time.Minute {
				t.Fatalf("bake ends after %s, want 5m", got)
			}
			now = d.NotBefore
		case d.Action == ActionGate:
			s.Gates[1] = WaveGate{Passed: s.Gates[1].Passed, Baked: true}
		}
	}
}

func TestNextDoesNotAliasPlan(t *testing.T) {
	p := WavePlan{Parallelism: 5, Waves: []Wave{{Index: 1, Workloads: []WorkloadRef{ref("n", "a")}}}}
	d := Next(p, State{}, time.Time{})
	d.Workloads[0].Name = "changed"
	d.Record[0].Name = "changed too"
	if p.Waves[0].Workloads[0].Name != "a" {
		t.Error("Decision.Workloads or Decision.Record aliases the plan")
	}
}

func TestHaltReasonCapsLongLists(t *testing.T) {
	p := WavePlan{Parallelism: 1, Waves: []Wave{{Index: 1}}}
	prog := Progress{Done: map[string]Outcome{}}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		p.Waves[0].Workloads = append(p.Waves[0].Workloads, ref("n", n))
		prog.Done[ref("n", n).String()] = OutcomeFailed
	}
	d := Next(p, State{Progress: prog}, time.Time{})
	if !strings.Contains(d.Reason, "and 2 more") || len(d.Workloads) != 7 {
		t.Errorf("Decision = %+v, want 7 workloads and a capped reason", d)
	}
}

// TestMigrationRunsToCompletion drives Next like an engine would, checking
// that a plan of 1,000 workloads finishes with every workload migrated once,
// never more than Parallelism at a time, every workload recorded before it
// is handed out, one record per window, and every wave (the last included)
// gated, baked and gated again.
func TestMigrationRunsToCompletion(t *testing.T) {
	const parallel = 7
	p, err := PlanWaves(many(1000), WavePolicy{Waves: []WaveSize{{Percent: 10}, {Percent: 25}, {Percent: 65}}, Parallelism: parallel})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := State{Progress: Progress{Done: map[string]Outcome{}}, Gates: map[int]WaveGate{}, RollbackAuto: true, Pause: time.Minute, Bake: 2 * time.Minute}
	steps := map[string]int{}
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("migration did not finish")
		}
		d := Next(p, s, now)
		steps[d.Action]++
		switch d.Action {
		case ActionMigrate:
			if len(d.Workloads) > parallel || len(d.Record) > parallel {
				t.Fatalf("batch of %d, record of %d exceed parallelism", len(d.Workloads), len(d.Record))
			}
			for _, r := range d.Record {
				if _, seen := s.Progress.Done[r.String()]; seen {
					t.Fatalf("%s recorded twice", r)
				}
				s.Progress.Done[r.String()] = OutcomePending
			}
			if len(d.Record) > 0 {
				steps["record"]++
			}
			// Only the first workload finishes: the window's others stay
			// in flight, as they would in an engine.
			r := d.Workloads[0]
			if o := s.Progress.Done[r.String()]; o != OutcomePending {
				t.Fatalf("%s handed out with outcome %q, want a recorded intent", r, o)
			}
			s.Progress.Done[r.String()] = OutcomeSucceeded
		case ActionGate:
			g := s.Gates[d.Wave]
			if d.AfterBake {
				g.Baked = true
				s.LastWaveDone = now
			} else {
				g.Passed = now
			}
			s.Gates[d.Wave] = g
		case ActionPause, ActionBake:
			now = d.NotBefore
		case ActionDone:
			if len(s.Progress.Done) != 1000 {
				t.Fatalf("done after %d workloads", len(s.Progress.Done))
			}
			// 100, 250 and 650 workloads: a record per window of 7.
			if diff := cmp.Diff(map[string]int{ActionMigrate: 1000, "record": 15 + 36 + 93, ActionGate: 6, ActionBake: 3, ActionPause: 2, ActionDone: 1}, steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			return
		default:
			t.Fatalf("unexpected %+v", d)
		}
	}
}

func BenchmarkPlanWaves(b *testing.B) {
	cands := many(10000)
	for i := range cands {
		if i%5 == 0 {
			cands[i] = labelled(cands[i], "tier", "critical")
		}
		if i%97 == 0 {
			cands[i].Restartable = false
		}
	}
	policy := WavePolicy{Waves: []WaveSize{{Count: 10}, {Percent: 10}, {Percent: 25}}, Parallelism: 20,
		Ordering: Ordering{First: []string{"ns-01", "stage=canary"}, Last: []string{"tier=critical", "ns-09"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PlanWaves(cands, policy); err != nil {
			b.Fatal(err)
		}
	}
}
