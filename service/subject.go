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

// updateSubject is Update for a change of one user or agent — changed,
// created or removed — costing what it changes rather than what the
// policy holds: fn runs on a view of the kept policy whose users or agents
// are a copy of subject's entry alone (none if the policy has no such
// subject), beside the other sections shared with the kept policy, which
// fn must only read and must not change. The change is validated as
// validateChange does, the ids it gives the subject checked against the
// snapshot (free), its snapshot derived from the current one
// (engine.Snapshot.Derive) and, once committed, the entry replaced,
// inserted or removed in the kept policy.
//
// Concurrent single-subject changes are committed together: each waits
// for the writers' lock, and whichever holds it commits every change
// queued by then (combine) in one store transaction — one version, one
// audit event per change, each checked, authorized and refused on its
// own — so that a burst of changes costs one commit and one derivation per
// batch, not per change. Whenever the own path does not apply — fn leaving
// the view with another subject, an email or alias that may be another
// user's, a kept policy not known valid, a snapshot of another version, a
// condition the snapshot never compiled — the change is Update's, which
// runs fn again on a copy of the whole policy.
func (s *Service) updateSubject(ctx context.Context, actor, action string, subject gatehouse.SubjectRef, fn func(p *gatehouse.Policy) error) (Result, error) {
	return s.await(&subjectWrite{ctx: ctx, actor: actor, action: action, subject: subject, fn: fn}, &s.queue, s.commitBatch)
}

// await queues w on queue, waits for the writers' lock and, unless the
// writer before it committed w, commits with commit every write queued by
// then (drain); it returns w's result.
func (s *Service) await(w *subjectWrite, queue *[]*subjectWrite, commit func(batch []*subjectWrite) int) (Result, error) {
	s.queueMu.Lock()
	*queue = append(*queue, w)
	s.queueMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.done {
		s.queueMu.Lock()
		batch := *queue
		*queue = nil
		s.queueMu.Unlock()
		s.drain(batch, commit)
	}
	return w.res, w.err
}

// errWriteFailed is the error of the writes of a batch that broke off.
var errWriteFailed = errors.New("internal error: the change was not committed")

