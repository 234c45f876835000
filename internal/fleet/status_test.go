package fleet

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCollectSlowAndFailingMembersAreRows: a member that errors and one that
// outlives its timeout become rows with their error; the others are read,
// and no more than Concurrency readers run at once.
func TestCollectSlowAndFailingMembersAreRows(t *testing.T) {
	var running, peak atomic.Int32
	read := func(ctx context.Context, c Cluster, _ time.Time) ClusterStatus {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		switch c.Name {
		case "slow":
			<-ctx.Done()
			return ClusterStatus{Error: ctx.Err().Error()}
		case "broken":
			return ClusterStatus{Error: "connection refused"}
		}
		time.Sleep(20 * time.Millisecond)
		return ClusterStatus{Skew: "ok"}
	}
	var cs []Cluster
	for _, n := range []string{"a", "b", "slow", "c", "broken", "d"} {
		cs = append(cs, Cluster{Name: n, Source: "test " + n})
	}
	rows := Collect(t.Context(), cs, read, ReadOptions{Timeout: 300 * time.Millisecond, Concurrency: 2})
	if len(rows) != len(cs) {
		t.Fatalf("%d rows, want %d", len(rows), len(cs))
	}
	for i, r := range rows {
		if r.Name != cs[i].Name {
			t.Errorf("row %d is %q, want %q (input order)", i, r.Name, cs[i].Name)
		}
		switch r.Name {
		case "slow":
			if !strings.Contains(r.Error, "no answer within 300ms") {
				t.Errorf("slow row error = %q", r.Error)
			}
		case "broken":
			if r.Error != "connection refused" {
				t.Errorf("broken row error = %q", r.Error)
			}
		default:
			if r.Error != "" || r.Skew != "ok" {
				t.Errorf("row %s = %+v", r.Name, r)
			}
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d readers ran at once, limit 2", p)
	}
}
