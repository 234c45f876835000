package plan

import (
	"fmt"
	"slices"
	"strings"
)

// This file plans the sequence of Istio releases ("hops") that takes a mesh
// from what is installed to a target release. The rules come from Istio's
// upgrade documentation (istio.io, "Upgrade Istio" section), restated here:
//
//   - Supported Releases, "Control Plane/Data Plane Skew": a control plane may
//     run ahead of its proxies, never the reverse. The page speaks of one
//     version of lead; the Canary Upgrades page implies two (see below), and
//     meshroll follows Skew (n-2, MaxProxyMinorsBehind) while a hop is in
//     flight.
//   - In-place Upgrades: the installed release must be at most one minor
//     older than the one being installed (any 1.6.x may go to any 1.7.x), so
//     an in-place path walks every intermediate minor. Downgrades in place
//     are documented for at most one minor as well.
//   - Canary Upgrades: with revisions, jumping across two minor releases in a
//     single step is supported (1.8 → 1.10), i.e. one minor may be skipped.
//   - Patch releases of a minor carry no backward-incompatible changes
//     (Supported Releases), so any patch of a minor is reachable in one hop
//     and a patch may be lowered without crossing a minor.
//
// meshroll adds its own constraints: only releases it can render may be hops,
// an intermediate hop lands on the newest renderable patch of its minor, and
// a downgrade across minors is refused unless explicitly allowed because the
// normal way back is a rollback to a revision that is still installed.

// Strategy is how a control plane moves to a new release.
type Strategy string

const (
	// StrategyCanary installs the new release as a separate revision next to
	// the old one and migrates proxies onto it; Istio's recommended method
	// and meshroll's default. It may skip one minor per hop.
	StrategyCanary Strategy = "canary"
	// StrategyInPlace replaces the running control plane; it may move only
	// one minor per hop.
	StrategyInPlace Strategy = "inplace"
)

// maxMinorsPerHop is how many minors one control-plane hop may cross under
// each strategy, per the In-place and Canary Upgrades pages.
func (s Strategy) maxMinorsPerHop() int {
	if s == StrategyInPlace {
		return 1
	}
	return 2
}

// label is the strategy as prose.
func (s Strategy) label() string {
	if s == StrategyInPlace {
		return "in-place"
	}
	return string(s)
}

// HopKind classifies a hop so the CLI and the executor can tell a routine
// patch from a minor jump or a downgrade at a glance.
type HopKind string

const (
	// HopPatch moves to a newer patch of the same minor.
	HopPatch HopKind = "patch"
	// HopPatchDowngrade moves to an older patch of the same minor: allowed,
	// but flagged because it is rarely intended.
	HopPatchDowngrade HopKind = "patch-downgrade"
	// HopMinor moves up exactly one minor.
	HopMinor HopKind = "minor"
	// HopSkipMinor moves up two minors in one canary hop.
	HopSkipMinor HopKind = "skip-minor"
	// HopMinorDowngrade moves down exactly one minor (only with
	// PathRequest.AllowDowngrade).
	HopMinorDowngrade HopKind = "minor-downgrade"
	// HopDataPlane leaves control planes alone and restarts lagging proxies
	// onto the newest installed control plane: needed when proxies are
	// already too far behind for any control-plane hop to keep them within
	// supported skew.
	HopDataPlane HopKind = "dataplane"
)

// PathRequest is everything PlanPath needs; the caller reads the cluster
// (or the --from flag) and the renderable releases (istio.Releases()).
type PathRequest struct {
	// From lists the versions of the installed control planes (one per
	// revision); order and duplicates do not matter. At least one.
	From []Version
	// Proxies is the set of proxy versions seen in the mesh; order and
	// duplicates do not matter, and it may be empty.
	Proxies []Version
	// To is the release the mesh should end on; it must be in Available.
	To Version
	// Strategy is how control planes move; empty means StrategyCanary.
	Strategy Strategy
	// Available lists the releases meshroll can render, in any order.
	Available []Version
	// AllowDowngrade permits moving to an older minor. Patch downgrades
	// within a minor are always allowed (and flagged).
	AllowDowngrade bool
}

// Hop is one step of a path: every control plane not yet on To is replaced
// by To and every proxy is migrated onto To before the next hop starts.
type Hop struct {
	// From is the oldest control plane that the hop moves (for a
	// HopDataPlane hop, the oldest proxy).
	From Version `json:"from"`
	// To is the release every component runs once the hop is complete.
	To Version `json:"to"`
	// Kind classifies the move from From to To.
	Kind HopKind `json:"kind"`
	// Reason explains, for an operator, why this hop and why it stops here.
	Reason string `json:"reason"`
}

