package audit

import (
	"context"
	"fmt"
	"iter"

	"github.com/gatehouse/gatehouse"
)

// verifyPage is how many events Verify reads per ListAudit call.
const verifyPage = 1000

// Report is the outcome of verifying a log.
type Report struct {
	// Events is how many events verified.
	Events int64 `json:"events"`
	// Head is the last event that verified.
	Head gatehouse.AuditHead `json:"head"`
}

// Verify reads the whole log in Seq order and checks its chain and that it
// ends at the head the log recorded. It returns the *ChainError of the first
// bad event (wrapping gatehouse.ErrCorrupt), or the log's error; the report
// covers the events that verified before it. Events appended while Verify
// runs are verified too.
func Verify(ctx context.Context, log gatehouse.AuditLog) (Report, error) {
	v := NewVerifier()
	var rep Report
	// ahead is a recorded head beyond the verified one, read when the log
	// seemed to end: an append may have raced with the listing, so the log
	// is read once more, and only if that finds nothing is the tail missing.
	var ahead *gatehouse.AuditHead
	for {
		page, err := log.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: v.Head().Seq, Limit: verifyPage})
		if err != nil {
			return rep, fmt.Errorf("verify audit log: %w", err)
		}
		if len(page) > 0 {
			for _, e := range page {
				if err := v.Next(e); err != nil {
					return rep, err
				}
				rep.Events++
				rep.Head = v.Head()
			}
			ahead = nil
			continue
		}
		if ahead != nil {
			return rep, v.Finish(*ahead)
		}
		recorded, err := log.AuditHead(ctx)
		if err != nil {
			return rep, fmt.Errorf("verify audit log: %w", err)
		}
		if recorded.Seq <= v.Head().Seq {
			return rep, v.Finish(recorded)
		}
		ahead = &recorded
	}
}

// Verified yields the events of events while they verify as a chain from
// seq 1 and checks that the chain ends at head. At the first bad event, or
// a chain that ends elsewhere, it yields the *ChainError; an error from
// events is yielded as it is. Either way it stops after the error. Stores
// restoring a dump write what it yields, so a broken chain is never stored.
func Verified(events iter.Seq2[gatehouse.AuditEvent, error], head gatehouse.AuditHead) iter.Seq2[gatehouse.AuditEvent, error] {
	return func(yield func(gatehouse.AuditEvent, error) bool) {
		v := NewVerifier()
		for e, err := range events {
			if err == nil {
				err = v.Next(e)
			}
			if err != nil {
				yield(gatehouse.AuditEvent{}, err)
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := v.Finish(head); err != nil {
			yield(gatehouse.AuditEvent{}, err)
		}
	}
}
