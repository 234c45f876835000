package gate

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// OnNoData values; an empty OnNoData means Pass, as the CRD default does, so
// a gate written without it behaves the same from the CLI and the cluster.
const (
	OnNoDataPass = "Pass"
	OnNoDataFail = "Fail"
)

// ValidateSpec checks everything about a gate that can be checked without a
// server, so `meshroll upgrade` and the admission path reject a broken gate
// before the first wave moves. It returns an *InvalidError listing every
// problem, or nil. Whether the PromQL parses is checked by
// (*Prometheus).Validate, which needs a server.
func ValidateSpec(g v1alpha1.Gate) error {
	var problems []string
	if g.Name == "" {
		problems = append(problems, "name is empty")
	}
	switch {
	case g.Prometheus == nil && g.Probe == nil:
		problems = append(problems, "neither prometheus nor probe is set; set exactly one")
	case g.Prometheus != nil && g.Probe != nil:
		problems = append(problems, "both prometheus and probe are set; set exactly one")
	case g.Prometheus != nil:
		_, bad := parseCriterion(*g.Prometheus)
		problems = append(problems, bad...)
	default:
		problems = append(problems, probeProblems(*g.Probe)...)
	}
	problems = append(problems, policyProblems(g)...)
	if len(problems) > 0 {
		return &InvalidError{Gate: g.Name, Problems: problems}
	}
	return nil
}

// parseCriterion parses the comparison part of a Prometheus gate and returns
// every problem found, so callers can fold them into one *InvalidError.
func parseCriterion(g v1alpha1.PrometheusGate) (criterion, []string) {
	var problems []string
	if strings.TrimSpace(g.Query) == "" {
		problems = append(problems, "query is empty")
	}
	if !validOp(g.Op) {
		problems = append(problems, fmt.Sprintf("op %q is not one of %s", g.Op, strings.Join(Ops(), ", ")))
	}
	threshold, err := parseDecimal(g.Threshold)
	if err != nil {
		problems = append(problems, "threshold "+err.Error())
	}
	pass := true
	switch g.OnNoData {
	case "", OnNoDataPass:
	case OnNoDataFail:
		pass = false
	default:
		problems = append(problems, fmt.Sprintf("onNoData %q is not %s or %s", g.OnNoData, OnNoDataPass, OnNoDataFail))
	}
	if len(problems) > 0 {
		return criterion{}, problems
	}
	return criterion{op: g.Op, threshold: threshold, raw: g.Threshold, passNoData: pass}, nil
}

// probeProblems lists what is wrong with a probe spec.
func probeProblems(p v1alpha1.ProbeGate) []string {
	var problems []string
	if err := checkHTTPURL(p.URL); err != nil {
		problems = append(problems, "url "+err.Error())
	}
	if p.QPS < 0 {
		problems = append(problems, fmt.Sprintf("qps %d is negative", p.QPS))
	}
	if p.Duration.Duration < 0 {
		problems = append(problems, fmt.Sprintf("duration %s is negative", p.Duration.Duration))
	}
	if p.Connections < 0 {
		problems = append(problems, fmt.Sprintf("connections %d is negative", p.Connections))
	}
	if _, err := parseMaxErrorPercent(p.MaxErrorPercent); err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

// parseMaxErrorPercent reads MaxErrorPercent; empty means 0, any error fails.
func parseMaxErrorPercent(s string) (float64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("maxErrorPercent %w", err)
	}
	if v < 0 || v > 100 {
		return 0, fmt.Errorf("maxErrorPercent %s is outside 0..100", s)
	}
	return v, nil
}

// checkHTTPURL accepts only absolute http(s) URLs with a host: a relative or
// schemeless URL would be resolved differently by Fortio and by Prometheus'
// client and silently probe the wrong thing.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q does not parse: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an absolute http or https URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// policyProblems checks what a gate does with measurement errors and failed
// checks; empty fields take the CRD defaults (Retry, threshold 1, 10s).
func policyProblems(g v1alpha1.Gate) []string {
	var problems []string
	switch g.OnError {
	case "", v1alpha1.GateOnErrorRetry, v1alpha1.GateOnErrorFail:
	default:
		problems = append(problems, fmt.Sprintf("onError %q is not %s or %s", g.OnError, v1alpha1.GateOnErrorRetry, v1alpha1.GateOnErrorFail))
	}
	if g.FailureThreshold < 0 {
		problems = append(problems, fmt.Sprintf("failureThreshold %d is negative", g.FailureThreshold))
	}
	if g.Interval.Duration < 0 {
		problems = append(problems, fmt.Sprintf("interval %s is negative", g.Interval.Duration))
	}
	return problems
}
