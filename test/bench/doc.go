// Package bench measures meshroll at scale on the sandbox, each figure next
// to a baseline measured in the same run, so the ratios mean something on any
// machine. Run with `make bench` (or go test -run '^$' -bench . ./test/bench).
package bench
