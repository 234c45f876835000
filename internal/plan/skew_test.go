package plan

import "testing"

func TestSkew(t *testing.T) {
	tests := []struct {
		proxy, cp string
		want      SkewLevel
		behind    int
	}{
		{"1.23.2", "1.23.2", SkewNone, 0},
		{"1.23.1", "1.23.2", SkewNone, 0},
		{"1.23.2-distroless", "1.23.2", SkewNone, 0},
		{"1.22.1", "1.23.2", SkewBehind, 1},
		{"1.21.3", "1.23.2", SkewBehind, 2},
		{"1.20.0", "1.23.2", SkewUnsupported, 3},
		{"1.24.0", "1.23.2", SkewUnsupported, -1},
		{"1.23.3", "1.23.2", SkewUnsupported, 0},
		{"1.24-dev", "1.24.0", SkewNone, 0},
		{"1.24.0", "1.24-dev", SkewUnsupported, 0},
		{"2.0.0", "1.23.2", SkewUnsupported, -1000},
		{"1.23.2", "2.0.0", SkewUnsupported, 1000},
	}
	for _, tt := range tests {
		got := Skew(MustParseVersion(tt.proxy), MustParseVersion(tt.cp))
		if got.Level != tt.want || got.MinorsBehind != tt.behind {
			t.Errorf("Skew(%s, %s) = %+v, want level %s behind %d", tt.proxy, tt.cp, got, tt.want, tt.behind)
		}
		if got.Reason == "" {
			t.Errorf("Skew(%s, %s) has no reason", tt.proxy, tt.cp)
		}
		if got.Supported() != (tt.want != SkewUnsupported) {
			t.Errorf("Skew(%s, %s).Supported() = %v", tt.proxy, tt.cp, got.Supported())
		}
	}
}
