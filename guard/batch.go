package guard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Reservations are group-committed: while one batch is in the store, the
// reservations that arrive queue up and go together in the next, one
// transaction (one audit head lock, one commit) for all of them. A lone
// request goes alone at once, so batching adds no wait; under load a
// transaction's cost is shared. The store decides a batch in order, each
// reservation as if alone, so limits and idempotency keys hold exactly as
// with one transaction each.

// maxBatch bounds the reservations in one transaction.
const maxBatch = 128

// reserveTimeout bounds one batch's transaction. A batch serves many
// callers, so it does not end with the context of any one of them.
const reserveTimeout = 10 * time.Second

type reserveCall struct {
	ctx  context.Context
	r    gatehouse.Reservation
	res  gatehouse.ReserveResult
	err  error
	done chan struct{}
}

// batcher queues reservations for the store.
type batcher struct {
	actions gatehouse.ActionStore
	mu      sync.Mutex
	queue   []*reserveCall
	running bool
}

// reserve stores r with whatever other reservations are waiting. A caller
// whose context ends before its batch starts is not reserved; once its
// batch started it waits for the outcome, so that an answer never
// contradicts what was stored.
func (b *batcher) reserve(ctx context.Context, r gatehouse.Reservation) (gatehouse.ReserveResult, error) {
	c := &reserveCall{ctx: ctx, r: r, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead {
		b.run()
	}
	<-c.done
	return c.res, c.err
}

// run stores the waiting reservations, one batch, and hands on to a new
// goroutine if more arrived meanwhile, so that no caller serves others'
// batches for long.
func (b *batcher) run() {
	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	calls := make([]*reserveCall, 0, len(batch))
	rs := make([]gatehouse.Reservation, 0, len(batch))
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err
			close(c.done)
			continue
		}
		calls, rs = append(calls, c), append(rs, c.r)
	}
	if len(calls) > 0 {
		b.store(calls, rs)
	}

	b.mu.Lock()
	more := len(b.queue) > 0
	b.running = more
	b.mu.Unlock()
	if more {
		go b.run()
	}
}

// store reserves rs for calls and answers each call. A batch the store
// refuses as invalid is tried one by one, so that one bad reservation
// fails only itself; a panic fails the calls it left unanswered.
func (b *batcher) store(calls []*reserveCall, rs []gatehouse.Reservation) {
	answered := 0
	defer func() {
		if p := recover(); p != nil {
			for _, c := range calls[answered:] {
				c.err = fmt.Errorf("reserve actions panicked: %v", p)
				close(c.done)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(calls[0].ctx), reserveTimeout)
	defer cancel()
	results, err := b.actions.ReserveActions(ctx, rs)
	if errors.Is(err, gatehouse.ErrInvalid) && len(calls) > 1 {
		for i, c := range calls {
			r, err := b.actions.ReserveActions(ctx, rs[i:i+1])
			if err == nil && len(r) != 1 {
				err = fmt.Errorf("the store answered 1 reservation with %d results", len(r))
			}
			if c.err = err; err == nil {
				c.res = r[0]
			}
			close(c.done)
			answered++
		}
		return
	}
	if err == nil && len(results) != len(calls) {
		err = fmt.Errorf("the store answered %d reservations with %d results", len(calls), len(results))
	}
	for i, c := range calls {
		if c.err = err; err == nil {
			c.res = results[i]
		}
		close(c.done)
		answered++
	}
}
