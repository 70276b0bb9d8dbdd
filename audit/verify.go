package audit

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"iter"
	"slices"

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
	// Checkpoints is how many signed checkpoints the chain holds, and
	// LastCheckpoint the latest of them.
	Checkpoints    int         `json:"checkpoints,omitempty"`
	LastCheckpoint *Checkpoint `json:"last_checkpoint,omitempty"`
	// Objects is how many stored objects the change events explain.
	Objects int `json:"objects,omitempty"`
}

// Options adds checks to VerifyWith beyond the chain itself.
type Options struct {
	// Checkpoints, each signed by PublicKey, must be held by the chain: an
	// event at each checkpoint's seq with its hash.
	Checkpoints []Checkpoint
	PublicKey   ed25519.PublicKey
	// Objects, when CheckState is set, are the stored objects: each must
	// be what the last change event of its kind and id wrote, and every
	// object a change event left in place must be stored.
	// StateVersion is the policy version Objects were loaded at: change
	// events of later versions, committed while verifying, are ignored.
	Objects      []gatehouse.Object
	StateVersion int64
	CheckState   bool
}

// Verify reads the whole log in Seq order and checks its chain and that it
// ends at the head the log recorded. It returns the *ChainError of the first
// bad event (wrapping gatehouse.ErrCorrupt), or the log's error; the report
// covers the events that verified before it. Events appended while Verify
// runs are verified too.
func Verify(ctx context.Context, log gatehouse.AuditLog) (Report, error) {
	return VerifyWith(ctx, log, Options{})
}

// VerifyWith is Verify with the checks of opts: after the chain it checks
// the checkpoints in Seq order (a *CheckpointError naming the first one the
// chain contradicts and the last good one) and then the stored objects (a
// *StateError naming every object no event explains). A broken chain is
// reported with the last checkpoint before the break that still holds.
func VerifyWith(ctx context.Context, log gatehouse.AuditLog, opts Options) (Report, error) {
	if len(opts.Checkpoints) > 0 && opts.PublicKey == nil {
		return Report{}, errNoKey
	}
	cps := slices.SortedFunc(slices.Values(opts.Checkpoints), func(a, b Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	// held are the hashes the chain holds at the checkpoints' seqs.
	wanted := make(map[int64]bool, len(cps))
	for _, c := range cps {
		wanted[c.Seq] = true
	}
	held := make(map[int64]string, len(cps))
	state := newStateTracker()
	base, err := log.AuditBase(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	v := NewVerifierFrom(base)
	var rep Report
	// ahead is a recorded head beyond the verified one, read when the log
	// seemed to end: an append may have raced with the listing, so the log
	// is read once more, and only if that finds nothing is the tail missing.
	var ahead *gatehouse.AuditHead
	chainErr := func() error {
		for {
			page, err := log.ListAudit(ctx, gatehouse.AuditFilter{AfterSeq: v.Head().Seq, Limit: verifyPage})
			if err != nil {
				return fmt.Errorf("verify audit log: %w", err)
			}
			if len(page) > 0 {
				for _, e := range page {
					if err := v.Next(e); err != nil {
						return err
					}
					rep.Events++
					rep.Head = v.Head()
					if wanted[e.Seq] {
						held[e.Seq] = e.Hash
					}
					if e.Action == ActionCheckpoint {
						rep.Checkpoints++
					}
					if opts.CheckState {
						state.see(e, opts.StateVersion)
					}
				}
				ahead = nil
				continue
			}
			if ahead != nil {
				return v.Finish(*ahead)
			}
			recorded, err := log.AuditHead(ctx)
			if err != nil {
				return fmt.Errorf("verify audit log: %w", err)
			}
			if recorded.Seq <= v.Head().Seq {
				return v.Finish(recorded)
			}
			ahead = &recorded
		}
	}()
	var ce *ChainError
	if chainErr != nil && !errors.As(chainErr, &ce) {
		return rep, chainErr
	}
	if opts.PublicKey != nil {
		// The chain is good up to the seq before a break.
		end := rep.Head.Seq
		if ce != nil {
			end = min(end, ce.Seq-1)
		}
		good, err := checkCheckpoints(cps, opts.PublicKey, held, end, base)
		rep.LastCheckpoint = good
		if ce != nil {
			if good != nil {
				return rep, fmt.Errorf("%w; last good %s", chainErr, good)
			}
			return rep, chainErr
		}
		if err != nil {
			return rep, err
		}
	}
	if chainErr != nil {
		return rep, chainErr
	}
	if opts.CheckState {
		n, err := state.check(opts.Objects)
		rep.Objects = n
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Verified yields the events of events while they verify as a chain from
// seq 1 and checks that the chain ends at head. At the first bad event, or
// a chain that ends elsewhere, it yields the *ChainError; an error from
// events is yielded as it is. Either way it stops after the error. Stores
// restoring a dump write what it yields, so a broken chain is never stored.
func Verified(events iter.Seq2[gatehouse.AuditEvent, error], head gatehouse.AuditHead) iter.Seq2[gatehouse.AuditEvent, error] {
	return VerifiedFrom(events, gatehouse.AuditBase{}, head)
}

// VerifiedFrom is Verified for a chain pruned to base.
func VerifiedFrom(events iter.Seq2[gatehouse.AuditEvent, error], base gatehouse.AuditBase, head gatehouse.AuditHead) iter.Seq2[gatehouse.AuditEvent, error] {
	return func(yield func(gatehouse.AuditEvent, error) bool) {
		v := NewVerifierFrom(base)
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