// Path is the planned sequence of hops. An empty Hops means nothing to do.
type Path struct {
	// Hops are executed in order.
	Hops []Hop `json:"hops"`
	// Notes carry what an operator should know but does not change the hops:
	// the starting point, flagged downgrades, pre-releases.
	Notes []string `json:"notes,omitempty"`
}

// NoPathError means the request was well formed but no sequence of hops
// satisfies Istio's rules with the releases available; Reason says which rule
// blocks and, where possible, what would unblock it.
type NoPathError struct {
	Reason string
}

func (e *NoPathError) Error() string { return "no safe upgrade path: " + e.Reason }

// InvalidPathRequestError means the request describes an impossible or
// unsupported starting state (no control plane, proxies ahead of every
// control plane, an unknown strategy), so planning did not start.
type InvalidPathRequestError struct {
	Reason string
}

func (e *InvalidPathRequestError) Error() string { return "invalid path request: " + e.Reason }

// PlanPath returns the hops from the installed state to req.To, choosing the
// fewest hops and, among equally short paths, the one that jumps furthest
// first (so a paused run leaves the mesh on the newest release reached and
// the last hop into the target is the smallest). Each intermediate hop lands
// on the newest renderable, non-pre-release patch of its minor.
//
// The starting point may be mixed. Rules for the first hop:
//   - every installed control plane must be within the strategy's reach of
//     the hop target (canary 2 minors, in-place 1), and none may be above it
//     except by a patch of the target's own minor when the target is req.To;
//   - every proxy seen must be within Skew's support (n-2, not ahead) of the
//     hop target. This is deliberately conservative: in-place hops move every
//     proxy onto the new control plane at once, and even in a canary hop
//     meshroll does not assume every proxy is pinned to its old revision
//     (gateways, proxies reaching istiod through the default revision's shared
//     Service), so an unmigrated proxy may talk to the new control plane.
//
// When lagging proxies leave no first hop that crosses a minor, the path
// starts with a HopDataPlane hop that restarts them onto the newest installed
// control plane. After the first hop everything runs one release, so later
// hops are limited only by the strategy and by which minors are available.
func PlanPath(req PathRequest) (Path, error) {
	st, err := normalize(req)
	if err != nil {
		return Path{}, err
	}
	var p Path
	p.Notes = append(p.Notes, st.startNote())
	if req.To.Pre != "" {
		p.Notes = append(p.Notes, fmt.Sprintf("target %s is a pre-release; Istio gives development builds no support", req.To))
	}

	lo, hi := st.cps[0], st.cps[len(st.cps)-1]
	switch {
	case lo.Compare(st.to) == 0 && hi.Compare(st.to) == 0:
		return st.planDataPlaneOnly(p)
	case lo.Compare(st.to) >= 0:
		return st.planDowngrade(p)
	case hi.Compare(st.to) > 0 && hi.Minor != st.to.Minor:
		return Path{}, &NoPathError{Reason: fmt.Sprintf(
			"installed control planes straddle the target %s across minors (%s is older, %s is newer); "+
				"upgrade or roll back one revision at a time", st.to, lo, hi)}
	default:
		return st.planUpgrade(p)
	}
}

// pathState is the validated, normalised request.
type pathState struct {
	cps, proxies, available []Version
	to                      Version
	strategy                Strategy
	allowDowngrade          bool
}

func normalize(req PathRequest) (*pathState, error) {
	st := &pathState{
		cps:            sortedUnique(req.From),
		proxies:        sortedUnique(req.Proxies),
		available:      sortedUnique(req.Available),
		to:             req.To,
		strategy:       req.Strategy,
		allowDowngrade: req.AllowDowngrade,
	}
	if st.strategy == "" {
		st.strategy = StrategyCanary
	}
	if st.strategy != StrategyCanary && st.strategy != StrategyInPlace {
		return nil, &InvalidPathRequestError{Reason: fmt.Sprintf("unknown strategy %q; want %q or %q", req.Strategy, StrategyCanary, StrategyInPlace)}
	}
	if len(st.cps) == 0 {
		return nil, &InvalidPathRequestError{Reason: "no installed control plane; meshroll plans upgrades of an existing mesh, not installs"}
	}
	if len(st.available) == 0 {
		return nil, &InvalidPathRequestError{Reason: "no renderable releases were given"}
	}
	for _, c := range st.cps {
		if c.Major != st.to.Major {
			return nil, &NoPathError{Reason: fmt.Sprintf(
				"control plane %s and target %s differ in major release; Istio documents no upgrade across majors", c, st.to)}
		}
	}
	hi := st.cps[len(st.cps)-1]
	for _, px := range st.proxies {
		switch {
		case px.Major != hi.Major:
			return nil, &InvalidPathRequestError{Reason: fmt.Sprintf(
				"proxy %s and the installed control planes (%s) differ in major release", px, joinVersions(st.cps))}
		case px.Compare(hi) > 0:
			return nil, &InvalidPathRequestError{Reason: fmt.Sprintf(
				"proxy %s is ahead of every installed control plane (newest %s); the data plane must never be ahead of its control plane", px, hi)}
		}
	}
	if !slices.ContainsFunc(st.available, func(v Version) bool { return v.Compare(st.to) == 0 }) {
		return nil, &NoPathError{Reason: fmt.Sprintf(
			"target %s is not a release meshroll can render (available: %s)", st.to, joinVersions(st.available))}
	}
	return st, nil
}

