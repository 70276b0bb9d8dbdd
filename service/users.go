package service

import (
	"context"
	"fmt"
	"slices"

	"github.com/gatehouse/gatehouse"
)

// Operations on users and tenants (seed 003): each is one validated,
// audited policy change.

// SetUserTenants grants email exactly the tenants given (an empty list means
// none), creating the user entry if needed. An unknown tenant is ErrNotFound
// naming it, and nothing changes.
func (s *Service) SetUserTenants(ctx context.Context, actor, email string, tenants []string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	tenants = slices.Compact(slices.Sorted(slices.Values(tenants)))
	if tenants == nil {
		tenants = []string{}
	}
	return s.updateSubject(ctx, actor, "user.set_tenants", gatehouse.User(email), func(p *gatehouse.Policy) error {
		for _, id := range tenants {
			if p.Tenant(id) == nil {
				return gatehouse.NotFoundf("unknown tenant %q", id)
			}
		}
		u := ensureUser(p, email)
		u.Tenants = slices.Clone(tenants)
		return nil
	})
}

// GrantUserTenants adds tenants to those email may see; a user who sees
// the default tenants keeps them and sees tenants too (its list becomes
// its own). Every tenant must exist (ErrNotFound); granting one the user
// already sees changes nothing.
func (s *Service) GrantUserTenants(ctx context.Context, actor, email string, tenants []string) (Result, error) {
	return s.editUserTenants(ctx, actor, email, "user.grant_tenants", tenants, func(list []string, id string) []string {
		return append(list, id)
	})
}

// RevokeUserTenants removes tenants from those email may see; a user who
// sees the default tenants keeps the others of them (its list becomes its
// own). Every tenant must exist (ErrNotFound); revoking one the user does
// not see changes nothing.
func (s *Service) RevokeUserTenants(ctx context.Context, actor, email string, tenants []string) (Result, error) {
	return s.editUserTenants(ctx, actor, email, "user.revoke_tenants", tenants, func(list []string, id string) []string {
		return slices.DeleteFunc(list, func(t string) bool { return t == id })
	})
}

// editUserTenants applies edit, for each of tenants, to the list of
// tenants email sees, starting from the default tenants if it has none of
// its own.
func (s *Service) editUserTenants(ctx context.Context, actor, email, action string, tenants []string, edit func(list []string, id string) []string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	if len(tenants) == 0 {
		return Result{}, gatehouse.Invalidf("no tenant given")
	}
	return s.Update(ctx, actor, action, func(p *gatehouse.Policy) error {
		for _, id := range tenants {
			if p.Tenant(id) == nil {
				return gatehouse.NotFoundf("unknown tenant %q", id)
			}
		}
		list := p.Settings.DefaultTenants
		if u := p.User(email); u != nil && u.Tenants != nil {
			list = u.Tenants
		}
		before := slices.Compact(slices.Sorted(slices.Values(list)))
		after := slices.Clone(before)
		for _, id := range tenants {
			after = edit(after, id)
		}
		after = slices.Compact(slices.Sorted(slices.Values(after)))
		if slices.Equal(before, after) {
			return nil
		}
		if after == nil {
			after = []string{}
		}
		ensureUser(p, email).Tenants = after
		return nil
	})
}

// ResetUserTenants removes email's own tenant list so the policy's default
// tenants apply again.
func (s *Service) ResetUserTenants(ctx context.Context, actor, email string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	return s.updateSubject(ctx, actor, "user.set_tenants", gatehouse.User(email), func(p *gatehouse.Policy) error {
		if u := p.User(email); u != nil {
			u.Tenants = nil
		}
		return nil
	})
}

// Promote makes email a superuser, creating the user entry if needed.
// Promoting a superuser changes nothing.
func (s *Service) Promote(ctx context.Context, actor, email string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	return s.updateSubject(ctx, actor, "user.promote", gatehouse.User(email), func(p *gatehouse.Policy) error {
		return promote(p, email)
	})
}

