package emit

import (
	"context"

	"github.com/pollhook/pollhook/cursor"
)

// recorder writes the outcomes of one pass's requests under the pass's
// lease, grouping them: the outcomes of the requests answered while a
// commit runs are written together, in the next transaction. A request
// counts as done only once the transaction holding its outcomes has
// committed (record returns), so an event is never counted delivered
// before its 2xx is in the store; what a group commit saves is the
// transactions, not the wait. Every transaction checks the lease, as
// RecordOutcomes does for each of its calls.
//
// Its goroutine belongs to the pass: started by startRecorder, ended by
// stop once no request of the pass is left to record.
type recorder struct {
	store DeliveryStore
	lease cursor.Lease
	ctx   context.Context // for values only: a commit outlives the pass's ctx
	in    chan recordRequest
	done  chan struct{}
}

// recordRequest is the outcomes of one request, and where the error of
// the transaction that wrote them goes.
type recordRequest struct {
	outcomes []cursor.Outcome
	err      chan error
}

func startRecorder(ctx context.Context, store DeliveryStore, lease cursor.Lease) *recorder {
	r := &recorder{
		store: store, lease: lease, ctx: context.WithoutCancel(ctx),
		in: make(chan recordRequest), done: make(chan struct{}),
	}
	go r.run()
	return r
}

// record writes outcomes, with those of other requests that arrive
// meanwhile, and returns once they are committed (or failed to be). It
// goes on after the pass's ctx is done: a delivered event must not be
// sent again for want of a write.
func (r *recorder) record(outcomes []cursor.Outcome) error {
	req := recordRequest{outcomes: outcomes, err: make(chan error, 1)}
	r.in <- req
	return <-req.err
}

// stop ends the recorder once the requests given to it are recorded.
// No record may be called after it.
func (r *recorder) stop() {
	close(r.in)
	<-r.done
}

func (r *recorder) run() {
	defer close(r.done)
	var group []recordRequest
	var outcomes []cursor.Outcome
	for req := range r.in {
		group, outcomes = append(group[:0], req), append(outcomes[:0], req.outcomes...)
		// The requests answered while the last commit ran are waiting
		// to be taken: they join this one.
	gather:
		for {
			select {
			case more, ok := <-r.in:
				if !ok {
					break gather
				}
				group = append(group, more)
				outcomes = append(outcomes, more.outcomes...)
			default:
				break gather
			}
		}
		ctx, cancel := context.WithTimeout(r.ctx, recordTimeout)
		err := r.store.RecordOutcomes(ctx, r.lease, outcomes)
		cancel()
		for _, g := range group {
			g.err <- err
		}
	}
}
