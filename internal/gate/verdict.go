package gate

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Verdict is the outcome of one gate evaluation. It is what the engine
// records in the MeshUpgrade status and prints in reports, so Evidence must
// make sense to someone who never saw the query.
type Verdict struct {
	// Name is the gate's name from the spec.
	Name string `json:"name"`
	// Passed is true when the next wave may start.
	Passed bool `json:"passed"`
	// Evidence is one human line: what was measured, what was wanted, and
	// the outcome.
	Evidence string `json:"evidence"`
	// Values holds the measured numbers keyed by series (Prometheus: the
	// series' label set, "scalar" for a scalar) or by measure (probe:
	// "requests", "errorPercent", "p50Seconds", "p99Seconds", "code/<n>"),
	// so reports and tests need not parse Evidence.
	Values map[string]float64 `json:"values,omitempty"`
}

// InvalidError says a gate spec can never be evaluated as written, so the
// engine halts for the operator instead of retrying.
type InvalidError struct {
	// Gate is the gate's name.
	Gate string
	// Problems lists every problem found, each a short sentence.
	Problems []string
}

// Error lists every problem on one line so a CLI can show it as is.
func (e *InvalidError) Error() string {
	return fmt.Sprintf("gate %q: %s", e.Gate, strings.Join(e.Problems, "; "))
}

// Ops lists the comparison operators a PrometheusGate accepts, in the order
// they are documented.
func Ops() []string {
	return []string{"<", "<=", ">", ">=", "==", "!="}
}

// compare applies op; ok is false for an unknown op. NaN never compares true,
// not even with "!=", because a NaN sample measured nothing.
func compare(op string, v, threshold float64) (result, ok bool) {
	if math.IsNaN(v) {
		return false, validOp(op)
	}
	switch op {
	case "<":
		return v < threshold, true
	case "<=":
		return v <= threshold, true
	case ">":
		return v > threshold, true
	case ">=":
		return v >= threshold, true
	case "==":
		return v == threshold, true
	case "!=":
		return v != threshold, true
	}
	return false, false
}

func validOp(op string) bool {
	_, ok := compare(op, 0, 0)
	return ok
}

// decimalPattern accepts plain decimals with an optional exponent and
// rejects what strconv.ParseFloat would also take but nobody means in a
// threshold: NaN, Inf, hex floats, underscores.
var decimalPattern = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`)

// parseDecimal parses a threshold or a percentage as written in a spec.
func parseDecimal(s string) (float64, error) {
	if !decimalPattern.MatchString(s) {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number: %w", s, err)
	}
	return v, nil
}

// formatValue prints integers without exponent (byte counts, series counts)
// and everything else with four significant digits, short enough for one line.
func formatValue(v float64) string {
	if !math.IsNaN(v) && !math.IsInf(v, 0) && v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// oneLine collapses whitespace so a multi-line query fits in Evidence.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// sample is one series of an instant query result, reduced to what judging
// needs.
type sample struct {
	key   string
	value float64
}

// criterion is a parsed PrometheusGate comparison.
type criterion struct {
	op         string
	threshold  float64
	raw        string // threshold as written, echoed in Evidence
	passNoData bool
}

func (c criterion) want() string { return c.op + " " + c.raw }

// maxListed bounds how many failing series Evidence names, so one line stays
// one line when a query returns hundreds of series.
const maxListed = 3

// judge turns the samples of one query into a Verdict. It is pure so every
// rule (every series must pass, NaN handling, no data) is table-tested
// without a server.
func judge(name, query string, c criterion, samples []sample) Verdict {
	q := oneLine(query)
	v := Verdict{Name: name, Values: make(map[string]float64, len(samples))}
	var failing []sample
	nan := 0
	for _, s := range samples {
		v.Values[s.key] = s.value
		if math.IsNaN(s.value) {
			nan++
		}
		if ok, _ := compare(c.op, s.value, c.threshold); !ok {
			failing = append(failing, s)
		}
	}
	if len(samples) == 0 || nan == len(samples) {
		what := "no series"
		if len(samples) > 0 {
			what = "only NaN (no traffic to measure)"
		}
		v.Passed = c.passNoData
		v.Evidence = fmt.Sprintf("%s: %s; onNoData=%s → %s", q, what, onNoDataName(c.passNoData), outcome(v.Passed))
		return v
	}
	v.Passed = len(failing) == 0
	if len(samples) == 1 {
		v.Evidence = fmt.Sprintf("%s = %s (want %s) → %s", q, formatValue(samples[0].value), c.want(), outcome(v.Passed))
		return v
	}
	if v.Passed {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range samples {
			lo, hi = math.Min(lo, s.value), math.Max(hi, s.value)
		}
		v.Evidence = fmt.Sprintf("%s: all %d series in [%s, %s] (want %s) → pass",
			q, len(samples), formatValue(lo), formatValue(hi), c.want())
		return v
	}
	sort.Slice(failing, func(i, j int) bool { return failing[i].key < failing[j].key })
	var listed []string
	for i, s := range failing {
		if i == maxListed {
			listed = append(listed, fmt.Sprintf("… %d more", len(failing)-maxListed))
			break
		}
		listed = append(listed, s.key+" = "+formatValue(s.value))
	}
	v.Evidence = fmt.Sprintf("%s: %d of %d series fail (want %s): %s → fail",
		q, len(failing), len(samples), c.want(), strings.Join(listed, ", "))
	return v
}

func outcome(passed bool) string {
	if passed {
		return "pass"
	}
	return "fail"
}

func onNoDataName(pass bool) string {
	if pass {
		return "Pass"
	}
	return "Fail"
}
