package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/policy"
)

// updateSubject is Update for a change of one user or agent that the
// stored policy already holds, costing what it changes rather than what the
// policy holds: fn runs on a view of the kept policy whose users and agents
// are a copy of subject's entry alone, beside the other sections shared
// with the kept policy, which fn must only read and must not change. The
// change is validated as validateChange does, its snapshot derived from
// the current one (engine.Snapshot.WithSubjects) and, once committed, the
// entry replaced in the kept policy.
//
// Concurrent single-subject changes are committed together: each waits
// for the writers' lock, and whichever holds it commits every change
// queued by then (combine) in one store transaction — one version, one
// audit event per change, each checked, authorized and refused on its
// own — so that a burst of changes costs one commit and one derivation per
// batch, not per change. Whenever the own path does not apply — a subject
// to create, changed aliases, a kept policy not known valid, a snapshot of
// another version — the change is Update's, which runs fn again on a copy
// of the whole policy.
func (s *Service) updateSubject(ctx context.Context, actor, action string, subject gatehouse.SubjectRef, fn func(p *gatehouse.Policy) error) (Result, error) {
	w := &subjectWrite{ctx: ctx, actor: actor, action: action, subject: subject, fn: fn}
	s.queueMu.Lock()
	s.queue = append(s.queue, w)
	s.queueMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.done {
		s.queueMu.Lock()
		batch := s.queue
		s.queue = nil
		s.queueMu.Unlock()
		s.combine(batch)
	}
	return w.res, w.err
}

// subjectWrite is one call of updateSubject waiting to be committed; res,
// err and done are set under mu.
type subjectWrite struct {
	ctx           context.Context
	actor, action string
	subject       gatehouse.SubjectRef
	fn            func(p *gatehouse.Policy) error
	// conflicts counts the batch commits of this write another writer beat.
	conflicts int
	done      bool
	res       Result
	err       error
}

func (w *subjectWrite) finish(res Result, err error) {
	w.res, w.err, w.done = res, err, true
}

// maxBatch bounds the changes one commit of combine holds.
const maxBatch = 512

// combine commits the queued writes in order, as few batches as the
// writes allow. The caller holds mu.
func (s *Service) combine(queue []*subjectWrite) {
	for len(queue) > 0 {
		n := s.commitBatch(queue[:min(len(queue), maxBatch)])
		queue = slices.DeleteFunc(queue[n:], func(w *subjectWrite) bool { return w.done })
	}
}

// staged is a write of a batch, checked and applied in place to the kept
// policy, which is undone if the batch does not commit.
type staged struct {
	w      *subjectWrite
	sv     subjectView
	change gatehouse.Change
	events []gatehouse.AuditEvent
	// was is the entry sv replaced.
	wasUser  gatehouse.UserEntry
	wasAgent gatehouse.Agent
}

