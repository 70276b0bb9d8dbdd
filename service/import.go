package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse"
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
	fn := func(p *gatehouse.Policy) error {
		if problems := checkRecords(p, source, records); len(problems) > 0 {
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
	if dryRun {
		return s.DryRun(ctx, fn)
	}
	return s.Update(ctx, actor, "user.import", fn)
}

// checkRecords reports the problems of records against p, each located at
// its record.
func checkRecords(p *gatehouse.Policy, source string, records []UserRecord) []policy.Problem {
	roles := make(map[string]bool, len(p.Roles))
	roleNames := make([]string, 0, len(p.Roles))
	for _, r := range p.Roles {
		roles[r.Name] = true
		roleNames = append(roleNames, r.Name)
	}
	tenants := make(map[string]bool, len(p.Tenants))
	tenantIDs := make([]string, 0, len(p.Tenants))
	for _, t := range p.Tenants {
		tenants[t.ID] = true
		tenantIDs = append(tenantIDs, t.ID)
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
