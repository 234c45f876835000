package gate

import (
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

func TestValidateSpec(t *testing.T) {
	prom := func(op, threshold, onNoData string) *v1alpha1.PrometheusGate {
		return &v1alpha1.PrometheusGate{Query: "up", Op: op, Threshold: threshold, OnNoData: onNoData}
	}
	tests := []struct {
		name string
		gate v1alpha1.Gate
		want []string // substrings of the error; none means valid
	}{
		{"valid prometheus", v1alpha1.Gate{Name: "g", Prometheus: prom("<", "0.01", "")}, nil},
		{"valid prometheus onNoData Fail", v1alpha1.Gate{Name: "g", Prometheus: prom(">=", "1", "Fail")}, nil},
		{"valid probe", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{
			URL: "https://shop.example/healthz", QPS: 5, Duration: metav1.Duration{Duration: time.Second}, MaxErrorPercent: "0.5",
		}}, nil},
		{"neither", v1alpha1.Gate{Name: "g"}, []string{`gate "g"`, "neither prometheus nor probe"}},
		{"both", v1alpha1.Gate{Name: "g", Prometheus: prom("<", "1", ""), Probe: &v1alpha1.ProbeGate{URL: "http://a"}},
			[]string{"both prometheus and probe"}},
		{"no name", v1alpha1.Gate{Prometheus: prom("<", "1", "")}, []string{"name is empty"}},
		{"bad op and threshold together", v1alpha1.Gate{Name: "g", Prometheus: prom("=<", "1%", "")},
			[]string{`op "=<" is not one of <, <=, >, >=, ==, !=`, `threshold "1%" is not a decimal number`}},
		{"empty query", v1alpha1.Gate{Name: "g", Prometheus: &v1alpha1.PrometheusGate{Query: " ", Op: "<", Threshold: "1"}},
			[]string{"query is empty"}},
		{"bad onNoData", v1alpha1.Gate{Name: "g", Prometheus: prom("<", "1", "pass")}, []string{`onNoData "pass"`}},
		{"relative url", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{URL: "/healthz"}},
			[]string{`url "/healthz" is not an absolute http or https URL`}},
		{"tcp url", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{URL: "tcp://a:1"}}, []string{"not an absolute http"}},
		{"no host", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{URL: "http:///x"}}, []string{"has no host"}},
		{"negative numbers", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{
			URL: "http://a", QPS: -1, Connections: -2, Duration: metav1.Duration{Duration: -time.Second},
		}}, []string{"qps -1 is negative", "connections -2 is negative", "duration -1s is negative"}},
		{"percent not a number", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{URL: "http://a", MaxErrorPercent: "5%"}},
			[]string{`maxErrorPercent "5%" is not a decimal number`}},
		{"percent above 100", v1alpha1.Gate{Name: "g", Probe: &v1alpha1.ProbeGate{URL: "http://a", MaxErrorPercent: "101"}},
			[]string{"maxErrorPercent 101 is outside 0..100"}},
		{"valid error policy and threshold", v1alpha1.Gate{Name: "g", Prometheus: prom("<", "1", ""), OnError: "Fail", FailureThreshold: 3,
			Interval: metav1.Duration{Duration: 30 * time.Second}}, nil},
		{"bad error policy and threshold", v1alpha1.Gate{Name: "g", Prometheus: prom("<", "1", ""), OnError: "retry", FailureThreshold: -1,
			Interval: metav1.Duration{Duration: -time.Second}}, []string{`onError "retry" is not Retry or Fail`, "failureThreshold -1 is negative", "interval -1s is negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSpec(tt.gate)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ValidateSpec() = %v; want nil", err)
				}
				return
			}
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("ValidateSpec() = %v; want an *InvalidError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ValidateSpec() = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}
