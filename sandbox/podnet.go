package sandbox

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
)

// Pod addresses. kwok hands pods addresses from one pool per CIDR that it
// keeps only in memory, and after a restart it does not learn the addresses
// of pods that are already Running: a new pod would get the address of a
// live one. Once pods can be real processes bound to their address (see
// RoutedPodRanges), two pods sharing one address means two servers fighting
// for it, so the sandbox guarantees uniqueness itself: it gives each kwok
// start its own block of the sandbox's pod range, one that holds no live
// pod's address (see nextKwokBlock).
//
// Node podCIDRs (kube-controller-manager --allocate-node-cidrs) do not solve
// this: kwok keeps one such in-memory pool per node CIDR, which restarts
// empty just the same, and a node's podCIDR can never change afterwards.
const (
	// podSupernet is the whole pod range any sandbox uses: kwok's pod CIDR
	// in SANDBOX-NOTES, and the only non-loopback range the sandbox may ever
	// route to lo on this host.
	podSupernet = "10.244.0.0/16"
	// unroutedPodRange is the range of a sandbox with no istiod (IstiodNone), whose pods are not
	// processes: nothing listens on those addresses and nothing routes them.
	unroutedPodRange = "10.244.0.0/19"
	// kwokBlocksPerRange is how many kwok starts take a fresh block before
	// the blocks are reused (only blocks with no live pod are reused).
	kwokBlocksPerRange = 4
)

// RoutedPodRanges are the slices of the pod range that a sandbox whose pods
// run as real processes can claim, one sandbox each: every address of a
// claimed slice is routed to lo (`ip route add local <slice> dev lo`), so a
// process can bind a kwok pod's own address, and sandboxes running side by
// side (one per test package, five for the fleet test) never hand out the
// same address. Seven /19s above the unrouted range, 8,190 pod addresses
// each (2,046 per kwok start before its block runs into the next).
func RoutedPodRanges() []string {
	return []string{"10.244.32.0/19", "10.244.64.0/19", "10.244.96.0/19", "10.244.128.0/19", "10.244.160.0/19", "10.244.192.0/19", "10.244.224.0/19"}
}

// rangeBlocks splits a pod range into kwokBlocksPerRange equal blocks.
func rangeBlocks(podRange string) ([]netip.Prefix, error) {
	p, err := netip.ParsePrefix(podRange)
	if err != nil {
		return nil, fmt.Errorf("failed to parse pod range %q: %w", podRange, err)
	}
	p = p.Masked()
	bits := 0
	for 1<<bits < kwokBlocksPerRange {
		bits++
	}
	if p.Bits()+bits > p.Addr().BitLen() {
		return nil, fmt.Errorf("failed to split pod range %q: too small for %d blocks", podRange, kwokBlocksPerRange)
	}
	size := new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()-bits))
	base := new(big.Int).SetBytes(p.Addr().AsSlice())
	out := make([]netip.Prefix, 0, kwokBlocksPerRange)
	for i := range kwokBlocksPerRange {
		n := new(big.Int).Add(base, new(big.Int).Mul(size, big.NewInt(int64(i))))
		b := n.FillBytes(make([]byte, len(p.Addr().AsSlice())))
		addr, _ := netip.AddrFromSlice(b)
		out = append(out, netip.PrefixFrom(addr, p.Bits()+bits))
	}
	return out, nil
}

// kwokPlan is where the next kwok start takes pod addresses from, and which
// live pods must give theirs up first.
type kwokPlan struct {
	// Block is kwok's --cidr.
	Block string
	// Clear are live pod addresses that would collide with the block or lie
	// outside a routed range; the sandbox removes them from their pods'
	// status before kwok starts, and kwok gives those pods fresh ones.
	Clear []netip.Addr
}

// nextKwokBlock decides where kwok hands out addresses after (re)starting:
// the first block of podRange after prev (the block of the previous start,
// "" for none) that holds no live pod address. When every block holds one,
// it takes the block after prev and clears the live addresses in it. With
// clearOutside (a routed range: only its addresses can be bound), live
// addresses outside podRange are cleared too, since their pods could never
// run as processes.
func nextKwokBlock(podRange, prev string, live []netip.Addr, clearOutside bool) (kwokPlan, error) {
	blocks, err := rangeBlocks(podRange)
	if err != nil {
		return kwokPlan{}, err
	}
	whole, _ := netip.ParsePrefix(podRange)
	var plan kwokPlan
	if clearOutside {
		for _, a := range live {
			if !whole.Contains(a) {
				plan.Clear = append(plan.Clear, a)
			}
		}
	}
	start := 0
	if i := slices.IndexFunc(blocks, func(b netip.Prefix) bool { return b.String() == prev }); i >= 0 {
		start = i + 1
	}
	for k := range blocks {
		b := blocks[(start+k)%len(blocks)]
		if !slices.ContainsFunc(live, b.Contains) {
			plan.Block = b.String()
			return plan, nil
		}
	}
	b := blocks[start%len(blocks)]
	plan.Block = b.String()
	for _, a := range live {
		if b.Contains(a) {
			plan.Clear = append(plan.Clear, a)
		}
	}
	return plan, nil
}
