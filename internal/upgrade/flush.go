package upgrade

import "time"

// Bounds of defaultFlushEvery.
const (
	minFlushEvery = time.Second
	maxFlushEvery = 10 * time.Second
	// workloadsPerFlushSecond is how many planned workloads add one second
	// between background status writes.
	workloadsPerFlushSecond = 200
)

// defaultFlushEvery is how often progress is written in the background when
// Engine.FlushEvery is unset: one second per 200 planned workloads, within
// 1–10 s.
//
// Why it scales: the status carries every planned workload (about 150
// bytes each), so a write costs the API server in proportion to the plan,
// and with pods that take seconds to start a run lasts long enough for
// once-a-second writes to outnumber the workloads' own patches (1,000
// workloads of 10-second pods, about 18 minutes on a loaded sandbox: ~1,000
// status writes of 160 KB). Safety does not depend on it: intents, label
// moves and phase changes are written at once, and outcomes lost to a kill
// are found again by the restart token without restarting anything.
func defaultFlushEvery(workloads int) time.Duration {
	return min(maxFlushEvery, max(minFlushEvery, time.Duration(workloads/workloadsPerFlushSecond)*time.Second))
}