func (st *pathState) startNote() string {
	s := fmt.Sprintf("start: control plane(s) %s", joinVersions(st.cps))
	if len(st.proxies) > 0 {
		s += fmt.Sprintf("; proxies %s", joinVersions(st.proxies))
	}
	return s + fmt.Sprintf("; strategy %s", st.strategy)
}

// planDataPlaneOnly handles control planes already on the target: at most
// the proxies still have to move.
func (st *pathState) planDataPlaneOnly(p Path) (Path, error) {
	if len(st.proxies) == 0 || st.proxies[0].Compare(st.to) == 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("already at %s: every control plane and proxy runs it", st.to))
		return p, nil
	}
	p.Hops = append(p.Hops, st.dataPlaneHop(st.to, ""))
	return p, nil
}

// dataPlaneHop restarts every proxy older than onto; why, when set, says
// what forced it.
func (st *pathState) dataPlaneHop(onto Version, why string) Hop {
	var lagging []Version
	for _, px := range st.proxies {
		if px.Compare(onto) < 0 {
			lagging = append(lagging, px)
		}
	}
	reason := fmt.Sprintf("restart proxies on %s onto the %s control plane; no control plane changes", joinVersions(lagging), onto)
	if !Skew(lagging[0], onto).Supported() {
		reason += fmt.Sprintf(" (proxies on %s are already outside Istio's supported skew)", lagging[0])
	}
	if why != "" {
		reason += "; " + why
	}
	return Hop{From: lagging[0], To: onto, Kind: HopDataPlane, Reason: reason}
}

// planUpgrade walks up from the oldest control plane, greedily taking the
// furthest legal hop. Greedy is optimal here: the reach of a hop grows with
// the release it lands on, so landing further never costs a hop later.
func (st *pathState) planUpgrade(p Path) (Path, error) {
	reach := st.strategy.maxMinorsPerHop()
	cands := st.candidates()
	cur := st.cps[0]
	first := true
	for cur.Compare(st.to) != 0 {
		var next Version
		found := false
		for i := len(cands) - 1; i >= 0; i-- {
			c := cands[i]
			if c.Compare(cur) <= 0 {
				continue
			}
			if c.Minor-cur.Minor > reach {
				continue
			}
			if first && !st.firstHopLegal(c) {
				continue
			}
			next, found = c, true
			break
		}
		if !found && first && st.proxiesLagBehind(st.cps[len(st.cps)-1]) {
			// Lagging proxies pin every control-plane hop; move them first.
			hi := st.cps[len(st.cps)-1]
			p.Hops = append(p.Hops, st.dataPlaneHop(hi, fmt.Sprintf(
				"any control-plane hop toward %s would leave proxies on %s more than n-%d behind it", st.to, st.proxies[0], MaxProxyMinorsBehind)))
			st.proxies = []Version{hi}
			continue
		}
		if !found {
			return Path{}, st.explainStuck(cur, first, cands)
		}
		p.Hops = append(p.Hops, st.upgradeHop(cur, next, first))
		if first {
			p.Notes = append(p.Notes, st.firstHopNotes(next)...)
		}
		cur, first = next, false
	}
	return p, nil
}

