package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

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
// entry replaced in the kept policy. Whenever that does not apply — a
// subject to create, changed aliases, a kept policy not known valid, a
// snapshot of another version, a derivation the engine declines — it is
// Update, which runs fn again on a copy of the whole policy.
func (s *Service) updateSubject(ctx context.Context, actor, action string, subject gatehouse.SubjectRef, fn func(p *gatehouse.Policy) error) (Result, error) {
	var res Result
	err := s.write(ctx, action, func() (*engine.Snapshot, error) {
		var (
			snap *engine.Snapshot
			done bool
			err  error
		)
		res, snap, done, err = s.trySubject(ctx, actor, action, subject, fn)
		if err != nil || done {
			return snap, err
		}
		res, snap, err = s.tryUpdate(ctx, actor, action, false, fn)
		return snap, err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
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

// trySubject is one attempt of updateSubject's own path; done is false
// when it does not apply, and then it has changed nothing.
func (s *Service) trySubject(ctx context.Context, actor, action string, subject gatehouse.SubjectRef, fn func(p *gatehouse.Policy) error) (res Result, snap *engine.Snapshot, done bool, err error) {
	cur, err := s.base(ctx)
	if err != nil {
		return Result{}, nil, true, err
	}
	current := s.Snapshot()
	if !cur.valid || current.Version() != cur.v {
		return Result{}, nil, false, nil
	}
	sv, ok, err := viewSubject(cur, subject)
	if err != nil || !ok {
		return Result{}, nil, err != nil, err
	}
	view := sv.view
	if err := fn(view); err != nil {
		return Result{}, nil, true, err
	}
	// fn may add subjects to the view (a user it creates): Update's.
	if len(view.Users)+len(view.Agents) != 1 {
		return Result{}, nil, false, nil
	}
	policy.Normalize(&gatehouse.Policy{Users: view.Users, Agents: view.Agents})
	change, changed, ok, err := sv.change()
	if err != nil || !ok {
		return Result{}, nil, err != nil, err
	}
	base := cur.v
	if !changed {
		return Result{Version: base}, nil, true, nil
	}
	changes := []gatehouse.Change{change}
	if err := s.authorizeChanges(ctx, cur.p, base, changes); err != nil {
		return Result{}, nil, true, err
	}
	if problems := sv.validate(changes); len(problems) > 0 {
		return Result{}, nil, true, &policy.Error{Problems: problems}
	}
	if err := sv.keepsSuperuser(); err != nil {
		return Result{}, nil, true, err
	}
	snap, ok, err = current.WithSubjects(base+1, view.Users, view.Agents)
	if err != nil || !ok {
		return Result{}, nil, err != nil, err
	}
	events, err := s.changeEvents(actor, action, base+1, changes)
	if err != nil {
		return Result{}, nil, true, err
	}
	v, err := s.store.CommitPolicy(ctx, base, changes, events)
	if err != nil {
		return Result{}, nil, true, fmt.Errorf("%s: %w", action, err)
	}
	if v != base+1 {
		snap, err = s.compileStored(ctx)
		return Result{Changes: changes, Version: v}, snap, true, err
	}
	// The kept policy is read only under mu, which the caller holds.
	if len(view.Users) == 1 {
		cur.p.Users[sv.at] = view.Users[0]
	} else {
		cur.p.Agents[sv.at] = view.Agents[0]
	}
	s.keep(cur.p, v, true, lastSeq(events))
	return Result{Changes: changes, Version: v}, snap, true, nil
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
