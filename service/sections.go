package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/policy"
)

// updateSection is Update for a write of one object of a section other
// than users and agents — a role, bundle, permission, category, plan,
// tenant, tool, action, resource or the settings — whose fn replaces
// p's section of kind with a slice of its own and changes nothing in
// place. Such a write compiles the whole snapshot, which at a million
// users takes seconds, so concurrent ones are committed together: each
// waits for the writers' lock, and whichever holds it runs every such
// write queued by then on one shallow copy of the kept policy, each
// normalized, diffed, authorized and validated on its own (a refused one
// is finished with its error and leaves the copy as it was), then
// commits them in one transaction — one version, one audit event per
// change — and compiles once: a burst of a thousand role changes costs
// a few compiles, not a thousand.
func (s *Service) updateSection(ctx context.Context, actor, action string, kind gatehouse.Kind, fn func(p *gatehouse.Policy) error) (Result, error) {
	return s.await(&subjectWrite{ctx: ctx, actor: actor, action: action, section: kind, fn: fn}, &s.sectionQueue, s.commitSections)
}

// drain commits the queued writes in order, in batches of at most
// maxBatch that commit returns how many of it went through. A panic of
// a change function or below must not leave the writes taken from the
// queue unanswered, nor the kept policy half changed: each is refused,
// and the next write loads the stored policy. The caller holds mu.
func (s *Service) drain(queue []*subjectWrite, commit func(batch []*subjectWrite) int) {
	defer func() {
		if r := recover(); r != nil {
			s.cfg.Logger.Error("a batch of changes broke off", "panic", r, "stack", string(debug.Stack()))
			s.current = nil
			for _, w := range queue {
				if !w.done {
					w.finish(Result{}, fmt.Errorf("%s: %w", w.action, errWriteFailed))
				}
			}
		}
	}()
	for len(queue) > 0 {
		n := commit(queue[:min(len(queue), maxBatch)])
		queue = slices.DeleteFunc(queue[n:], func(w *subjectWrite) bool { return w.done })
	}
}

// sectionStaged is a write of a section batch, checked against the
// batch's copy of the policy and applied to it.
type sectionStaged struct {
	w       *subjectWrite
	changes []gatehouse.Change
	events  []gatehouse.AuditEvent
}

// commitSections commits a prefix of batch, whose writes are not done,
// as one change of the stored policy and returns how many writes it went
// through, as commitBatch does for single-subject writes. A write joins
// the batch when it changes no object a write before it changed and the
// writes before it cannot change whether its caller may make it: the
// first write, or one of the operator, the system or a superuser, whom
// no change of these sections makes less than a global administrator
// (tenant administrators and holders of the admin permission are
// authorized on the snapshot, which the writes before theirs would
// change). The first write that does not join ends the batch, and so does
// one refused or changing nothing after a staged one (it is decided in
// the next batch). The caller holds mu.
func (s *Service) commitSections(batch []*subjectWrite) int {
	first := batch[0]
	cur, err := s.base(first.ctx)
	if err != nil {
		first.finish(Result{}, err)
		return 1
	}
	current := s.Snapshot()
	if !cur.valid || current.Version() != cur.v {
		return s.alone(first)
	}
	base := cur.v
	// The writes replace sections of after, never change one in place:
	// cur stays the kept policy until the batch commits. Users kept in
	// chunks stay so; whole gives a validation or a compile that reads
	// them a copy of after holding them as one slice.
	after := *cur.kept
	var flat []gatehouse.UserEntry
	whole := func(p *gatehouse.Policy) *gatehouse.Policy {
		if cur.users == nil {
			return p
		}
		if flat == nil {
			flat = cur.users.flat()
		}
		q := *p
		q.Users = flat
		return &q
	}
	var (
		done    []*sectionStaged
		touched = map[string]bool{} // kind/id of every object changed so far
		n       int
	)
	for ; n < len(batch); n++ {
		w := batch[n]
		if err := w.ctx.Err(); err != nil {
			w.finish(Result{}, err)
			continue
		}
		if n > 0 && !alwaysGlobal(current, w.ctx) {
			break
		}
		prev := after
		changes, err := s.stageSection(cur, &prev, &after, w, whole)
		// A write refused, or changing nothing, on the policy the writes
		// staged before it left is decided in the next batch, on what was
		// committed: those writes may yet not commit (another instance's
		// commit makes the batch start again).
		if (err != nil || len(changes) == 0) && len(done) > 0 {
			after = prev
			break
		}
		if err != nil {
			after = prev
			w.finish(Result{}, err)
			continue
		}
		if slices.ContainsFunc(changes, func(c gatehouse.Change) bool { return touched[string(c.Kind)+"/"+c.ID] }) {
			after = prev
			break
		}
		if len(changes) == 0 {
			w.finish(Result{Version: base}, nil)
			continue
		}
		events, err := s.changeEvents(w.actor, w.action, base+1, changes)
		if err != nil {
			after = prev
			w.finish(Result{}, err)
			continue
		}
		for _, c := range changes {
			touched[string(c.Kind)+"/"+c.ID] = true
		}
		done = append(done, &sectionStaged{w: w, changes: changes, events: events})
	}
	if len(done) == 0 {
		return n
	}
	var (
		changes []gatehouse.Change
		events  []gatehouse.AuditEvent
		writes  []*subjectWrite
	)
	for _, st := range done {
		changes = append(changes, st.changes...)
		events = append(events, st.events...)
		writes = append(writes, st.w)
	}
	// Compiled before the commit, as plan does: a policy the engine
	// refuses is not committed. Which write made it so is found by
	// committing the first staged one alone (plan compiles it), and the
	// rest in batches again; the writes before it are done. Roles and
	// bundles created or changed, and nothing else, are derived after
	// the commit instead (deriveRoles), from names and permissions
	// validated above.
	roles, bundles, derivable := roleChanges(changes)
	var snap *engine.Snapshot
	if !derivable {
		var err error
		if snap, err = engine.Compile(whole(&after), base+1); err != nil {
			s.cfg.Logger.Debug("compiling a batch of changes failed; committing the first alone", "writes", len(done), "err", err)
			return s.alone(done[0].w)
		}
	}
	// A commit under way finishes whoever of the batch stops waiting.
	ctx := context.WithoutCancel(first.ctx)
	v, err := s.store.CommitPolicy(ctx, base, changes, events)
	if err != nil {
		if !errors.Is(err, gatehouse.ErrConflict) {
			for _, w := range writes {
				w.finish(Result{}, fmt.Errorf("%s: %w", w.action, err))
			}
			return n
		}
		s.lost(first.ctx, writes, err)
		return 0
	}
	if v == base+1 {
		s.current = &versioned{kept: &after, users: cur.users, v: v, valid: true, seq: lastSeq(events)}
		if derivable {
			snap, err = s.deriveRoles(current, func() *gatehouse.Policy { return whole(&after) }, v, roles, bundles)
		}
	} else {
		snap, err = s.compileStored(ctx)
	}
	if err == nil {
		s.swap(snap)
	} else {
		s.current = nil
		err = fmt.Errorf("%s: committed version %d but %w", first.action, v, err)
	}
	for _, st := range done {
		st.w.finish(Result{Changes: st.changes, Version: v}, err)
	}
	return n
}

