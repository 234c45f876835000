package sandbox

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestRangeBlocks(t *testing.T) {
	got, err := rangeBlocks("10.244.64.0/18")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.244.64.0/20", "10.244.80.0/20", "10.244.96.0/20", "10.244.112.0/20"}
	var names []string
	for _, b := range got {
		names = append(names, b.String())
	}
	if !slices.Equal(names, want) {
		t.Errorf("blocks = %v, want %v", names, want)
	}
	if _, err := rangeBlocks("10.0.0.1/31"); err == nil {
		t.Error("a /31 split in four blocks: want an error")
	}
}

func TestRoutedPodRangesInsideSupernet(t *testing.T) {
	super := netip.MustParsePrefix(podSupernet)
	std := netip.MustParsePrefix(unroutedPodRange)
	for i, r := range RoutedPodRanges() {
		p := netip.MustParsePrefix(r)
		for _, o := range RoutedPodRanges()[i+1:] {
			if p.Overlaps(netip.MustParsePrefix(o)) {
				t.Errorf("routed ranges %s and %s overlap", r, o)
			}
		}
		if !super.Contains(p.Addr()) || p.Bits() < super.Bits() {
			t.Errorf("routed range %s leaves %s", r, podSupernet)
		}
		if p.Overlaps(std) {
			t.Errorf("routed range %s overlaps the stand-in range %s", r, unroutedPodRange)
		}
	}
}

func TestNextKwokBlock(t *testing.T) {
	const rng = "10.244.64.0/18"
	for _, tc := range []struct {
		name         string
		prev         string
		live         []netip.Addr
		clearOutside bool
		block        string
		clear        []netip.Addr
	}{
		{name: "fresh sandbox takes the first block", block: "10.244.64.0/20"},
		{name: "restart moves to the next block", prev: "10.244.64.0/20", live: addrs("10.244.64.0", "10.244.64.7"), block: "10.244.80.0/20"},
		{name: "a block with live pods is skipped", prev: "10.244.64.0/20", live: addrs("10.244.64.1", "10.244.80.3"), block: "10.244.96.0/20"},
		{name: "wraps to a free block", prev: "10.244.112.0/20", live: addrs("10.244.112.1"), block: "10.244.64.0/20"},
		{
			name: "every block taken: the next one is cleared", prev: "10.244.64.0/20",
			live:  addrs("10.244.64.1", "10.244.80.1", "10.244.80.2", "10.244.96.1", "10.244.112.1"),
			block: "10.244.80.0/20", clear: addrs("10.244.80.1", "10.244.80.2"),
		},
		{
			name: "addresses outside a routed range are cleared", live: addrs("10.244.0.5", "10.244.64.1"), clearOutside: true,
			block: "10.244.80.0/20", clear: addrs("10.244.0.5"),
		},
		{name: "outside addresses stay in an unrouted range", live: addrs("10.244.0.5"), block: "10.244.64.0/20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := nextKwokBlock(rng, tc.prev, tc.live, tc.clearOutside)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Block != tc.block || !slices.Equal(plan.Clear, tc.clear) {
				t.Errorf("plan = %+v, want block %s clear %v", plan, tc.block, tc.clear)
			}
		})
	}
}

func TestClaimFileName(t *testing.T) {
	if got := claimFile("10.244.64.0/18"); !slices.Contains([]string{"10.244.64.0_18"}, got[len(got)-len("10.244.64.0_18"):]) {
		t.Errorf("claimFile = %q", got)
	}
}

// TestSetupPodRangeWithoutRouteFailsClearly: with no CAP_NET_ADMIN the
// sandbox cannot run istiod, and says what is missing and how to get it.
func TestSetupPodRangeWithoutRouteFailsClearly(t *testing.T) {
	st := &State{Dir: t.TempDir(), Ports: map[string]int{}}
	_, err := setupPodRange(t.Context(), io.Discard, st, false, noCap)
	if err == nil || !strings.Contains(err.Error(), "CAP_NET_ADMIN") || !strings.Contains(err.Error(), "setcap") ||
		!strings.Contains(err.Error(), "real istiod") {
		t.Errorf("err = %v; want one message naming CAP_NET_ADMIN, how to get it and why istiod needs it", err)
	}
	if st.PodRouted {
		t.Errorf("state %+v: routed without a route", st)
	}
}

// TestSetupPodRangeFallsBackToNoIstiod: when the caller allows it, a host
// without the capability gets a sandbox with no istiod, saying why.
func TestSetupPodRangeFallsBackToNoIstiod(t *testing.T) {
	st := &State{Dir: t.TempDir(), Ports: map[string]int{}}
	var out strings.Builder
	mode, err := setupPodRange(t.Context(), &out, st, true, noCap)
	if err != nil {
		t.Fatal(err)
	}
	if mode != IstiodNone || st.PodRange != unroutedPodRange || st.PodRouted {
		t.Errorf("mode %q, state %+v: want no istiod on the unrouted range", mode, st)
	}
	if !strings.Contains(out.String(), "CAP_NET_ADMIN") || !strings.Contains(st.IstiodNote, "no istiod") {
		t.Errorf("fallback not explained: out %q, note %q", out.String(), st.IstiodNote)
	}
}

func noCap(context.Context, string, string) (string, error) {
	return "", fmt.Errorf("%w: this process lacks CAP_NET_ADMIN (run as root, or grant it with `setcap cap_net_admin+ep`)", errNoRoute)
}

func TestSetupPodRangeKeepsItsRange(t *testing.T) {
	st := &State{Dir: t.TempDir(), Ports: map[string]int{}, PodRange: "10.244.128.0/19"}
	var preferred string
	claim := func(_ context.Context, _, prefer string) (string, error) { preferred = prefer; return prefer, nil }
	mode, err := setupPodRange(t.Context(), io.Discard, st, false, claim)
	if err != nil {
		t.Fatal(err)
	}
	if mode != IstiodReal || preferred != "10.244.128.0/19" || st.PodRange != preferred || !st.PodRouted {
		t.Errorf("mode %q, preferred %q, state %+v", mode, preferred, st)
	}
	if st.IstiodNote != "" {
		t.Errorf("note %q on success", st.IstiodNote)
	}
}

// TestParseClaimNamesTheClaimer pins the fix of a race seen in CI: a range
// claimed by a sandbox still starting (its state not saved yet) was taken
// over by a second sandbox, and the first one's down removed the second's
// route. A claim now names the claiming process, live while it runs.
func TestParseClaimNamesTheClaimer(t *testing.T) {
	dir, pid := parseClaim([]byte("/tmp/sb\n4242"))
	if dir != "/tmp/sb" || pid != 4242 {
		t.Errorf("parseClaim = %q, %d", dir, pid)
	}
	if dir, pid := parseClaim([]byte("/tmp/old")); dir != "/tmp/old" || pid != 0 {
		t.Errorf("parseClaim of a claim without pid = %q, %d", dir, pid)
	}
}
