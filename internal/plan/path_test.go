package plan

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestPlanPath(t *testing.T) {
	const (
		noPath  = "nopath"
		invalid = "invalid"
	)
	tests := []struct {
		name      string
		from      []string
		proxies   []string
		to        string
		strategy  Strategy
		available []string // nil means renderable
		allowDown bool
		want      []string // "from>to kind"
		wantErr   string   // noPath, invalid or ""
		errHas    string
		noteHas   []string
		reasonHas []string // substrings expected in the joined hop reasons
	}{
		// Nothing or little to do.
		{name: "same version", from: []string{"1.26.1"}, proxies: []string{"1.26.1"}, to: "1.26.1",
			noteHas: []string{"already at 1.26.1"}},
		{name: "same version without proxies", from: []string{"1.26.1"}, to: "1.26.1",
			noteHas: []string{"already at 1.26.1"}},
		{name: "control plane at target, proxies on older patch", from: []string{"1.26.1"}, proxies: []string{"1.26.0", "1.26.1"}, to: "1.26.1",
			want: []string{"1.26.0>1.26.1 dataplane"}, reasonHas: []string{"no control plane changes"}},
		{name: "patch only", from: []string{"1.24.0"}, proxies: []string{"1.24.0"}, to: "1.24.2",
			want: []string{"1.24.0>1.24.2 patch"}},
		{name: "patch from a cluster patch meshroll cannot render", from: []string{"1.24.1"}, to: "1.24.2",
			want: []string{"1.24.1>1.24.2 patch"}},
		{name: "patch downgrade is allowed and flagged", from: []string{"1.24.2"}, proxies: []string{"1.24.2"}, to: "1.24.0",
			want: []string{"1.24.2>1.24.0 patch-downgrade"}, noteHas: []string{"flag:", "patch downgrade"}},

		// Minor hops and strategies.
		{name: "one minor canary", from: []string{"1.23.2"}, to: "1.24.2",
			want: []string{"1.23.2>1.24.2 minor"}, reasonHas: []string{"new revision"}},
		{name: "one minor in-place to an older patch of the next minor", from: []string{"1.23.2"}, to: "1.24.0", strategy: StrategyInPlace,
			want: []string{"1.23.2>1.24.0 minor"}, reasonHas: []string{"in place", "one minor at a time"}},
		{name: "skip one minor canary", from: []string{"1.23.2"}, proxies: []string{"1.23.2"}, to: "1.25.1",
			want: []string{"1.23.2>1.25.1 skip-minor"}, reasonHas: []string{"skips 1.24", "two minors"}},
		{name: "empty strategy means canary", from: []string{"1.23.2"}, to: "1.25.1", strategy: "",
			want: []string{"1.23.2>1.25.1 skip-minor"}, noteHas: []string{"strategy canary"}},
		{name: "skip one minor in-place takes two hops", from: []string{"1.23.2"}, to: "1.25.1", strategy: StrategyInPlace,
			want: []string{"1.23.2>1.24.2 minor", "1.24.2>1.25.1 minor"}, reasonHas: []string{"1.24.2 is the newest renderable patch of 1.24"}},
		{name: "three minors canary jumps furthest first", from: []string{"1.23.2"}, to: "1.26.1",
			want: []string{"1.23.2>1.25.1 skip-minor", "1.25.1>1.26.1 minor"}},
		{name: "three minors in-place", from: []string{"1.23.2"}, to: "1.26.1", strategy: StrategyInPlace,
			want: []string{"1.23.2>1.24.2 minor", "1.24.2>1.25.1 minor", "1.25.1>1.26.1 minor"}},
		{name: "four minors canary", from: []string{"1.22.1"}, to: "1.26.1",
			want: []string{"1.22.1>1.24.2 skip-minor", "1.24.2>1.26.1 skip-minor"}},
		{name: "whole catalogue canary", from: []string{"1.21.2"}, to: "1.29.1",
			want: []string{"1.21.2>1.23.2 skip-minor", "1.23.2>1.25.1 skip-minor", "1.25.1>1.27.9 skip-minor", "1.27.9>1.29.1 skip-minor"}},
		{name: "start older than every renderable release", from: []string{"1.19.0"}, to: "1.22.1",
			want: []string{"1.19.0>1.21.3 skip-minor", "1.21.3>1.22.1 minor"}},

		// Availability.
		{name: "target not available", from: []string{"1.23.2"}, to: "1.26.3",
			wantErr: noPath, errHas: "1.26.3 is not a release meshroll can render"},
		{name: "intermediate minor missing in-place", from: []string{"1.23.2"}, to: "1.25.1", strategy: StrategyInPlace,
			available: without("1.24.0", "1.24.2"), wantErr: noPath, errHas: "no renderable release exists for 1.24"},
		{name: "intermediate minor missing canary skips it", from: []string{"1.23.2"}, to: "1.26.1",
			available: without("1.25.1"), want: []string{"1.23.2>1.24.2 minor", "1.24.2>1.26.1 skip-minor"}},
		{name: "two consecutive minors missing canary", from: []string{"1.22.1"}, to: "1.26.1",
			available: without("1.23.2", "1.24.0", "1.24.2"), wantErr: noPath, errHas: "1.23 or 1.24"},
		{name: "pre-release never an intermediate hop", from: []string{"1.23.2"}, to: "1.25.1", strategy: StrategyInPlace,
			available: with("1.24.3-rc.0"), want: []string{"1.23.2>1.24.2 minor", "1.24.2>1.25.1 minor"}},
		{name: "pre-release target", from: []string{"1.29.1"}, to: "1.30.0-alpha.1",
			available: with("1.30.0-alpha.1"), want: []string{"1.29.1>1.30.0-alpha.1 minor"}, noteHas: []string{"pre-release"}},
		{name: "pre-release control plane", from: []string{"1.24-dev"}, proxies: []string{"1.24-dev"}, to: "1.24.0",
			want: []string{"1.24.0-dev>1.24.0 patch"}},
		{name: "unsorted duplicate available list", from: []string{"1.23.2"}, to: "1.26.1", strategy: StrategyInPlace,
			available: []string{"1.26.1", "1.24.2", "1.23.2", "1.24.0", "1.25.1", "1.24.2", "1.26.1", "1.24.0"},
			want:      []string{"1.23.2>1.24.2 minor", "1.24.2>1.25.1 minor", "1.25.1>1.26.1 minor"}},

		// Downgrades.
		{name: "downgrade across minors refused", from: []string{"1.26.1"}, to: "1.25.1",
			wantErr: noPath, errHas: "refuses downgrades"},
		{name: "downgrade across minors allowed walks one minor at a time", from: []string{"1.26.1"}, proxies: []string{"1.26.1"}, to: "1.24.2", allowDown: true,
			want: []string{"1.26.1>1.25.1 minor-downgrade", "1.25.1>1.24.2 minor-downgrade"}, noteHas: []string{"explicitly allowed", "ahead"}},
		{name: "allowed downgrade with a missing minor", from: []string{"1.26.1"}, to: "1.24.2", allowDown: true,
			available: without("1.25.1"), wantErr: noPath, errHas: "1.25"},

		// Mixed starting points.
		{name: "lagging proxy constrains the first hop", from: []string{"1.23.2"}, proxies: []string{"1.22.1", "1.23.2"}, to: "1.26.1",
			want:      []string{"1.23.2>1.24.2 minor", "1.24.2>1.26.1 skip-minor"},
			reasonHas: []string{"stops at 1.24 because proxies on 1.22.1"}},
		{name: "proxies at n-2 move first under canary", from: []string{"1.23.2"}, proxies: []string{"1.23.2", "1.21.3"}, to: "1.25.1",
			want: []string{"1.21.3>1.23.2 dataplane", "1.23.2>1.25.1 skip-minor"}},
		{name: "proxies at n-2 move first in-place", from: []string{"1.23.2"}, proxies: []string{"1.21.3"}, to: "1.24.2", strategy: StrategyInPlace,
			want: []string{"1.21.3>1.23.2 dataplane", "1.23.2>1.24.2 minor"}},
		{name: "proxies at n-1 in-place do not need to move first", from: []string{"1.23.2"}, proxies: []string{"1.22.1"}, to: "1.24.2", strategy: StrategyInPlace,
			want: []string{"1.23.2>1.24.2 minor"}},
		{name: "proxies beyond supported skew are restarted", from: []string{"1.23.2"}, proxies: []string{"1.20.0"}, to: "1.23.2",
			want: []string{"1.20.0>1.23.2 dataplane"}, reasonHas: []string{"already outside"}},
		{name: "proxies beyond supported skew before a patch hop", from: []string{"1.24.0"}, proxies: []string{"1.21.2"}, to: "1.24.2",
			want: []string{"1.21.2>1.24.0 dataplane", "1.24.0>1.24.2 patch"}},
		{name: "proxy newer than control plane", from: []string{"1.23.2"}, proxies: []string{"1.24.0"}, to: "1.25.1",
			wantErr: invalid, errHas: "ahead of every installed control plane"},
		{name: "proxy on a newer patch than control plane", from: []string{"1.24.0"}, proxies: []string{"1.24.2"}, to: "1.25.1",
			wantErr: invalid, errHas: "1.24.2 is ahead"},
		{name: "proxy on another major", from: []string{"1.24.0"}, proxies: []string{"0.8.0"}, to: "1.25.1",
			wantErr: invalid, errHas: "major"},
		{name: "proxy of the newer of two control planes is valid", from: []string{"1.23.2", "1.24.2"}, proxies: []string{"1.23.2", "1.24.2"}, to: "1.25.1",
			want: []string{"1.23.2>1.25.1 skip-minor"}, noteHas: []string{"removes control plane(s) 1.24.2"}},
		{name: "migrate onto a target revision already installed", from: []string{"1.26.1", "1.25.1"}, proxies: []string{"1.24.2"}, to: "1.26.1",
			want: []string{"1.25.1>1.26.1 minor"}, noteHas: []string{"1.26.1 is already installed"}},
		{name: "mixed control planes with a flagged patch downgrade", from: []string{"1.25.1", "1.26.1"}, to: "1.26.0",
			want: []string{"1.25.1>1.26.0 minor"}, noteHas: []string{"flag: control plane(s) 1.26.1 go down to patch 1.26.0"}},
		{name: "control planes straddle the target", from: []string{"1.23.2", "1.27.9"}, to: "1.25.1", allowDown: true,
			wantErr: noPath, errHas: "straddle"},
		{name: "control planes too far apart in-place", from: []string{"1.23.2", "1.25.1"}, to: "1.26.1", strategy: StrategyInPlace,
			wantErr: noPath, errHas: "2 minors apart"},
		{name: "control plane on an unrenderable newer patch blocks in-place", from: []string{"1.23.2", "1.24.5"}, to: "1.25.1", strategy: StrategyInPlace,
			wantErr: noPath, errHas: "1.24.5 runs a patch newer"},
		{name: "control plane on an unrenderable newer patch is skipped by canary", from: []string{"1.23.2", "1.24.5"}, to: "1.25.1",
			want: []string{"1.23.2>1.25.1 skip-minor"}},

		// Refusals of the request itself.
		{name: "major version change refused", from: []string{"1.29.1"}, to: "2.0.0", available: with("2.0.0"),
			wantErr: noPath, errHas: "major"},
		{name: "unknown strategy", from: []string{"1.23.2"}, to: "1.24.2", strategy: "bluegreen",
			wantErr: invalid, errHas: "unknown strategy"},
		{name: "no control plane", to: "1.24.2", wantErr: invalid, errHas: "no installed control plane"},
		{name: "no available releases", from: []string{"1.23.2"}, to: "1.24.2", available: []string{},
			wantErr: invalid, errHas: "no renderable releases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			avail := tt.available
			if avail == nil {
				avail = renderable
			}
			req := PathRequest{
				From: vs(tt.from...), Proxies: vs(tt.proxies...), To: MustParseVersion(tt.to),
				Strategy: tt.strategy, Available: vs(avail...), AllowDowngrade: tt.allowDown,
			}
			got, err := PlanPath(req)
			switch tt.wantErr {
			case noPath:
				var e *NoPathError
				if !errors.As(err, &e) {
					t.Fatalf("PlanPath() error = %v, want *NoPathError", err)
				}
			case invalid:
				var e *InvalidPathRequestError
				if !errors.As(err, &e) {
					t.Fatalf("PlanPath() error = %v, want *InvalidPathRequestError", err)
				}
			default:
				if err != nil {
					t.Fatalf("PlanPath() error = %v\nrequest %+v", err, req)
				}
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
				return
			}
			var hops []string
			var reasons []string
			for _, h := range got.Hops {
				hops = append(hops, fmt.Sprintf("%s>%s %s", h.From, h.To, h.Kind))
				reasons = append(reasons, h.Reason)
				if h.Reason == "" {
					t.Errorf("hop %s>%s has no reason", h.From, h.To)
				}
			}
			if !slices.Equal(hops, tt.want) {
				t.Errorf("hops = %q, want %q\n%s", hops, tt.want, got)
			}
			notes := strings.Join(got.Notes, "\n")
			for _, n := range tt.noteHas {
				if !strings.Contains(notes, n) {
					t.Errorf("notes do not mention %q:\n%s", n, notes)
				}
			}
			allReasons := strings.Join(reasons, "\n")
			for _, r := range tt.reasonHas {
				if !strings.Contains(allReasons, r) {
					t.Errorf("reasons do not mention %q:\n%s", r, allReasons)
				}
			}
		})
	}
}

