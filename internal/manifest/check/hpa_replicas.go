package check

import "fmt"

// hpaReplicas reports HorizontalPodAutoscalers whose bounds are impossible
// (minReplicas > maxReplicas, maxReplicas < 1): the API server rejects them,
// or the workload is pinned to a size nobody meant.
type hpaReplicas struct{}

// Name implements Checker.
func (hpaReplicas) Name() string { return "hpa-replicas" }

// Code implements Checker.
func (hpaReplicas) Code() string { return "MV017" }

// Run implements Checker.
func (c hpaReplicas) Run(in *Input) []Finding {
	var out []Finding
	for _, u := range in.Objects {
		if !is(u, "autoscaling", "HorizontalPodAutoscaler") {
			continue
		}
		spec, _ := u.Object["spec"].(map[string]any)
		min, max := int64(1), int64(0)
		if v, ok := spec["minReplicas"]; ok && v != nil {
			min = toInt(v)
		}
		if v, ok := spec["maxReplicas"]; ok && v != nil {
			max = toInt(v)
		}
		switch {
		case max < 1:
			out = append(out, finding(c, Error, ref(u), fmt.Sprintf("maxReplicas is %d", max), "set maxReplicas to at least 1"))
		case min > max:
			out = append(out, finding(c, Error, ref(u), fmt.Sprintf("minReplicas %d > maxReplicas %d", min, max),
				"check autoscaleMin/autoscaleMax in the chart values"))
		case min == max:
			out = append(out, finding(c, Info, ref(u), fmt.Sprintf("minReplicas equals maxReplicas (%d): the HPA never scales", min),
				"widen the range or drop the HPA and set replicas"))
		}
	}
	return out
}
