package gate

import (
	"math"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		op        string
		v, thresh float64
		want, ok  bool
	}{
		{"<", 1, 2, true, true},
		{"<", 2, 2, false, true},
		{"<=", 2, 2, true, true},
		{">", 3, 2, true, true},
		{">", 2, 2, false, true},
		{">=", 2, 2, true, true},
		{"==", 2, 2, true, true},
		{"==", 2, 3, false, true},
		{"!=", 2, 3, true, true},
		{"!=", 2, 2, false, true},
		{"!=", nan, 2, false, true}, // NaN measured nothing, even for !=
		{"<", nan, 2, false, true},
		{"=<", 1, 2, false, false},
		{"", 1, 2, false, false},
	}
	for _, tt := range tests {
		got, ok := compare(tt.op, tt.v, tt.thresh)
		if got != tt.want || ok != tt.ok {
			t.Errorf("compare(%q, %v, %v) = %v, %v; want %v, %v", tt.op, tt.v, tt.thresh, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"0.01", 0.01, false},
		{"1", 1, false},
		{"-2.5", -2.5, false},
		{".5", 0.5, false},
		{"1e5", 100000, false},
		{"268435456", 268435456, false},
		{"", 0, true},
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"0x10", 0, true},
		{"1_000", 0, true},
		{"1%", 0, true},
		{" 1", 0, true},
	}
	for _, tt := range tests {
		got, err := parseDecimal(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseDecimal(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{0.18333, "0.1833"},
		{268435456, "268435456"},
		{1.5, "1.5"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.in); got != tt.want {
			t.Errorf("formatValue(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestJudge(t *testing.T) {
	nan := math.NaN()
	lt := criterion{op: "<", threshold: 0.01, raw: "0.01", passNoData: true}
	ltStrict := lt
	ltStrict.passNoData = false
	query := "sum(rate(x[1m]))\n  / sum(rate(y[1m]))"
	tests := []struct {
		name     string
		c        criterion
		samples  []sample
		want     bool
		evidence string
	}{
		{
			name:     "one series passes",
			c:        lt,
			samples:  []sample{{"{}", 0.002}},
			want:     true,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])) = 0.002 (want < 0.01) → pass",
		},
		{
			name:     "one series fails with the measured value",
			c:        lt,
			samples:  []sample{{"{}", 0.183}},
			want:     false,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])) = 0.183 (want < 0.01) → fail",
		},
		{
			name:     "no series, onNoData Pass",
			c:        lt,
			want:     true,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])): no series; onNoData=Pass → pass",
		},
		{
			name:     "no series, onNoData Fail",
			c:        ltStrict,
			want:     false,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])): no series; onNoData=Fail → fail",
		},
		{
			name:     "only NaN is no data",
			c:        lt,
			samples:  []sample{{"{}", nan}},
			want:     true,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])): only NaN (no traffic to measure); onNoData=Pass → pass",
		},
		{
			name:     "only NaN with onNoData Fail",
			c:        ltStrict,
			samples:  []sample{{`{a="1"}`, nan}, {`{a="2"}`, nan}},
			want:     false,
			evidence: "sum(rate(x[1m])) / sum(rate(y[1m])): only NaN (no traffic to measure); onNoData=Fail → fail",
		},
		{
			name:     "NaN next to numbers fails",
			c:        lt,
			samples:  []sample{{`{a="1"}`, 0.001}, {`{a="2"}`, nan}},
			want:     false,
			evidence: `sum(rate(x[1m])) / sum(rate(y[1m])): 1 of 2 series fail (want < 0.01): {a="2"} = NaN → fail`,
		},
		{
			name:     "every series must pass",
			c:        lt,
			samples:  []sample{{`{a="1"}`, 0.001}, {`{a="2"}`, 0.5}, {`{a="3"}`, 0.005}},
			want:     false,
			evidence: `sum(rate(x[1m])) / sum(rate(y[1m])): 1 of 3 series fail (want < 0.01): {a="2"} = 0.5 → fail`,
		},
		{
			name:     "all series pass shows the range",
			c:        lt,
			samples:  []sample{{`{a="1"}`, 0.001}, {`{a="2"}`, 0.003}},
			want:     true,
			evidence: `sum(rate(x[1m])) / sum(rate(y[1m])): all 2 series in [0.001, 0.003] (want < 0.01) → pass`,
		},
		{
			name: "many failing series are cut short",
			c:    criterion{op: "<=", threshold: 0, raw: "0"},
			samples: []sample{
				{`{a="5"}`, 5}, {`{a="4"}`, 4}, {`{a="3"}`, 3}, {`{a="2"}`, 2}, {`{a="1"}`, 1},
			},
			want:     false,
			evidence: `sum(rate(x[1m])) / sum(rate(y[1m])): 5 of 5 series fail (want <= 0): {a="1"} = 1, {a="2"} = 2, {a="3"} = 3, … 2 more → fail`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := judge("5xx", query, tt.c, tt.samples)
			if v.Passed != tt.want || v.Evidence != tt.evidence {
				t.Errorf("judge() = %v, %q\nwant       %v, %q", v.Passed, v.Evidence, tt.want, tt.evidence)
			}
			if v.Name != "5xx" || len(v.Values) != len(tt.samples) {
				t.Errorf("judge() name %q values %v; want name 5xx and %d values", v.Name, v.Values, len(tt.samples))
			}
			if strings.Contains(v.Evidence, "\n") {
				t.Errorf("evidence spans lines: %q", v.Evidence)
			}
		})
	}
}
