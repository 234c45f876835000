package sandbox

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// parseStages splits generated stages into name → stage.
func parseStages(t *testing.T, b []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range bytes.Split(b, []byte("---\n")) {
		var s map[string]any
		if err := yaml.Unmarshal(doc, &s); err != nil {
			t.Fatalf("generated stages do not parse: %v\n%s", err, doc)
		}
		if len(s) > 0 {
			out[stageName(s)] = s
		}
	}
	return out
}

func stageField(s map[string]any, keys ...string) any {
	var v any = s
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// appOperator is the operator of the stage's app=istiod selector term.
func appOperator(s map[string]any) string {
	exprs, _ := stageField(s, "spec", "selector", "matchExpressions").([]any)
	for _, e := range exprs {
		if m, _ := e.(map[string]any); m["key"] == ".metadata.labels.app" {
			op, _ := m["operator"].(string)
			return op
		}
	}
	return ""
}

func TestPodStagesDelayEveryPodButIstiod(t *testing.T) {
	d := PodStartDelay{Min: 5 * time.Second, Max: 15 * time.Second}
	for _, mode := range []string{IstiodReal, "stand-in"} {
		t.Run(mode, func(t *testing.T) {
			b, err := podStages(mode, d)
			if err != nil {
				t.Fatal(err)
			}
			stages := parseStages(t, b)
			ready := stages[stagePodReady]
			if ready == nil {
				t.Fatalf("no %s stage in:\n%s", stagePodReady, b)
			}
			if got := stageField(ready, "spec", "delay", "durationMilliseconds"); got != float64(5000) {
				t.Errorf("pod-ready delay = %v, want 5000 ms", got)
			}
			if got := stageField(ready, "spec", "delay", "jitterDurationMilliseconds"); got != float64(15000) {
				t.Errorf("pod-ready jitter bound = %v, want 15000 ms", got)
			}
			if op := appOperator(ready); op != "NotIn" {
				t.Errorf("pod-ready app=istiod operator = %q, want NotIn (istiod pods are not delayed)", op)
			}
			for name, s := range stages {
				if name != stagePodReady && stageField(s, "spec", "delay") != nil {
					t.Errorf("stage %s is delayed too", name)
				}
			}
			_, process := stages[stageStartProcess]
			istiod := stages[stageIstiodReady]
			if mode == IstiodReal {
				// The real-mode semantics stay: istiod pods Running, not Ready, until the runner says so.
				if !process || istiod != nil {
					t.Errorf("real mode: %s present %v, %s present %v; want the first only", stageStartProcess, process, stageIstiodReady, istiod != nil)
				}
				if !strings.Contains(string(b), `status: "False"`) {
					t.Errorf("real mode lost the not-Ready istiod status template:\n%s", b)
				}
				return
			}
			if process || istiod == nil || appOperator(istiod) != "In" {
				t.Errorf("stand-in: %s present %v, %s = %v; want only an undelayed Ready stage for app In [istiod]", stageStartProcess, process, stageIstiodReady, istiod)
			}
		})
	}
}

func TestPodStartDelayJitterBelowMinIsNoJitter(t *testing.T) {
	b, err := podStages(IstiodReal, PodStartDelay{Min: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ready := parseStages(t, b)[stagePodReady]
	if got := stageField(ready, "spec", "delay", "jitterDurationMilliseconds"); got != float64(2000) {
		t.Errorf("jitter bound = %v, want 2000 ms (Max below Min means Min)", got)
	}
	if s := (PodStartDelay{Min: 2 * time.Second}).String(); s != "2s" {
		t.Errorf("String = %q, want 2s", s)
	}
	if s := (PodStartDelay{Min: 5 * time.Second, Max: 15 * time.Second}); s.String() != "5s-15s" || s.Mean() != 10*time.Second {
		t.Errorf("String, Mean = %q, %s; want 5s-15s, 10s", s.String(), s.Mean())
	}
}

func TestWithStageDelay(t *testing.T) {
	dir := t.TempDir()
	comps := []component{{name: nameKwok, args: []string{"--cidr=10.244.0.0/24", "--config=" + kwokStagesPath(dir)}}, {name: "etcd", args: []string{"x"}},
		{name: nameKCM, args: []string{"--kubeconfig=k"}}}
	same, err := withStageDelay(comps, dir, IstiodReal, PodStartDelay{})
	if err != nil || !slices.Equal(same[0].args, comps[0].args) || !slices.Equal(same[2].args, comps[2].args) {
		t.Fatalf("zero delay changed kwok's or the controller-manager's args: %v, %v, %v", same[0].args, same[2].args, err)
	}
	got, err := withStageDelay(comps, dir, IstiodReal, PodStartDelay{Min: time.Second, Max: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--cidr=10.244.0.0/24", "--config=" + delayedStagesPath(dir)}
	if !slices.Equal(got[0].args, want) || !slices.Equal(got[1].args, comps[1].args) {
		t.Errorf("args = %v / %v, want kwok %v and etcd untouched", got[0].args, got[1].args, want)
	}
	if wantKCM := append([]string{"--kubeconfig=k"}, kcmConcurrency()...); !slices.Equal(got[2].args, wantKCM) {
		t.Errorf("controller-manager args = %v, want %v (a delayed sandbox gets a large cluster's workers)", got[2].args, wantKCM)
	}
	if !slices.Equal(comps[0].args, []string{"--cidr=10.244.0.0/24", "--config=" + kwokStagesPath(dir)}) || len(comps[2].args) != 1 {
		t.Errorf("input was modified: %v", comps[0].args)
	}
	if b, err := os.ReadFile(delayedStagesPath(dir)); err != nil || !bytes.Contains(b, []byte("jitterDurationMilliseconds: 3000")) {
		t.Errorf("delayed stages file: %v\n%s", err, b)
	}
	if _, err := withStageDelay(comps, dir, IstiodReal, PodStartDelay{Min: -time.Second}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative delay: err = %v, want a refusal naming it", err)
	}
}
