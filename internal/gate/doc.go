// Package gate decides whether a migration may move on to its next wave. A
// gate is either a Prometheus instant query compared against a threshold or
// a Fortio load probe against a URL; either way the answer is a Verdict whose
// Evidence line tells an operator what was measured and why it passed or not.
//
// The package separates three kinds of failure so callers can react to each:
//
//   - a Verdict with Passed=false: the mesh was measured and looks unhealthy;
//     the engine halts or rolls back;
//   - an *InvalidError: the gate itself is wrong (bad op, threshold that is
//     not a number, PromQL that does not parse); retrying cannot help, the
//     operator must fix the spec;
//   - any other error: the measurement could not be taken (Prometheus
//     unreachable, timeout); the engine may retry later.
//
// Prometheus semantics: every series of the result must satisfy
// "value Op Threshold". A result with no series is decided by OnNoData
// (default Pass). NaN samples fail, except when every sample is NaN: a ratio
// such as errors/requests is 0/0 = NaN when there was no traffic at all,
// which is the same situation as "no data" and is decided by OnNoData too.
//
// Presets (see Preset) give ready-made Istio queries for the common gates so
// that `meshroll upgrade --gate error-rate` needs no PromQL.
package gate