// subjectWrite is one call of updateSubject, or of updateSection,
// waiting to be committed; res, err and done are set under mu.
type subjectWrite struct {
	ctx           context.Context
	actor, action string
	// subject is an updateSubject's, section the kind of an
	// updateSection's object.
	subject gatehouse.SubjectRef
	section gatehouse.Kind
	fn      func(p *gatehouse.Policy) error
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
		if ids[caller] || callers[subjectID(w.subject)] {
			break
		}
		st, own, err := s.stage(cur, current, w, func(id string) bool { return ids[id] }, len(done) == 0)
		if !own {
			break
		}
		if err != nil || st == nil {
			continue
		}
		for _, id := range st.ids() {
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
	)
	for _, st := range done {
		changes = append(changes, st.change)
		events = append(events, st.events...)
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
		writes := make([]*subjectWrite, len(done))
		for i, st := range done {
			writes[i] = st.w
		}
		s.lost(batch[0].ctx, writes, err)
		return 0
	}
	var snap *engine.Snapshot
	if v == base+1 {
		var ok bool
		snap, ok, err = current.Derive(v, delta(done))
		if err != nil || !ok {
			if err != nil {
				s.cfg.Logger.Warn("deriving the snapshot of committed changes failed; compiling the policy", "version", v, "err", err)
			}
			snap, err = engine.Compile(cur.policy(), v)
		}
		if err == nil {
			s.keepSubjects(cur, v, true, false, lastSeq(events))
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
func (s *Service) lost(ctx context.Context, writes []*subjectWrite, err error) {
	most := 0
	for _, w := range writes {
		if w.conflicts++; w.conflicts > s.cfg.MaxRetries {
			w.finish(Result{}, fmt.Errorf("%s: %w", w.action, err))
		}
		most = max(most, w.conflicts)
	}
	s.cfg.Logger.Debug("policy changed concurrently, retrying", "writes", len(writes), "attempt", most)
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
// is false, having changed nothing, when w is not for the own path (see
// subjectView.change) or one of the ids it gives its subject is taken(),
// by a write before it in the batch; and also, unless alone says no write
// is staged before it, when w would be refused or change nothing — on the
// kept policy as the writes staged before it left it, which may yet not
// commit (another instance's commit makes the batch start again), so w is
// decided in the next batch, on what was committed. Otherwise w is
// finished unless staged.
func (s *Service) stage(cur *versioned, current *engine.Snapshot, w *subjectWrite, taken func(id string) bool, alone bool) (st *staged, own bool, err error) {
	fail := func(err error) (*staged, bool, error) {
		if !alone {
			return nil, false, nil
		}
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
	if err := w.fn(sv.view); err != nil {
		return fail(err)
	}
	normalized := &gatehouse.Policy{Users: sv.view.Users, Agents: sv.view.Agents}
	policy.Normalize(normalized)
	sv.view.Users, sv.view.Agents = normalized.Users, normalized.Agents
	change, changed, ok, err := sv.change()
	if err != nil {
		return fail(err)
	}
	if !ok || !sv.free(current, taken) {
		return nil, false, nil
	}
	if !changed {
		if !alone {
			return nil, false, nil
		}
		w.finish(Result{Version: cur.v}, nil)
		return nil, true, nil
	}
	changes := []gatehouse.Change{change}
	if err := s.authorizeChanges(w.ctx, cur, changes); err != nil {
		return fail(err)
	}
	if problems := sv.validate(changes); len(problems) > 0 {
		return fail(&policy.Error{Problems: problems})
	}
	if err := sv.keepsSuperuser(); err != nil {
		return fail(err)
	}
	if !current.DerivableDelta(engine.SubjectDelta{Users: sv.view.Users, Agents: sv.view.Agents}) {
		return nil, false, nil
	}
	events, err := s.changeEvents(w.actor, w.action, cur.v+1, changes)
	if err != nil {
		return fail(err)
	}
	st = &staged{sv: sv, w: w, change: change, events: events}
	st.apply()
	return st, true, nil
}

// staged is a write of a batch, checked and applied in place to the kept
// policy (which is read only under mu), undone if the batch does not
// commit.
type staged struct {
	w      *subjectWrite
	sv     subjectView
	change gatehouse.Change
	events []gatehouse.AuditEvent
	// wasAgent is the entry the write of an agent replaced or removed.
	wasAgent gatehouse.Agent
}

// apply makes the kept policy hold the view's entry, or not hold the
// subject if the view holds none.
func (st *staged) apply() {
	sv, p := st.sv, st.sv.cur.kept
	if sv.kind == gatehouse.KindUser {
		users := sv.cur.userList()
		if len(sv.view.Users) == 1 {
			users.put(sv.view.Users[0])
		} else {
			users.remove(sv.id)
		}
	} else {
		if sv.exists {
			st.wasAgent = p.Agents[sv.at]
		}
		p.Agents = replaceAt(p.Agents, sv.at, sv.exists, sv.view.Agents)
	}
}

// undo puts back what apply replaced.
func (st *staged) undo() {
	sv, p := st.sv, st.sv.cur.kept
	exists := len(sv.view.Users)+len(sv.view.Agents) == 1
	if sv.kind == gatehouse.KindUser {
		users := sv.cur.userList()
		if sv.exists {
			users.put(sv.wasUser)
		} else {
			users.remove(sv.id)
		}
	} else {
		var was []gatehouse.Agent
		if sv.exists {
			was = []gatehouse.Agent{st.wasAgent}
		}
		p.Agents = replaceAt(p.Agents, sv.at, exists, was)
	}
}

// replaceAt returns s with the entry at i, if exists, replaced by with
// (none or one entry), or with inserted at i.
func replaceAt[T any](s []T, i int, exists bool, with []T) []T {
	switch {
	case exists && len(with) == 1:
		s[i] = with[0]
	case exists:
		s = slices.Delete(s, i, i+1)
	case len(with) == 1:
		s = slices.Insert(s, i, with[0])
	}
	return s
}

// delta is what the staged writes change, for deriving a snapshot.
func delta(done []*staged) engine.SubjectDelta {
	var d engine.SubjectDelta
	for _, st := range done {
		sv := st.sv
		switch {
		case len(sv.view.Users) == 1:
			d.Users = append(d.Users, sv.view.Users[0])
		case len(sv.view.Agents) == 1:
			d.Agents = append(d.Agents, sv.view.Agents[0])
		case sv.kind == gatehouse.KindUser:
			d.RemoveUsers = append(d.RemoveUsers, sv.id)
		default:
			d.RemoveAgents = append(d.RemoveAgents, sv.id)
		}
	}
	return d
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

// ids returns every key a caller may name the subject of st by, before
// and after the change: its email or id and its aliases.
func (st *staged) ids() []string {
	sv := st.sv
	if sv.kind == gatehouse.KindAgent {
		return []string{subjectID(gatehouse.AgentRef(sv.id))}
	}
	users := slices.Clone(sv.view.Users)
	if sv.exists {
		users = append(users, sv.wasUser)
	}
	ids := []string{subjectID(gatehouse.User(sv.id))}
	for _, u := range users {
		for _, a := range u.Aliases {
			ids = append(ids, "user:"+a, subjectID(gatehouse.User(a)))
		}
	}
	return ids
}

// subjectView is the kept policy seen through one user or agent: a view
// whose users or agents are a copy of its entry alone, or none when the
// kept policy does not hold it.
type subjectView struct {
	cur  *versioned
	kind gatehouse.Kind
	// id is the subject's email, normalized, or its agent id.
	id string
	// exists says whether the kept policy holds the subject: for a user
	// as wasUser, for an agent at index at of its agents (else at is
	// where it would be inserted).
	exists  bool
	wasUser gatehouse.UserEntry
	at      int
	view    *gatehouse.Policy
}

// viewSubject returns the view of cur for subject, ok false for a subject
// that is neither a user nor an agent.
func viewSubject(cur *versioned, subject gatehouse.SubjectRef) (subjectView, bool, error) {
	p := cur.kept
	view := smallSections(p)
	view.Tenants = p.Tenants
	sv := subjectView{cur: cur, view: view}
	var err error
	switch subject.Type {
	case gatehouse.SubjectUser:
		sv.kind, sv.id = gatehouse.KindUser, gatehouse.NormalizeEmail(subject.ID)
		if sv.wasUser, sv.exists = cur.userList().get(sv.id); sv.exists {
			view.Users, err = clonePolicyUsers([]gatehouse.UserEntry{sv.wasUser})
		}
	case gatehouse.SubjectAgent:
		sv.kind, sv.id = gatehouse.KindAgent, subject.ID
		sv.at, sv.exists = slices.BinarySearchFunc(p.Agents, sv.id, func(a gatehouse.Agent, id string) int { return strings.Compare(a.ID, id) })
		if sv.exists {
			view.Agents, err = clonePolicyAgents(p.Agents[sv.at : sv.at+1])
		}
	default:
		return subjectView{}, false, nil
	}
	return sv, err == nil, err
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

// change returns the change fn made to the view: its subject changed,
// created (the view holds it and the kept policy does not) or removed (the
// other way round); changed is false if none. ok is false when the change
// is not for the own path: the view left holding another subject or more
// than one.
func (sv subjectView) change() (c gatehouse.Change, changed, ok bool, err error) {
	var before, after any
	if sv.kind == gatehouse.KindUser {
		if len(sv.view.Agents) > 0 || len(sv.view.Users) > 1 {
			return c, false, false, nil
		}
		if sv.exists {
			before = &sv.wasUser
		}
		if len(sv.view.Users) == 1 {
			a := &sv.view.Users[0]
			if a.Email != sv.id {
				return c, false, false, nil
			}
			if sv.exists && sameUser(&sv.wasUser, a) {
				return c, false, true, nil
			}
			after = a
		}
	} else {
		if len(sv.view.Users) > 0 || len(sv.view.Agents) > 1 {
			return c, false, false, nil
		}
		if sv.exists {
			before = &sv.cur.kept.Agents[sv.at]
		}
		if len(sv.view.Agents) == 1 {
			if sv.view.Agents[0].ID != sv.id {
				return c, false, false, nil
			}
			after = &sv.view.Agents[0]
		}
	}
	c = gatehouse.Change{Kind: sv.kind, ID: sv.id}
	if before != nil {
		if c.Before, err = json.Marshal(before); err != nil {
			return gatehouse.Change{}, false, false, err
		}
	}
	if after != nil {
		if c.After, err = json.Marshal(after); err != nil {
			return gatehouse.Change{}, false, false, err
		}
	}
	if string(c.Before) == string(c.After) {
		return gatehouse.Change{}, false, true, nil
	}
	return c, true, true, nil
}

// free reports whether the ids the write gives its subject are no other's
// and not taken by a write before it in the batch: a created user's email
// and a user's new aliases (each also normalized) must not name another
// user in current, nor be the normalized form of an alias in the kept
// policy (validate's rule, which the kept aliases may only overstate). It
// records the new aliases among the kept ones.
func (sv subjectView) free(current *engine.Snapshot, taken func(id string) bool) bool {
	if taken(subjectID(gatehouse.SubjectRef{Type: gatehouse.SubjectType(sv.kind), ID: sv.id})) {
		return false
	}
	if sv.kind != gatehouse.KindUser || len(sv.view.Users) == 0 {
		return true
	}
	var was, added []string
	if sv.exists {
		was = sv.wasUser.Aliases
	}
	for _, a := range sv.view.Users[0].Aliases {
		if !slices.Contains(was, a) {
			added = append(added, a, gatehouse.NormalizeEmail(a))
		}
	}
	ids := added
	if !sv.exists {
		ids = append([]string{sv.id}, added...)
	}
	kept := sv.cur.aliases()
	for _, id := range ids {
		if email, found := current.UserEmail(id); found && email != sv.id || kept[id] || taken("user:"+id) || taken(subjectID(gatehouse.User(id))) {
			return false
		}
	}
	for _, id := range added {
		kept[id] = true
	}
	return true
}

// validate is validateChange for the view, with problem paths into the
// whole policy.
func (sv subjectView) validate(changes []gatehouse.Change) []policy.Problem {
	problems := validateChange(sv.cur, sv.view, changes)
	at := sv.at
	if sv.kind == gatehouse.KindUser {
		at = sv.cur.userList().index(sv.id)
	}
	for i := range problems {
		problems[i].Path = reindex(reindex(problems[i].Path, "users[", []int{at}), "agents[", []int{at})
	}
	return problems
}

// keepsSuperuser refuses the change that demotes or removes the last
// superuser.
func (sv subjectView) keepsSuperuser() error {
	if sv.kind != gatehouse.KindUser || !sv.exists || !sv.wasUser.Superuser ||
		(len(sv.view.Users) == 1 && sv.view.Users[0].Superuser) {
		return nil
	}
	for u := range sv.cur.allUsers() {
		if u.Email != sv.id && u.Superuser {
			return nil
		}
	}
	return fmt.Errorf("%w: promote another user first", gatehouse.ErrLastSuperuser)
}
