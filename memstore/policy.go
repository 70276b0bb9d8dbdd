package memstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// LoadPolicy returns every stored object, sorted as gatehouse.SortObjects
// sorts them, and the policy version.
func (s *Store) LoadPolicy(ctx context.Context) ([]gatehouse.Object, int64, error) {
	var (
		objs    []gatehouse.Object
		version int64
	)
	err := s.read(ctx, "load policy", func(st *state) error {
		objs, version = st.policy()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return objs, version, nil
}

// policy returns copies of the stored objects, sorted, and the version.
func (st *state) policy() ([]gatehouse.Object, int64) {
	var objs []gatehouse.Object
	for _, o := range st.objects {
		o.Body = raw(o.Body)
		objs = append(objs, o)
	}
	gatehouse.SortObjects(objs)
	return objs, st.version
}

// PolicyVersion returns the current policy version.
func (s *Store) PolicyVersion(ctx context.Context) (int64, error) {
	var version int64
	err := s.read(ctx, "policy version", func(st *state) error {
		version = st.version
		return nil
	})
	return version, err
}

// CommitPolicy applies changes in order and appends events in one
// transaction, and returns the new version: base+1, or base when changes is
// empty. It returns ErrConflict if the stored version is not base, and
// ErrInvalid for a malformed change or event or a change whose Before is
// not byte for byte the stored body (nil: the object must not exist);
// either way nothing is written.
func (s *Store) CommitPolicy(ctx context.Context, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) (int64, error) {
	sealed, err := audit.PrepareCommit(changes, events, s.clock.Now())
	if err != nil {
		return 0, err
	}
	var version int64
	err = s.write(ctx, "commit policy", func(st *state) error {
		version, err = st.commitPolicy(base, changes, sealed)
		return err
	})
	if err != nil {
		return 0, err
	}
	copy(events, sealed)
	return version, nil
}

// commitPolicy is CommitPolicy under the write lock, with events prepared.
// It checks everything before it changes anything.
func (st *state) commitPolicy(base int64, changes []gatehouse.Change, sealed []gatehouse.AuditEvent) (int64, error) {
	if st.version != base {
		return 0, fmt.Errorf("memstore: commit policy: base version %d, stored version %d: %w", base, st.version, gatehouse.ErrConflict)
	}
	staged, err := st.stage(changes)
	if err != nil {
		return 0, fmt.Errorf("memstore: commit policy: %w", err)
	}
	for k, o := range staged {
		if o == nil {
			delete(st.objects, k)
		} else {
			st.objects[k] = *o
		}
	}
	st.appendEvents(sealed)
	if len(changes) == 0 {
		return base, nil
	}
	st.version = base + 1
	return st.version, nil
}

// stage checks changes in order, each against the stored objects as the
// ones before it left them, and returns what they write: the new object,
// or nil for a deletion.
func (st *state) stage(changes []gatehouse.Change) (map[objectKey]*gatehouse.Object, error) {
	staged := map[objectKey]*gatehouse.Object{}
	for _, c := range changes {
		k := objectKey{c.Kind, c.ID}
		var stored *gatehouse.Object
		if o, ok := staged[k]; ok {
			stored = o
		} else if o, ok := st.objects[k]; ok {
			stored = &o
		}
		switch {
		case c.Before == nil && stored != nil:
			return nil, gatehouse.Invalidf("create %s/%s: already exists", c.Kind, c.ID)
		case c.Before != nil && stored == nil:
			return nil, gatehouse.Invalidf("%s %s/%s: does not exist", c.Op(), c.Kind, c.ID)
		case c.Before != nil && !bytes.Equal(stored.Body, c.Before):
			return nil, gatehouse.Invalidf("%s %s/%s: before does not match the stored object", c.Op(), c.Kind, c.ID)
		}
		if c.After == nil {
			staged[k] = nil
			continue
		}
		staged[k] = &gatehouse.Object{Kind: c.Kind, ID: c.ID, Pos: c.Pos, Body: raw(c.After)}
	}
	return staged, nil
}

// AppendAudit appends events in order in one transaction, chained to the
// recorded head. An event without a time gets the store clock's. It returns
// ErrInvalid, appending nothing, if any event fails audit.Validate; on
// success it fills in each event's Seq, Time, PrevHash and Hash as stored.
func (s *Store) AppendAudit(ctx context.Context, events []gatehouse.AuditEvent) error {
	sealed, err := audit.Prepare(events, s.clock.Now())
	if err != nil {
		return fmt.Errorf("memstore: append audit: %w", err)
	}
	if len(sealed) == 0 {
		return nil
	}
	err = s.write(ctx, "append audit", func(st *state) error {
		st.appendEvents(sealed)
		return nil
	})
	if err != nil {
		return err
	}
	copy(events, sealed)
	return nil
}

// appendEvents seals events against the head, stores copies and moves the
// head.
func (st *state) appendEvents(events []gatehouse.AuditEvent) {
	for i := range events {
		e := &events[i]
		audit.Seal(st.head, e)
		st.events = append(st.events, storedEvent(*e))
		st.head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
	}
}

// storedEvent is a copy of e as a database keeps it.
func storedEvent(e gatehouse.AuditEvent) gatehouse.AuditEvent {
	e.Time = stamp(e.Time)
	e.Before, e.After, e.Detail = raw(e.Before), raw(e.After), raw(e.Detail)
	return e
}

// ListAudit returns the events matching f in Seq order: Since is inclusive,
// Until exclusive, and Limit as audit.ListLimit takes it.
func (s *Store) ListAudit(ctx context.Context, f gatehouse.AuditFilter) ([]gatehouse.AuditEvent, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if err := f.CheckKind(); err != nil {
		return nil, err
	}
	var out []gatehouse.AuditEvent
	err = s.read(ctx, "list audit", func(st *state) error {
		from := sort.Search(len(st.events), func(i int) bool { return st.events[i].Seq > f.AfterSeq })
		to := len(st.events)
		if f.BeforeSeq > 0 {
			to = sort.Search(len(st.events), func(i int) bool { return st.events[i].Seq >= f.BeforeSeq })
		}
		if to < from {
			return nil
		}
		window := st.events[from:to]
		for i := range window {
			if len(out) == limit {
				break
			}
			e := window[i]
			if f.Newest {
				e = window[len(window)-1-i]
			}
			if matchEvent(e, f) {
				out = append(out, storedEvent(e))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func matchEvent(e gatehouse.AuditEvent, f gatehouse.AuditFilter) bool {
	switch {
	case f.Actor != "" && e.Actor != f.Actor,
		f.Action != "" && e.Action != f.Action,
		f.TargetPrefix != "" && (len(e.Target) < len(f.TargetPrefix) || e.Target[:len(f.TargetPrefix)] != f.TargetPrefix),
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		f.Kind == gatehouse.AuditKindDecision && e.Action != gatehouse.ActionDecision,
		f.Kind == gatehouse.AuditKindChange && e.Action == gatehouse.ActionDecision,
		f.Reason != "" && (e.Action != gatehouse.ActionDecision || decisionReason(e.Detail) != f.Reason):
		return false
	}
	return true
}

// decisionReason is the reason code a decision event's detail records, as
// the databases' JSON functions read it: "" when detail is not an object
// or its reason is not a string.
func decisionReason(detail json.RawMessage) string {
	var d struct {
		Reason json.RawMessage `json:"reason"`
	}
	var reason string
	if json.Unmarshal(detail, &d) != nil || json.Unmarshal(d.Reason, &reason) != nil {
		return ""
	}
	return reason
}

// AuditHead returns the head recorded by the last append.
func (s *Store) AuditHead(ctx context.Context) (gatehouse.AuditHead, error) {
	var head gatehouse.AuditHead
	err := s.read(ctx, "audit head", func(st *state) error {
		head = st.head
		return nil
	})
	return head, err
}

// AuditBase returns where the chain begins after pruning.
func (s *Store) AuditBase(ctx context.Context) (gatehouse.AuditBase, error) {
	var base gatehouse.AuditBase
	err := s.read(ctx, "audit base", func(st *state) error {
		base = st.base
		return nil
	})
	return base, err
}

// PruneAudit deletes the events of action up to the last event older than
// before and records the new base, in one transaction.
func (s *Store) PruneAudit(ctx context.Context, action string, before time.Time) (gatehouse.AuditBase, int64, error) {
	if action == "" {
		return gatehouse.AuditBase{}, 0, gatehouse.Invalidf("prune audit: no action")
	}
	var (
		base   gatehouse.AuditBase
		pruned int64
	)
	err := s.write(ctx, "prune audit", func(st *state) error {
		base = st.base
		through := -1
		for i, e := range st.events {
			if e.Time.Before(before) {
				through = i
			}
		}
		if through < 0 || st.events[through].Seq <= base.Seq {
			return nil
		}
		next := gatehouse.AuditBase{Seq: st.events[through].Seq, Hash: st.events[through].Hash}
		d := audit.NewRetainedDigest()
		kept := st.events[:0:0]
		for _, e := range st.events {
			switch {
			case e.Seq <= next.Seq && e.Action == action:
				pruned++
				continue
			case e.Seq <= next.Seq:
				d.Add(e.Seq, e.Hash)
			}
			kept = append(kept, e)
		}
		next.Retained = d.Sum()
		st.events, st.base, base = kept, next, next
		return nil
	})
	if err != nil {
		return gatehouse.AuditBase{}, 0, err
	}
	return base, pruned, nil
}