// commitBatch commits a prefix of batch, whose writes are not done, as one
// change of the stored policy and returns how many writes it went
// through, at least one unless another writer committed first, in which
// case it undoes what it staged, waits a little and returns 0 to be called
// again with the writes not finished (each write gives up with
// ErrConflict after MaxRetries such losses). A write joins the batch when
// its own path applies and it is independent of the writes before it: a
// subject not changed by them, and whose change cannot change what they
// were authorized with (neither its subject the caller of one, nor its
// caller the subject of one). The first write that is not ends the batch;
// if it is the first, it goes alone through Update's path. A write
// refused (its function's error, a problem, not authorized, the last
// superuser) is finished with its error and the batch goes on without it.
// The caller holds mu.
func (s *Service) commitBatch(batch []*subjectWrite) int {
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
	var (
		done    []*staged
		ids     = map[string]bool{} // ids of the subjects changed so far
		callers = map[string]bool{} // subjects of their callers
		n       int
	)
	for ; n < len(batch); n++ {
		w := batch[n]
		if err := w.ctx.Err(); err != nil {
			w.finish(Result{}, err)
			continue
		}
		caller := callerID(w.ctx)
		if ids[subjectID(w.subject)] || ids[caller] || callers[subjectID(w.subject)] {
			break
		}
		st, own, err := s.stage(cur, current, w)
		if !own {
			break
		}
		if err != nil || st == nil {
			continue
		}
		for _, id := range st.sv.ids(st.wasUser, st.wasAgent) {
			ids[id] = true
		}
		if caller != "" {
			callers[caller] = true
		}
		done = append(done, st)
	}
	if n == 0 {
		return s.alone(first)
	}
	if len(done) == 0 {
		return n
	}
	var (
		changes []gatehouse.Change
		events  []gatehouse.AuditEvent
		users   []gatehouse.UserEntry
		agents  []gatehouse.Agent
	)
	for _, st := range done {
		changes = append(changes, st.change)
		events = append(events, st.events...)
		if len(st.sv.view.Users) == 1 {
			users = append(users, st.sv.view.Users[0])
		} else {
			agents = append(agents, st.sv.view.Agents[0])
		}
	}
	// A commit under way finishes whoever of the batch stops waiting.
	ctx := context.WithoutCancel(first.ctx)
	v, err := s.store.CommitPolicy(ctx, base, changes, events)
	if err != nil {
		for i := len(done) - 1; i >= 0; i-- {
			done[i].undo()
		}
		if !errors.Is(err, gatehouse.ErrConflict) {
			for _, st := range done {
				st.w.finish(Result{}, fmt.Errorf("%s: %w", st.w.action, err))
			}
			return n
		}
		s.lost(batch[0].ctx, done, err)
		return 0
	}
	var snap *engine.Snapshot
	if v == base+1 {
		var ok bool
		snap, ok, err = current.WithSubjects(v, users, agents)
		if err != nil || !ok {
			if err != nil {
				s.cfg.Logger.Warn("deriving the snapshot of committed changes failed; compiling the policy", "version", v, "err", err)
			}
			snap, err = engine.Compile(cur.p, v)
		}
		if err == nil {
			s.keepSubjects(cur, v, true, lastSeq(events))
		}
	} else {
		snap, err = s.compileStored(ctx)
	}
	if err == nil {
		s.swap(snap)
	} else {
		// Committed, but this process's view is stale: the next write
		// or Follow reloads it.
		s.current = nil
		err = fmt.Errorf("%s: committed version %d but %w", first.action, v, err)
	}
	for _, st := range done {
		st.w.finish(Result{Changes: []gatehouse.Change{st.change}, Version: v}, err)
	}
	return n
}

// lost handles the writes of a batch another writer committed before:
// each is tried again after a jittered wait, unless it has lost
// MaxRetries times, which finishes it with err.
func (s *Service) lost(ctx context.Context, done []*staged, err error) {
	most := 0
	for _, st := range done {
		if st.w.conflicts++; st.w.conflicts > s.cfg.MaxRetries {
			st.w.finish(Result{}, fmt.Errorf("%s: %w", st.w.action, err))
		}
		most = max(most, st.w.conflicts)
	}
	s.cfg.Logger.Debug("policy changed concurrently, retrying", "writes", len(done), "attempt", most)
	select {
	case <-ctx.Done():
	case <-time.After(time.Duration(1+rand.IntN(4*most)) * time.Millisecond):
	}
}

// alone commits w through Update's path, on a copy of the whole policy.
func (s *Service) alone(w *subjectWrite) int {
	var res Result
	err := s.writeLocked(w.ctx, w.action, func() (*engine.Snapshot, error) {
		var (
			snap *engine.Snapshot
			err  error
		)
		res, snap, err = s.tryUpdate(w.ctx, w.actor, w.action, false, w.fn)
		return snap, err
	})
	w.finish(res, err)
	return 1
}