// candidates lists the releases a hop may land on, oldest first: the newest
// non-pre-release patch of every minor strictly between the oldest control
// plane and the target, then the target itself.
func (st *pathState) candidates() []Version {
	var out []Version
	for _, v := range st.available {
		if v.Major != st.to.Major || v.Pre != "" || v.Minor <= st.cps[0].Minor || v.Minor >= st.to.Minor {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Minor == v.Minor {
			out[n-1] = v // available is sorted, so the later one is the newer patch
			continue
		}
		out = append(out, v)
	}
	return append(out, st.to)
}

// firstHopLegal applies the mixed-start rules of PlanPath to target t.
func (st *pathState) firstHopLegal(t Version) bool {
	reach := st.strategy.maxMinorsPerHop()
	for _, c := range st.cps {
		if t.Minor-c.Minor > reach {
			return false
		}
		// A control plane above t is only acceptable as a patch downgrade
		// onto the final target.
		if c.Compare(t) > 0 && (t.Compare(st.to) != 0 || c.Minor != t.Minor) {
			return false
		}
	}
	for _, px := range st.proxies {
		if !Skew(px, t).Supported() {
			return false
		}
	}
	return true
}

func (st *pathState) proxiesLagBehind(v Version) bool {
	return len(st.proxies) > 0 && st.proxies[0].Compare(v) < 0
}

func (st *pathState) upgradeHop(from, to Version, first bool) Hop {
	h := Hop{From: from, To: to}
	var what string
	switch d := to.Minor - from.Minor; {
	case d == 0:
		h.Kind = HopPatch
		what = fmt.Sprintf("patch release within %d.%d: any patch of a minor is one hop", to.Major, to.Minor)
	case d == 1:
		h.Kind = HopMinor
		what = "one minor"
	default:
		h.Kind = HopSkipMinor
		what = fmt.Sprintf("skips %d.%d: revision-based (canary) upgrades may cross two minors in one hop", to.Major, to.Minor-1)
	}
	if st.strategy == StrategyInPlace {
		h.Reason = fmt.Sprintf("upgrade the control plane in place from %s to %s and restart every proxy (%s", from, to, what)
		if h.Kind == HopMinor {
			h.Reason += "; in-place upgrades move one minor at a time"
		}
	} else {
		h.Reason = fmt.Sprintf("install %s as a new revision, migrate every proxy onto it, then remove %s (%s", to, from, what)
	}
	h.Reason += ")"
	if to.Compare(st.to) != 0 {
		h.Reason += fmt.Sprintf("; %s is the newest renderable patch of %d.%d", to, to.Major, to.Minor)
	}
	if first {
		if limit := st.proxyLimit(); limit < from.Minor+st.strategy.maxMinorsPerHop() && to.Minor == limit && to.Compare(st.to) != 0 {
			h.Reason += fmt.Sprintf("; stops at %d.%d because proxies on %s must stay within n-%d of the new control plane until migrated",
				to.Major, limit, st.proxies[0], MaxProxyMinorsBehind)
		}
	}
	return h
}

// proxyLimit is the highest minor a hop may land on without leaving the
// oldest proxy beyond supported skew (a large number when there are none).
func (st *pathState) proxyLimit() int {
	if len(st.proxies) == 0 {
		return int(^uint(0) >> 1)
	}
	return st.proxies[0].Minor + MaxProxyMinorsBehind
}

// firstHopNotes reports what else the first hop does in a mixed start.
func (st *pathState) firstHopNotes(t Version) []string {
	var notes []string
	var retired, downgraded []Version
	for _, c := range st.cps[1:] {
		switch {
		case c.Compare(t) < 0:
			retired = append(retired, c)
		case c.Compare(t) > 0:
			downgraded = append(downgraded, c)
		}
	}
	if len(retired) > 0 {
		notes = append(notes, fmt.Sprintf("the first hop also migrates proxies off and removes control plane(s) %s", joinVersions(retired)))
	}
	if slices.ContainsFunc(st.cps, func(c Version) bool { return c.Compare(t) == 0 }) {
		notes = append(notes, fmt.Sprintf("%s is already installed; the first hop migrates onto it instead of installing it", t))
	}
	if len(downgraded) > 0 {
		notes = append(notes, fmt.Sprintf("flag: control plane(s) %s go down to patch %s (patch downgrade within %d.%d)", joinVersions(downgraded), t, t.Major, t.Minor))
	}
	return notes
}

// explainStuck builds the refusal when no hop leaves cur.
func (st *pathState) explainStuck(cur Version, first bool, cands []Version) error {
	reach := st.strategy.maxMinorsPerHop()
	if first {
		hi := st.cps[len(st.cps)-1]
		if hi.Minor-cur.Minor > reach {
			return &NoPathError{Reason: fmt.Sprintf(
				"installed control planes %s and %s are %d minors apart, more than one %s hop may cross (%d); "+
					"migrate the workloads of %s onto a newer revision and remove it first",
				cur, hi, hi.Minor-cur.Minor, st.strategy.label(), reach, cur)}
		}
		for _, c := range st.cps {
			if c.Compare(cur) == 0 || (c.Compare(st.to) > 0 && c.Minor == st.to.Minor) {
				continue
			}
			if !slices.ContainsFunc(cands, func(v Version) bool { return v.Compare(c) >= 0 && v.Minor-cur.Minor <= reach }) {
				return &NoPathError{Reason: fmt.Sprintf(
					"control plane %s runs a patch newer than every renderable release a first hop from %s may land on; "+
						"meshroll will not lower it on the way", c, cur)}
			}
		}
	}
	var missing []string
	for m := cur.Minor + 1; m <= cur.Minor+reach && m < st.to.Minor; m++ {
		if !slices.ContainsFunc(cands, func(v Version) bool { return v.Minor == m }) {
			missing = append(missing, fmt.Sprintf("%d.%d", cur.Major, m))
		}
	}
	if len(missing) == 0 {
		return &NoPathError{Reason: fmt.Sprintf("no hop from %s toward %s satisfies the %s rules", cur, st.to, st.strategy.label())}
	}
	return &NoPathError{Reason: fmt.Sprintf(
		"from %s a %s hop may cross at most %d minor(s), but no renderable release exists for %s, so %s cannot be reached",
		cur, st.strategy.label(), reach, strings.Join(missing, " or "), st.to)}
}

// planDowngrade handles every control plane at or above the target.
func (st *pathState) planDowngrade(p Path) (Path, error) {
	hi := st.cps[len(st.cps)-1]
	if hi.Minor == st.to.Minor {
		p.Hops = append(p.Hops, Hop{From: hi, To: st.to, Kind: HopPatchDowngrade, Reason: fmt.Sprintf(
			"patch downgrade within %d.%d: patches of a minor are compatible, but check that lowering the patch is intended", st.to.Major, st.to.Minor)})
		p.Notes = append(p.Notes, fmt.Sprintf("flag: %s is older than the installed %s (patch downgrade)", st.to, hi))
		return p, nil
	}
	if !st.allowDowngrade {
		return Path{}, &NoPathError{Reason: fmt.Sprintf(
			"%s is older than the installed %s across minor releases; meshroll refuses downgrades by default "+
				"(roll back to a revision that is still installed instead, or allow the downgrade explicitly)", st.to, hi)}
	}
	p.Notes = append(p.Notes,
		fmt.Sprintf("flag: downgrade from %s to %s across minors, explicitly allowed; Istio documents downgrades of one minor at a time", hi, st.to),
		"during each downgrade hop proxies still on the newer release run ahead of the older control plane until restarted; "+
			"Istio's skew rule forbids that, so migrate them promptly")
	cur := hi
	for cur.Compare(st.to) != 0 {
		next := st.to
		if m := cur.Minor - 1; m != st.to.Minor {
			var ok bool
			if next, ok = st.newestOfMinor(cur.Major, m); !ok {
				return Path{}, &NoPathError{Reason: fmt.Sprintf(
					"downgrades move one minor at a time, but no renderable release exists for %d.%d between %s and %s", cur.Major, m, hi, st.to)}
			}
		}
		reason := fmt.Sprintf("downgrade the control plane from %s to %s and restart every proxy (one minor per downgrade hop)", cur, next)
		if next.Compare(st.to) != 0 {
			reason += fmt.Sprintf("; %s is the newest renderable patch of %d.%d", next, next.Major, next.Minor)
		}
		p.Hops = append(p.Hops, Hop{From: cur, To: next, Kind: HopMinorDowngrade, Reason: reason})
		cur = next
	}
	return p, nil
}

func (st *pathState) newestOfMinor(major, minor int) (Version, bool) {
	for i := len(st.available) - 1; i >= 0; i-- {
		if v := st.available[i]; v.Major == major && v.Minor == minor && v.Pre == "" {
			return v, true
		}
	}
	return Version{}, false
}

// String renders the path as a numbered listing for the terminal.
func (p Path) String() string {
	var b strings.Builder
	if len(p.Hops) == 0 {
		b.WriteString("no hops needed\n")
	} else {
		fmt.Fprintf(&b, "%d hop(s) to %s:\n", len(p.Hops), p.Hops[len(p.Hops)-1].To)
		for i, h := range p.Hops {
			fmt.Fprintf(&b, "  %d. %s -> %s [%s]\n     %s\n", i+1, h.From, h.To, h.Kind, h.Reason)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func sortedUnique(vs []Version) []Version {
	out := slices.Clone(vs)
	slices.SortFunc(out, Version.Compare)
	return slices.CompactFunc(out, func(a, b Version) bool { return a.Compare(b) == 0 })
}

func joinVersions(vs []Version) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, ", ")
}
