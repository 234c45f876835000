package webhook

import (
	"fmt"
	"sync"
	"testing"
)

func TestTableAssigned(t *testing.T) {
	var zero Table
	if _, ok := zero.Assigned("up", "Deployment", "a", "b"); ok || zero.Len() != 0 {
		t.Error("zero Table assigns something")
	}
	src := map[Key]string{
		{Upgrade: "up", Kind: "Deployment", Namespace: "shop", Name: "web"}: "1-24-2",
		{Upgrade: "up", Kind: "CronJob", Namespace: "shop", Name: "web"}:    "1-23-2",
		{Upgrade: "up", Kind: "Deployment", Namespace: "shop", Name: "gap"}: "",
	}
	tab := NewTable()
	tab.Replace(src)
	src[Key{Upgrade: "up", Kind: "Deployment", Namespace: "shop", Name: "late"}] = "9-9-9" // after Replace: must not leak in
	tests := []struct {
		up, kind, ns, name string
		want               string
		wantOK             bool
	}{
		{"up", "Deployment", "shop", "web", "1-24-2", true},
		{"up", "CronJob", "shop", "web", "1-23-2", true},
		{"other-upgrade", "Deployment", "shop", "web", "", false},
		{"up", "StatefulSet", "shop", "web", "", false},
		{"up", "Deployment", "other", "web", "", false},
		{"up", "Deployment", "shop", "gap", "", false},
		{"up", "Deployment", "shop", "late", "", false},
	}
	for _, tt := range tests {
		got, ok := tab.Assigned(tt.up, tt.kind, tt.ns, tt.name)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("Assigned(%s, %s, %s, %s) = %q, %v; want %q, %v", tt.up, tt.kind, tt.ns, tt.name, got, ok, tt.want, tt.wantOK)
		}
	}
	if tab.Len() != 3 {
		t.Errorf("Len() = %d, want 3", tab.Len())
	}
	tab.Replace(nil)
	if _, ok := tab.Assigned("up", "Deployment", "shop", "web"); ok || tab.Len() != 0 {
		t.Error("Replace(nil) kept assignments")
	}
}

// TestTableConcurrent is for -race: lookups run while Replace swaps tables,
// and every lookup sees some complete table (both keys carry one value per
// table, written before the swap).
func TestTableConcurrent(t *testing.T) {
	tab := NewTable()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if rev, ok := tab.Assigned("", "Deployment", "ns", "a"); ok && len(rev) != len("rev-0") {
					t.Errorf("Assigned() = %q", rev)
					return
				}
			}
		})
	}
	for i := range 500 {
		m := map[Key]string{}
		for j := range 50 {
			m[Key{Kind: "Deployment", Namespace: "ns", Name: fmt.Sprint("w", j)}] = fmt.Sprint("rev-", i%10)
		}
		m[Key{Kind: "Deployment", Namespace: "ns", Name: "a"}] = fmt.Sprint("rev-", i%10)
		tab.Replace(m)
	}
	close(stop)
	wg.Wait()
}