// TestPlanPathInvariants plans every (from, to, strategy) pair over the
// renderable releases and checks each path against the rules independently
// of how PlanPath found it, and its length against a breadth-first search.
func TestPlanPathInvariants(t *testing.T) {
	avail := vs(renderable...)
	for _, strategy := range []Strategy{StrategyCanary, StrategyInPlace} {
		reach := strategy.maxMinorsPerHop()
		for _, from := range avail {
			for _, to := range avail {
				got, err := PlanPath(PathRequest{From: []Version{from}, Proxies: []Version{from}, To: to, Strategy: strategy, Available: avail})
				name := fmt.Sprintf("%s %s->%s", strategy, from, to)
				if from.Minor > to.Minor {
					var e *NoPathError
					if !errors.As(err, &e) {
						t.Errorf("%s: error = %v, want a refused downgrade", name, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: unexpected error %v", name, err)
					continue
				}
				if want := shortestHops(avail, from, to, reach); len(got.Hops) != want {
					t.Errorf("%s: %d hops, shortest is %d\n%s", name, len(got.Hops), want, got)
				}
				cur := from
				for i, h := range got.Hops {
					if h.From.Compare(cur) != 0 {
						t.Errorf("%s: hop %d starts at %s, previous ended at %s", name, i, h.From, cur)
					}
					if d := h.To.Minor - h.From.Minor; d > reach || h.To.Compare(h.From) == 0 {
						t.Errorf("%s: hop %s->%s crosses %d minors, reach %d", name, h.From, h.To, d, reach)
					}
					if !slices.ContainsFunc(avail, func(v Version) bool { return v.Compare(h.To) == 0 }) {
						t.Errorf("%s: hop lands on unavailable %s", name, h.To)
					}
					if i < len(got.Hops)-1 {
						if newest, _ := (&pathState{available: avail}).newestOfMinor(h.To.Major, h.To.Minor); newest.Compare(h.To) != 0 {
							t.Errorf("%s: intermediate hop lands on %s, newest of its minor is %s", name, h.To, newest)
						}
					}
					cur = h.To
				}
				if from.Compare(to) != 0 && cur.Compare(to) != 0 {
					t.Errorf("%s: path ends at %s", name, cur)
				}
			}
		}
	}
}

// shortestHops is a breadth-first search over available minors, a reference
// for PlanPath's greedy choice. Hops land on the target or on any release of
// an intermediate minor.
func shortestHops(avail []Version, from, to Version, reach int) int {
	if from.Compare(to) == 0 {
		return 0
	}
	dist := map[int]int{from.Minor: 0}
	queue := []int{from.Minor}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if m == to.Minor && !(m == from.Minor) {
			return dist[m]
		}
		for _, v := range avail {
			if v.Minor <= m || v.Minor > m+reach || v.Minor > to.Minor {
				continue
			}
			if _, seen := dist[v.Minor]; !seen {
				dist[v.Minor] = dist[m] + 1
				queue = append(queue, v.Minor)
			}
		}
	}
	if from.Minor == to.Minor {
		return 1
	}
	return -1
}

func TestPathString(t *testing.T) {
	got, err := PlanPath(PathRequest{
		From: vs("1.23.2"), Proxies: vs("1.22.1", "1.23.2"), To: MustParseVersion("1.26.1"), Available: vs(renderable...),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `2 hop(s) to 1.26.1:
  1. 1.23.2 -> 1.24.2 [minor]
     install 1.24.2 as a new revision, migrate every proxy onto it, then remove 1.23.2 (one minor); 1.24.2 is the newest renderable patch of 1.24; stops at 1.24 because proxies on 1.22.1 must stay within n-2 of the new control plane until migrated
  2. 1.24.2 -> 1.26.1 [skip-minor]
     install 1.26.1 as a new revision, migrate every proxy onto it, then remove 1.24.2 (skips 1.25: revision-based (canary) upgrades may cross two minors in one hop)
  note: start: control plane(s) 1.23.2; proxies 1.22.1, 1.23.2; strategy canary
`
	if s := got.String(); s != want {
		t.Errorf("String() =\n%s\nwant\n%s", s, want)
	}

	empty, err := PlanPath(PathRequest{From: vs("1.26.1"), To: MustParseVersion("1.26.1"), Available: vs(renderable...)})
	if err != nil {
		t.Fatal(err)
	}
	if s := empty.String(); !strings.HasPrefix(s, "no hops needed\n") || !strings.Contains(s, "already at 1.26.1") {
		t.Errorf("String() of an empty path = %q", s)
	}
}

func TestPlanPathDoesNotMutateRequest(t *testing.T) {
	avail := vs("1.26.1", "1.24.2", "1.25.1", "1.24.2")
	from := vs("1.24.2", "1.23.2")
	req := PathRequest{From: from, To: MustParseVersion("1.26.1"), Available: avail}
	if _, err := PlanPath(req); err != nil {
		t.Fatal(err)
	}
	if avail[0].String() != "1.26.1" || from[0].String() != "1.24.2" || len(avail) != 4 {
		t.Errorf("PlanPath reordered its input: %v %v", avail, from)
	}
}
