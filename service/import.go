package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/mailaddr"
	"github.com/gatehouse/gatehouse/policy"
)

// UserRecord is one user of a bulk import: the roles it holds (each
// assigned in every tenant the user sees) and the tenants it may see.
type UserRecord struct {
	Email string   `json:"email"`
	Roles []string `json:"roles,omitempty"`
	// Tenants is the exact set of tenants the user may see; empty means
	// the policy's default tenants.
	Tenants []string `json:"tenants,omitempty"`
	// Line is where the record was read (0 when it was not read from a
	// file): problems with the record name it.
	Line int `json:"-"`
}

// ImportUsers sets each record's user — created if the policy does not
// list it — to exactly the record's roles (unscoped assignments, replacing
// the user's others) and tenants, keeping the rest of the user's entry, in
// one validated change audited with one event per changed user (action
// user.import). Problems with records — an invalid email, an unknown role
// or tenant, a user listed twice — are reported all at once as a
// *policy.Error located at source and each record's Line (its index in
// records when Line is 0), and nothing changes. A dry run reports the
// changes without committing them.
func (s *Service) ImportUsers(ctx context.Context, actor, source string, records []UserRecord, dryRun bool) (Result, error) {
	// A tenant admin is not told the names of tenants it may not see.
	suggestTenants := true
	if caller, ok := gatehouse.CallerFromContext(ctx); ok {
		scope, err := adminScope(s.Snapshot(), caller)
		suggestTenants = err == nil && scope.Global
	}
	fn := func(p *gatehouse.Policy) error {
		if problems := checkRecords(p, source, records, suggestTenants); len(problems) > 0 {
			return &policy.Error{Problems: problems}
		}
		index := make(map[string]int, len(p.Users))
		for i, u := range p.Users {
			index[gatehouse.NormalizeEmail(u.Email)] = i
		}
		for _, r := range records {
			email, _ := mailaddr.Canonical(r.Email)
			i, ok := index[email]
			if !ok {
				i = len(p.Users)
				index[email] = i
				p.Users = append(p.Users, gatehouse.UserEntry{Email: email})
			}
			u := &p.Users[i]
			u.Roles = nil
			for _, role := range r.Roles {
				u.Roles = append(u.Roles, gatehouse.Assignment{Role: role})
			}
			u.Tenants = nil
			if len(r.Tenants) > 0 {
				u.Tenants = slices.Compact(slices.Sorted(slices.Values(r.Tenants)))
			}
		}
		return nil
	}
	var res Result
	err := s.write(ctx, "user.import", func() (*engine.Snapshot, error) {
		var (
			snap *engine.Snapshot
			done bool
			err  error
		)
		res, snap, done, err = s.tryImport(ctx, actor, records, dryRun, fn)
		if err != nil || done {
			return snap, err
		}
		res, snap, err = s.tryUpdate(ctx, actor, "user.import", dryRun, fn)
		return snap, err
	})
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// tryImport is one attempt of ImportUsers that costs what the import
// changes, not what the policy holds: fn runs on a view of the kept policy
// whose users are copies of the records' users it holds, the changes are
// checked as validateChange does, committed, merged into the kept policy
// and derived into the snapshot (engine.Snapshot.Derive, else a compile of
// the kept policy). done is false, having changed nothing, when the own
// path does not apply — a kept policy not known valid, a snapshot of
// another version, an email that is another user's alias, a change the
// engine cannot derive — and the import is Update's. The caller holds mu.
func (s *Service) tryImport(ctx context.Context, actor string, records []UserRecord, dryRun bool, fn func(p *gatehouse.Policy) error) (res Result, snap *engine.Snapshot, done bool, err error) {
	cur, err := s.base(ctx)
	if err != nil {
		return Result{}, nil, true, err
	}
	current := s.Snapshot()
	if !cur.valid || current.Version() != cur.v {
		return Result{}, nil, false, nil
	}
	view := smallSections(cur.kept)
	view.Tenants = cur.kept.Tenants
	users := cur.userList()
	// was holds the kept entry of each user of the view.
	was := map[string]gatehouse.UserEntry{}
	for _, r := range records {
		email, err := mailaddr.Canonical(r.Email)
		if err != nil {
			continue
		}
		if u, found := users.get(email); found {
			if _, dup := was[email]; !dup {
				was[email] = u
				c, err := clonePolicyUsers([]gatehouse.UserEntry{u})
				if err != nil {
					return Result{}, nil, true, err
				}
				view.Users = append(view.Users, c[0])
			}
		}
	}
	if err := fn(view); err != nil {
		return Result{}, nil, true, err
	}
	normalized := &gatehouse.Policy{Users: view.Users}
	policy.Normalize(normalized)
	// In the order of the policy's objects, as Update's diff gives them.
	view.Users = slices.SortedStableFunc(slices.Values(normalized.Users), func(a, b gatehouse.UserEntry) int { return strings.Compare(a.Email, b.Email) })
	var (
		changes []gatehouse.Change
		d       engine.SubjectDelta
	)
	for i := range view.Users {
		u := &view.Users[i]
		c := gatehouse.Change{Kind: gatehouse.KindUser, ID: u.Email}
		if before, found := was[u.Email]; found {
			if sameUser(&before, u) {
				continue
			}
			if c.Before, err = json.Marshal(&before); err != nil {
				return Result{}, nil, true, err
			}
		} else if _, taken := current.UserEmail(u.Email); taken || cur.aliases()[u.Email] || len(u.Aliases) > 0 {
			return Result{}, nil, false, nil
		}
		if c.After, err = json.Marshal(u); err != nil {
			return Result{}, nil, true, err
		}
		if string(c.Before) != string(c.After) {
			changes = append(changes, c)
			d.Users = append(d.Users, *u)
		}
	}
	base := cur.v
	if len(changes) == 0 {
		return Result{Version: base, DryRun: dryRun}, nil, true, nil
	}
	if err := s.authorizeChanges(ctx, cur, changes); err != nil {
		return Result{}, nil, true, err
	}
	if problems := validateChange(cur, view, changes); len(problems) > 0 {
		return Result{}, nil, false, nil
	}
	if !current.DerivableDelta(d) {
		return Result{}, nil, false, nil
	}
	if dryRun {
		return Result{Changes: changes, Version: base, DryRun: true}, nil, true, nil
	}
	events, err := s.changeEvents(actor, "user.import", base+1, changes)
	if err != nil {
		return Result{}, nil, true, err
	}
	v, err := s.store.CommitPolicy(ctx, base, changes, events)
	if err != nil {
		return Result{}, nil, true, fmt.Errorf("user.import: %w", err)
	}
	res = Result{Changes: changes, Version: v}
	if v != base+1 {
		snap, err = s.compileStored(ctx)
		return res, snap, true, err
	}
	for _, u := range d.Users {
		users.put(u)
	}
	snap, ok, err := current.Derive(v, d)
	if err != nil || !ok {
		snap, err = engine.Compile(cur.policy(), v)
	}
	if err != nil {
		s.current = nil
		return res, nil, true, fmt.Errorf("user.import: committed version %d but %w", v, err)
	}
	s.keepSubjects(cur, v, true, false, lastSeq(events))
	return res, snap, true, nil
}

// checkRecords reports the problems of records against p, each located at
// its record; unknown tenants get a did-you-mean only if suggestTenants.
func checkRecords(p *gatehouse.Policy, source string, records []UserRecord, suggestTenants bool) []policy.Problem {
	roles := make(map[string]bool, len(p.Roles))
	roleNames := make([]string, 0, len(p.Roles))
	for _, r := range p.Roles {
		roles[r.Name] = true
		roleNames = append(roleNames, r.Name)
	}
	tenants := make(map[string]bool, len(p.Tenants))
	var tenantIDs []string
	for _, t := range p.Tenants {
		tenants[t.ID] = true
		if suggestTenants {
			tenantIDs = append(tenantIDs, t.ID)
		}
	}
	var problems []policy.Problem
	seen := make(map[string]int, len(records))
	for i, r := range records {
		fail := func(format string, args ...any) {
			pr := policy.Problem{File: source, Line: r.Line, Message: fmt.Sprintf(format, args...)}
			if r.Line == 0 {
				pr.Path = fmt.Sprintf("users[%d]", i)
			}
			problems = append(problems, pr)
		}
		email, err := mailaddr.Canonical(r.Email)
		if err != nil {
			fail("%v", err)
			continue
		}
		if first, dup := seen[email]; dup {
			fail("user %q listed twice (first %s)", email, recordPlace(records[first], first))
			continue
		}
		seen[email] = i
		for _, role := range r.Roles {
			if !roles[role] {
				fail("unknown role %q%s", role, policy.Suggest(role, roleNames))
			}
		}
		for _, t := range r.Tenants {
			if !tenants[t] {
				fail("unknown tenant %q%s", t, policy.Suggest(t, tenantIDs))
			}
		}
	}
	return problems
}

// recordPlace names where a record came from: its line, or its index.
func recordPlace(r UserRecord, i int) string {
	if r.Line > 0 {
		return fmt.Sprintf("at line %d", r.Line)
	}
	return fmt.Sprintf("as users[%d]", i)
}
