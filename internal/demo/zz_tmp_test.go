package demo

import (
	"context"
	"testing"
	"time"
)

func TestTmpScale5000(t *testing.T) {
	c := sandboxClient(t)
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	rep, err := SeedScale(ctx, c, ScaleOptions{Prefix: "big", Namespaces: 20, Workloads: 500, Pods: 10, Revision: "1-23-2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	for i := 0; i < 10; i++ {
		n, ph := countBySet(ctx, t, c, "big")
		t.Logf("t+%ds: %d pods %v", i*5, n, ph)
		time.Sleep(5 * time.Second)
	}
}
