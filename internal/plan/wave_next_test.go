package plan

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
