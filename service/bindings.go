package service

import (
	"context"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// Role bindings and direct grants of one user or agent, for the REST API.
// Adding what is already there changes nothing; removing what is not there
// is ErrNotFound.

// Bind assigns a role to subject, creating a user entry if needed (an
// unknown agent is ErrNotFound).
func (s *Service) Bind(ctx context.Context, actor string, subject gatehouse.SubjectRef, a gatehouse.Assignment) (Result, error) {
	return s.updateSubject(ctx, actor, "binding.add", subject, func(p *gatehouse.Policy) error {
		roles, _, err := subjectSources(p, subject, true)
		if err != nil {
			return err
		}
		if !slices.Contains(*roles, a) {
			*roles = append(*roles, a)
		}
		return nil
	})
}

// Unbind removes subject's assignment of role in tenant ("" for the global
// one), whatever its condition.
func (s *Service) Unbind(ctx context.Context, actor string, subject gatehouse.SubjectRef, role, tenant string) (Result, error) {
	return s.updateSubject(ctx, actor, "binding.remove", subject, func(p *gatehouse.Policy) error {
		roles, _, err := subjectSources(p, subject, false)
		if err != nil {
			return err
		}
		n := len(*roles)
		*roles = slices.DeleteFunc(*roles, func(a gatehouse.Assignment) bool { return a.Role == role && a.Tenant == tenant })
		if len(*roles) == n {
			return gatehouse.NotFoundf("%s has no role %q in tenant %q", subject, role, tenant)
		}
		return nil
	})
}

// AddGrant gives subject a permission directly, creating a user entry if
// needed.
func (s *Service) AddGrant(ctx context.Context, actor string, subject gatehouse.SubjectRef, g gatehouse.Grant) (Result, error) {
	return s.updateSubject(ctx, actor, "grant.add", subject, func(p *gatehouse.Policy) error {
		_, grants, err := subjectSources(p, subject, true)
		if err != nil {
			return err
		}
		if !slices.Contains(*grants, g) {
			*grants = append(*grants, g)
		}
		return nil
	})
}

// RemoveGrant removes subject's direct grant of permission in tenant.
func (s *Service) RemoveGrant(ctx context.Context, actor string, subject gatehouse.SubjectRef, permission, tenant string) (Result, error) {
	return s.updateSubject(ctx, actor, "grant.remove", subject, func(p *gatehouse.Policy) error {
		_, grants, err := subjectSources(p, subject, false)
		if err != nil {
			return err
		}
		n := len(*grants)
		*grants = slices.DeleteFunc(*grants, func(g gatehouse.Grant) bool { return g.Permission == permission && g.Tenant == tenant })
		if len(*grants) == n {
			return gatehouse.NotFoundf("%s has no grant of %q in tenant %q", subject, permission, tenant)
		}
		return nil
	})
}

// subjectSources returns the role and grant lists of subject in p. create
// adds a missing user; a missing agent, or a user when create is false, is
// ErrNotFound.
func subjectSources(p *gatehouse.Policy, subject gatehouse.SubjectRef, create bool) (*[]gatehouse.Assignment, *[]gatehouse.Grant, error) {
	switch subject.Type {
	case gatehouse.SubjectUser:
		u := p.User(subject.ID)
		if u == nil && create {
			email, err := requireEmail(subject.ID)
			if err != nil {
				return nil, nil, err
			}
			u = ensureUser(p, email)
		}
		if u == nil {
			return nil, nil, gatehouse.NotFoundf("%s", subject)
		}
		return &u.Roles, &u.Grants, nil
	case gatehouse.SubjectAgent:
		for i := range p.Agents {
			if p.Agents[i].ID == subject.ID {
				return &p.Agents[i].Roles, &p.Agents[i].Grants, nil
			}
		}
		return nil, nil, gatehouse.NotFoundf("%s", subject)
	}
	return nil, nil, gatehouse.Invalidf("subject %s is not a user or agent", subject)
}