// stageSection runs w on after, a copy of prev, and returns its changes,
// normalized, authorized and validated (on whole(after) when the check
// reads the users); after is left as the write made it. The caller
// restores after from prev on an error.
func (s *Service) stageSection(cur *versioned, prev, after *gatehouse.Policy, w *subjectWrite, whole func(*gatehouse.Policy) *gatehouse.Policy) ([]gatehouse.Change, error) {
	if err := w.fn(after); err != nil {
		return nil, err
	}
	// Only the section the write replaced is new; normalizing the rest
	// would write to the kept policy.
	var section gatehouse.Policy
	copySection(&section, after, w.section)
	policy.Normalize(&section)
	copySection(after, &section, w.section)
	var was gatehouse.Policy
	copySection(&was, prev, w.section)
	changes, err := diffPolicies(&was, &section)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeChanges(w.ctx, cur, changes); err != nil {
		return nil, err
	}
	checked := after
	if !keepsSubjectRefs(changes) {
		checked = whole(after)
	}
	if problems := validateChange(cur, checked, changes); len(problems) > 0 {
		return nil, &policy.Error{Problems: problems}
	}
	sortByID(&section)
	copySection(after, &section, w.section)
	return changes, nil
}

// alwaysGlobal reports whether the caller of ctx is a global administrator
// whatever a write of a section other than users and agents changes: none
// (the system), the operator, or a superuser.
func alwaysGlobal(snap *engine.Snapshot, ctx context.Context) bool {
	c, ok := gatehouse.CallerFromContext(ctx)
	if !ok || c.Credential == gatehouse.CredentialOperator {
		return true
	}
	return c.Subject.Type == gatehouse.SubjectUser && snap.IsSuperuser(c.Subject.ID)
}

// roleChanges returns the roles and bundles that changes create or
// replace, and whether that is all they do, which
// engine.Snapshot.DeriveRoles derives; a deletion is compiled.
func roleChanges(changes []gatehouse.Change) (roles []gatehouse.Role, bundles []gatehouse.Bundle, ok bool) {
	for _, c := range changes {
		if c.After == nil {
			return nil, nil, false
		}
		switch c.Kind {
		case gatehouse.KindRole:
			var r gatehouse.Role
			if json.Unmarshal(c.After, &r) != nil || r.Name != c.ID {
				return nil, nil, false
			}
			roles = append(roles, r)
		case gatehouse.KindBundle:
			var b gatehouse.Bundle
			if json.Unmarshal(c.After, &b) != nil || b.Name != c.ID {
				return nil, nil, false
			}
			bundles = append(bundles, b)
		default:
			return nil, nil, false
		}
	}
	return roles, bundles, len(changes) > 0
}

// deriveRoles returns the snapshot of version v of the policy p returns,
// which is from's changed in roles and bundles alone: derived from from,
// or compiled when the engine declines.
func (s *Service) deriveRoles(from *engine.Snapshot, p func() *gatehouse.Policy, v int64, roles []gatehouse.Role, bundles []gatehouse.Bundle) (*engine.Snapshot, error) {
	snap, ok, err := from.DeriveRoles(v, roles, bundles)
	if err != nil {
		s.cfg.Logger.Warn("deriving the snapshot of changed roles failed; compiling the policy", "version", v, "err", err)
	}
	if err != nil || !ok {
		return engine.Compile(p(), v)
	}
	return snap, nil
}
