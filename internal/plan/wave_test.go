package plan

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

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