// stage checks w on the kept policy as the batch before it left it and,
// if w changes its subject, applies it in place and returns it staged. own
// is false, having changed nothing, when w is not for the own path: its
// subject not kept, or a change of ids; otherwise w is finished unless
// staged.
func (s *Service) stage(cur *versioned, current *engine.Snapshot, w *subjectWrite) (st *staged, own bool, err error) {
	fail := func(err error) (*staged, bool, error) {
		w.finish(Result{}, err)
		return nil, true, err
	}
	sv, ok, err := viewSubject(cur, w.subject)
	if err != nil {
		return fail(err)
	}
	if !ok {
		return nil, false, nil
	}
	view := sv.view
	if err := w.fn(view); err != nil {
		return fail(err)
	}
	// fn may add subjects to the view (a user it creates): Update's.
	if len(view.Users)+len(view.Agents) != 1 {
		return nil, false, nil
	}
	policy.Normalize(&gatehouse.Policy{Users: view.Users, Agents: view.Agents})
	change, changed, ok, err := sv.change()
	if err != nil {
		return fail(err)
	}
	if !ok {
		return nil, false, nil
	}
	if !changed {
		w.finish(Result{Version: cur.v}, nil)
		return nil, true, nil
	}
	changes := []gatehouse.Change{change}
	if err := s.authorizeChanges(w.ctx, cur.p, cur.v, changes); err != nil {
		return fail(err)
	}
	if problems := sv.validate(changes); len(problems) > 0 {
		return fail(&policy.Error{Problems: problems})
	}
	if err := sv.keepsSuperuser(); err != nil {
		return fail(err)
	}
	if !current.Derivable(view.Users, view.Agents) {
		return nil, false, nil
	}
	events, err := s.changeEvents(w.actor, w.action, cur.v+1, changes)
	if err != nil {
		return fail(err)
	}
	st = &staged{w: w, sv: sv, change: change, events: events}
	// The kept policy is read only under mu, which the caller holds.
	if len(view.Users) == 1 {
		st.wasUser, cur.p.Users[sv.at] = cur.p.Users[sv.at], view.Users[0]
	} else {
		st.wasAgent, cur.p.Agents[sv.at] = cur.p.Agents[sv.at], view.Agents[0]
	}
	return st, true, nil
}

// undo puts back the entry st replaced.
func (st *staged) undo() {
	if len(st.sv.view.Users) == 1 {
		st.sv.cur.p.Users[st.sv.at] = st.wasUser
	} else {
		st.sv.cur.p.Agents[st.sv.at] = st.wasAgent
	}
}

// subjectID is the key of a subject in a batch's sets: its type and id,
// an email normalized.
func subjectID(ref gatehouse.SubjectRef) string {
	if ref.Type == gatehouse.SubjectUser {
		return "user:" + gatehouse.NormalizeEmail(ref.ID)
	}
	return string(ref.Type) + ":" + ref.ID
}

// callerID is subjectID of the subject ctx's caller acts as, "" for a
// caller that is none (an API key, the operator).
func callerID(ctx context.Context) string {
	c, ok := gatehouse.CallerFromContext(ctx)
	if !ok || c.Subject.IsZero() {
		return ""
	}
	return subjectID(c.Subject)
}

// ids returns every key a caller may name the view's subject by, before
// (was) and after the change: its email or id and its aliases.
func (sv subjectView) ids(wasUser gatehouse.UserEntry, wasAgent gatehouse.Agent) []string {
	if len(sv.view.Users) == 1 {
		var ids []string
		for _, u := range []*gatehouse.UserEntry{&wasUser, &sv.view.Users[0]} {
			ids = append(ids, subjectID(gatehouse.User(u.Email)))
			for _, a := range u.Aliases {
				ids = append(ids, "user:"+a, subjectID(gatehouse.User(a)))
			}
		}
		return ids
	}
	return []string{subjectID(gatehouse.SubjectRef{Type: gatehouse.SubjectAgent, ID: wasAgent.ID})}
}

// subjectView is the kept policy seen through one user or agent entry.
type subjectView struct {
	cur *versioned
	// at is the entry's index in its section of cur.p.
	at   int
	view *gatehouse.Policy
}

