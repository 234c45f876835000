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
//
// Why not more: parallelism is also how many rollouts are in flight when a
// rollout or gate fails (each is then rolled back), how many surge pods the
// cluster must place at once (one per single-replica Deployment, 4% of a
// 1,000-workload mesh at 40), and the controllers' load. At 1,000
// workloads, 40 at once keeps a responsive control plane busy: with ~12 s
// rollouts the four waves take about Σrollout/40 plus one slowest rollout
// per wave, ~1.15× the ideal, an effective concurrency of ~35, over ten
// times the seed's three at a time. Where the control plane cannot keep up
// (measured on a 2-core sandbox at load ~30: a rollout took 38 s at 40 at
// once over 1,000 workloads, 13 s at 20 at once over 200, for pods that start
// in 10 s), more at once only makes each rollout slower.
func DefaultParallelism(workloads int) int {
	return min(MaxDefaultParallelism, max(MinDefaultParallelism, (workloads+workloadsPerSlot-1)/workloadsPerSlot))
}
