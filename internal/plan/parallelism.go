package plan

// Bounds of DefaultParallelism.
const (
	// MinDefaultParallelism keeps small meshes at the parallelism meshroll
	// always had: 20 rollouts at once is light for any API server.
	MinDefaultParallelism = 20
	// MaxDefaultParallelism respects the API server of a big mesh: each
	// rollout in flight costs the controllers about ten writes (ReplicaSet,
	// pods, statuses) per pod start, so 100 at once is ~100 writes/s with
	// 10-second pods, and ~10 rollouts/s when pods start in a second.
	MaxDefaultParallelism = 100
	// workloadsPerSlot is how many planned workloads earn one more rollout
	// at once.
	workloadsPerSlot = 25
)

// DefaultParallelism is the parallelism of a run that sets none: one
// rollout at once per 25 workloads, within [MinDefaultParallelism,
// MaxDefaultParallelism].
//
// Why it scales: a rollout takes as long as its pods take to start, seconds
// on a real cluster, so a fixed parallelism makes an upgrade last in
// proportion to the mesh (1,000 workloads of 10-second pods at 20 at once:
// over 8 minutes). Waves are shares of the mesh (1, 10%, 50%, 100%), so with
// parallelism in proportion too every wave takes the same number of rounds
// (a 10% wave 2.5, a 50% wave 12.5) whatever the mesh size: the time stays
// flat up to the cap, and the wait at each wave's end for its slowest
// rollouts stays a small, fixed share of the run.
func DefaultParallelism(workloads int) int {
	return min(MaxDefaultParallelism, max(MinDefaultParallelism, (workloads+workloadsPerSlot-1)/workloadsPerSlot))
}
