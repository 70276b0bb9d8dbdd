package service

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse"
)

// DecisionLogConfig sizes a DecisionLog.
type DecisionLogConfig struct {
	// Queue is how many decisions may wait to be written; when it is full,
	// further decisions are dropped (and counted), never waited for.
	Queue int
	// Batch is the most decisions one store transaction appends.
	Batch int
	// Flush is the longest a decision waits for its batch to fill.
	Flush time.Duration
}

// DefaultDecisionLogConfig holds 10000 decisions and writes up to 500 at a
// time, at least every 200 ms.
func DefaultDecisionLogConfig() DecisionLogConfig {
	return DecisionLogConfig{Queue: 10000, Batch: 500, Flush: 200 * time.Millisecond}
}

// DecisionLog records decisions in the audit trail from a goroutine of its
// own, in batches, so that deciding never waits for the store. Log never
// blocks: a decision that finds the queue full is dropped and counted in
// Dropped, and a batch the store refuses is counted in Failed and logged.
type DecisionLog struct {
	log    gatehouse.AuditLog
	cfg    DecisionLogConfig
	logger *slog.Logger
	clock  gatehouse.Clock

	queue   chan gatehouse.AuditEvent
	dropped atomic.Int64
	written atomic.Int64
	failed  atomic.Int64

	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{}
}

// DecisionLog starts a decision log writing to s's store and records every
// answer of s in it from now on (the last one started wins); Close stops
// it.
func (s *Service) DecisionLog(cfg DecisionLogConfig) *DecisionLog {
	def := DefaultDecisionLogConfig()
	if cfg.Queue <= 0 {
		cfg.Queue = def.Queue
	}
	if cfg.Batch <= 0 {
		cfg.Batch = def.Batch
	}
	if cfg.Flush <= 0 {
		cfg.Flush = def.Flush
	}
	l := &DecisionLog{
		log: s.store, cfg: cfg, logger: s.cfg.Logger, clock: s.cfg.Clock,
		queue: make(chan gatehouse.AuditEvent, cfg.Queue), closed: make(chan struct{}), done: make(chan struct{}),
	}
	go l.run()
	s.decisions.Store(l)
	return l
}

// Log queues e (its Action should be "decision") without blocking; it
// reports false if e was dropped because the queue is full or the log is
// closed. A zero Time is set to now.
func (l *DecisionLog) Log(e gatehouse.AuditEvent) bool {
	if e.Time.IsZero() {
		e.Time = l.clock.Now()
	}
	select {
	case <-l.closed:
		l.dropped.Add(1)
		return false
	default:
	}
	select {
	case l.queue <- e:
		return true
	default:
		l.dropped.Add(1)
		return false
	}
}

// Dropped is how many decisions were not recorded because the queue was
// full; Written how many were; Failed how many the store refused.
func (l *DecisionLog) Dropped() int64 { return l.dropped.Load() }
func (l *DecisionLog) Written() int64 { return l.written.Load() }
func (l *DecisionLog) Failed() int64  { return l.failed.Load() }

// Queued is how many decisions wait to be written.
func (l *DecisionLog) Queued() int { return len(l.queue) }

// Close stops taking decisions and writes those queued, waiting at most
// until ctx ends; what is still queued then is counted as dropped.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.closeOnce.Do(func() { close(l.closed) })
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes batches until Close, then drains the queue.
func (l *DecisionLog) run() {
	defer close(l.done)
	batch := make([]gatehouse.AuditEvent, 0, l.cfg.Batch)
	timer := time.NewTimer(l.cfg.Flush)
	defer timer.Stop()
	for {
		select {
		case e := <-l.queue:
			batch = append(batch, e)
			if len(batch) == l.cfg.Batch {
				batch = l.write(batch)
			}
		case <-timer.C:
			batch = l.write(batch)
			timer.Reset(l.cfg.Flush)
		case <-l.closed:
			for {
				select {
				case e := <-l.queue:
					batch = append(batch, e)
					if len(batch) == l.cfg.Batch {
						batch = l.write(batch)
					}
				default:
					l.write(batch)
					return
				}
			}
		}
	}
}

// write appends batch in one transaction and returns it emptied.
func (l *DecisionLog) write(batch []gatehouse.AuditEvent) []gatehouse.AuditEvent {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.log.AppendAudit(ctx, batch); err != nil {
		l.failed.Add(int64(len(batch)))
		l.logger.Warn("decision log: the store refused a batch; those decisions are not recorded", "decisions", len(batch), "err", err)
	} else {
		l.written.Add(int64(len(batch)))
	}
	clear(batch)
	return batch[:0]
}
