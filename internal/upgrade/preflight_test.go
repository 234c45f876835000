package upgrade

import (
	"strings"
	"testing"

	"github.com/meshroll/meshroll/internal/inventory"
)

func TestDefect9CheckOrdering(t *testing.T) {
	nsl := map[string]map[string]string{"shop": {"tier": "critical"}, "canary": nil}
	tests := []struct {
		entries []string
		want    []string // substrings of the error; nil means none
	}{
		{entries: nil},
		{entries: []string{"shop", "canary", "tier=critical"}},
		{entries: []string{"shpo"}, want: []string{`"shpo" matches no namespace`}},
		{entries: []string{"tier=crtical", "shop", "nope"}, want: []string{`"tier=crtical"`, `"nope"`}},
	}
	for _, tc := range tests {
		err := CheckOrdering(tc.entries, nsl)
		if (err != nil) != (tc.want != nil) {
			t.Errorf("CheckOrdering(%q) = %v, want an error: %v", tc.entries, err, tc.want != nil)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CheckOrdering(%q) = %v, lacks %q", tc.entries, err, w)
			}
		}
	}
}

func TestDefect9CheckExcluded(t *testing.T) {
	s := &inventory.Snapshot{Workloads: []inventory.Workload{{Kind: "Deployment", Namespace: "shop", Name: "web"}}}
	if err := CheckExcluded([]string{"Deployment shop/web"}, s); err != nil {
		t.Errorf("an existing workload is refused: %v", err)
	}
	err := CheckExcluded([]string{"Deployment shop/web", "Deployment shop/wbe", "StatefulSet shop/web"}, s)
	if err == nil || !strings.Contains(err.Error(), `"Deployment shop/wbe"`) || !strings.Contains(err.Error(), `"StatefulSet shop/web"`) {
		t.Errorf("CheckExcluded = %v, want both unknown workloads named", err)
	}
}