// Demote takes superuser away from email. Demoting the last superuser is
// ErrLastSuperuser; demoting a user who is not a superuser changes nothing.
func (s *Service) Demote(ctx context.Context, actor, email string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	return s.updateSubject(ctx, actor, "user.demote", gatehouse.User(email), func(p *gatehouse.Policy) error {
		if u := p.User(email); u != nil {
			u.Superuser = false
		}
		return nil
	})
}

// UserView is a user as admin screens show it.
type UserView struct {
	gatehouse.UserEntry
	// Known is false for an email the policy does not list.
	Known bool `json:"known"`
	// VisibleTenants is what the user may see now (defaults applied).
	VisibleTenants []string `json:"visible_tenants"`
	// DefaultTenants is true when the user has no tenant list of their own.
	DefaultTenants bool `json:"default_tenants"`
}

// User returns email's entry and visible tenants. An email the policy does
// not list is not an error: it sees the default tenants (seed 003).
func (s *Service) User(ctx context.Context, email string) (UserView, error) {
	email, err := requireEmail(email)
	if err != nil {
		return UserView{}, err
	}
	p, _, err := s.load(ctx)
	if err != nil {
		return UserView{}, err
	}
	v := UserView{UserEntry: gatehouse.UserEntry{Email: email}}
	if u := p.User(email); u != nil {
		v.UserEntry, v.Known = *u, true
	}
	v.DefaultTenants = v.Tenants == nil
	v.VisibleTenants = s.Snapshot().VisibleTenants(email)
	if v.VisibleTenants == nil {
		v.VisibleTenants = []string{}
	}
	return v, nil
}

// Users returns every user the policy lists.
func (s *Service) Users(ctx context.Context) ([]gatehouse.UserEntry, error) {
	p, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return p.Users, nil
}

// CreateTenant adds a tenant; its parent, if any, must exist.
func (s *Service) CreateTenant(ctx context.Context, actor string, t gatehouse.Tenant) (Result, error) {
	if t.ID == "" {
		return Result{}, gatehouse.Invalidf("tenant id is empty")
	}
	return s.Update(ctx, actor, "tenant.create", func(p *gatehouse.Policy) error {
		if p.Tenant(t.ID) != nil {
			return fmt.Errorf("tenant %q already exists: %w", t.ID, gatehouse.ErrInvalid)
		}
		if t.Parent != "" && p.Tenant(t.Parent) == nil {
			return gatehouse.NotFoundf("unknown parent tenant %q", t.Parent)
		}
		p.Tenants = append(p.Tenants, t)
		return nil
	})
}

// MoveTenant gives tenant id a new parent ("" makes it a root). A move that
// would create a cycle is ErrInvalid.
func (s *Service) MoveTenant(ctx context.Context, actor, id, parent string) (Result, error) {
	return s.Update(ctx, actor, "tenant.move", func(p *gatehouse.Policy) error {
		t := p.Tenant(id)
		if t == nil {
			return gatehouse.NotFoundf("unknown tenant %q", id)
		}
		if parent != "" && p.Tenant(parent) == nil {
			return gatehouse.NotFoundf("unknown parent tenant %q", parent)
		}
		for a := p.Tenant(parent); a != nil; a = p.Tenant(a.Parent) {
			if a.ID == id {
				return gatehouse.Invalidf("moving tenant %q under %q would create a cycle", id, parent)
			}
			if a.Parent == "" {
				break
			}
		}
		t.Parent = parent
		return nil
	})
}

// Tenants returns every tenant.
func (s *Service) Tenants(ctx context.Context) ([]gatehouse.Tenant, error) {
	p, _, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	return p.Tenants, nil
}

func requireEmail(email string) (string, error) {
	ref, err := gatehouse.ParseSubject("user:" + email)
	if err != nil {
		return "", err
	}
	return ref.ID, nil
}

func ensureUser(p *gatehouse.Policy, email string) *gatehouse.UserEntry {
	if u := p.User(email); u != nil {
		return u
	}
	p.Users = append(p.Users, gatehouse.UserEntry{Email: email})
	return &p.Users[len(p.Users)-1]
}

func promote(p *gatehouse.Policy, email string) error {
	ensureUser(p, email).Superuser = true
	return nil
}
