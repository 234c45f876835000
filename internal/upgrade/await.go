package upgrade

import "context"

// await waits for the next thing the moves in flight bring: an outcome
// (recorded), a due progress write, or the end of the Step's slice
// (r.yielded: the Step returns with the moves still running, and its
// Session's next Step takes their outcomes). Every wait of the loop on
// moves goes through here, so none holds a Step longer than its slice.
// An error (a failed status write, ctx ended) comes after every move in
// flight ended and was recorded.
func (r *run) await(ctx context.Context) error {
	select {
	case o := <-r.results:
		delete(r.inflight, o.i)
		r.failed = r.finish(o) || r.failed
	case <-r.flushTick.C:
		r.flushAsync(ctx)
	case done := <-r.pending:
		if err := r.landFlush(done); err != nil {
			r.collect(context.WithoutCancel(ctx))
			return err
		}
	case <-r.sliceEnd:
		r.yielded = true
	case <-ctx.Done():
		r.collect(context.WithoutCancel(ctx))
		return context.Cause(ctx)
	}
	return nil
}
