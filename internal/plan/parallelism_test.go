package plan

import "testing"

func TestDefaultParallelismScalesWithTheMesh(t *testing.T) {
	for _, tc := range []struct{ workloads, want int }{
		{0, 20}, {1, 20}, {400, 20}, {500, 20}, {501, 21},
		{1000, 40}, {2000, 80}, {2500, 100}, {20000, 100},
	} {
		if got := DefaultParallelism(tc.workloads); got != tc.want {
			t.Errorf("DefaultParallelism(%d) = %d, want %d", tc.workloads, got, tc.want)
		}
	}
}