// viewSubject returns the view of cur for subject, ok false if cur does
// not hold it.
func viewSubject(cur *versioned, subject gatehouse.SubjectRef) (subjectView, bool, error) {
	p := cur.p
	view := smallSections(p)
	view.Tenants = p.Tenants
	var (
		at    int
		found bool
		err   error
	)
	switch subject.Type {
	case gatehouse.SubjectUser:
		email := gatehouse.NormalizeEmail(subject.ID)
		at, found = slices.BinarySearchFunc(p.Users, email, func(u gatehouse.UserEntry, id string) int { return strings.Compare(u.Email, id) })
		if found {
			view.Users, err = clonePolicyUsers(p.Users[at : at+1])
		}
	case gatehouse.SubjectAgent:
		at, found = slices.BinarySearchFunc(p.Agents, subject.ID, func(a gatehouse.Agent, id string) int { return strings.Compare(a.ID, id) })
		if found {
			view.Agents, err = clonePolicyAgents(p.Agents[at : at+1])
		}
	}
	if !found || err != nil {
		return subjectView{}, false, err
	}
	return subjectView{cur: cur, at: at, view: view}, true, nil
}

func clonePolicyUsers(u []gatehouse.UserEntry) ([]gatehouse.UserEntry, error) {
	c, err := clonePolicy(&gatehouse.Policy{Users: u})
	if err != nil {
		return nil, err
	}
	return c.Users, nil
}

func clonePolicyAgents(a []gatehouse.Agent) ([]gatehouse.Agent, error) {
	c, err := clonePolicy(&gatehouse.Policy{Agents: a})
	if err != nil {
		return nil, err
	}
	return c.Agents, nil
}

// change returns the change fn made to the view's entry, changed false if
// none; ok is false if the entry's ids changed (its email, id or aliases),
// which validateChange checks against the whole policy.
func (sv subjectView) change() (c gatehouse.Change, changed, ok bool, err error) {
	var before, after any
	var kind gatehouse.Kind
	var id string
	if len(sv.view.Users) == 1 {
		b, a := &sv.cur.p.Users[sv.at], &sv.view.Users[0]
		if a.Email != b.Email || !slices.Equal(a.Aliases, b.Aliases) {
			return c, false, false, nil
		}
		if sameUser(b, a) {
			return c, false, true, nil
		}
		before, after, kind, id = b, a, gatehouse.KindUser, a.Email
	} else {
		b, a := &sv.cur.p.Agents[sv.at], &sv.view.Agents[0]
		if a.ID != b.ID {
			return c, false, false, nil
		}
		before, after, kind, id = b, a, gatehouse.KindAgent, a.ID
	}
	bb, err := json.Marshal(before)
	if err != nil {
		return c, false, false, err
	}
	ab, err := json.Marshal(after)
	if err != nil {
		return c, false, false, err
	}
	if string(bb) == string(ab) {
		return c, false, true, nil
	}
	return gatehouse.Change{Kind: kind, ID: id, Before: bb, After: ab}, true, true, nil
}

// validate is validateChange for the view, with problem paths into the
// whole policy.
func (sv subjectView) validate(changes []gatehouse.Change) []policy.Problem {
	problems := validateChange(sv.cur, sv.view, changes)
	for i := range problems {
		problems[i].Path = reindex(reindex(problems[i].Path, "users[", []int{sv.at}), "agents[", []int{sv.at})
	}
	return problems
}

// keepsSuperuser refuses the change that demotes the last superuser.
func (sv subjectView) keepsSuperuser() error {
	if len(sv.view.Users) != 1 || sv.view.Users[0].Superuser || !sv.cur.p.Users[sv.at].Superuser {
		return nil
	}
	for i := range sv.cur.p.Users {
		if i != sv.at && sv.cur.p.Users[i].Superuser {
			return nil
		}
	}
	return fmt.Errorf("%w: promote another user first", gatehouse.ErrLastSuperuser)
}
