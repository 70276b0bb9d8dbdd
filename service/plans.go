package service

import (
	"context"
	"slices"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
)

// Plans (seed 001): a tenant's plan covers its subtree; a user's own plan
// applies where no tenant plan does. Each change is one validated,
// audited policy change.

// SetTenantPlan gives tenant id its own plan; plan "" removes it, so the
// tenant inherits its nearest ancestor's. ErrNotFound for an unknown
// tenant, ErrInvalid for a plan the policy does not declare.
func (s *Service) SetTenantPlan(ctx context.Context, actor, id, plan string) (Result, error) {
	return s.Update(ctx, actor, "tenant.set_plan", func(p *gatehouse.Policy) error {
		return setPlan(p, billing.Target{Kind: gatehouse.KindTenant, ID: id}, plan, false)
	})
}

// SetUserPlan gives the user with email its own plan, creating the user
// entry if needed; plan "" removes it. ErrInvalid for a bad email or a
// plan the policy does not declare.
func (s *Service) SetUserPlan(ctx context.Context, actor, email, plan string) (Result, error) {
	email, err := requireEmail(email)
	if err != nil {
		return Result{}, err
	}
	return s.updateSubject(ctx, actor, "user.set_plan", gatehouse.User(email), func(p *gatehouse.Policy) error {
		return setPlan(p, billing.Target{Kind: gatehouse.KindUser, ID: email}, plan, true)
	})
}

// setPlan sets target's own plan in p. A missing tenant is ErrNotFound; a
// missing user is created if create is set, else ErrNotFound.
func setPlan(p *gatehouse.Policy, target billing.Target, plan string, create bool) error {
	if plan != "" && !slices.Contains(planNames(p), plan) {
		return gatehouse.Invalidf("unknown plan %q: the policy declares %v", plan, planNames(p))
	}
	switch target.Kind {
	case gatehouse.KindTenant:
		t := p.Tenant(target.ID)
		if t == nil {
			return gatehouse.NotFoundf("unknown tenant %q", target.ID)
		}
		t.Plan = plan
	case gatehouse.KindUser:
		u := p.User(target.ID)
		switch {
		case u == nil && !create:
			return gatehouse.NotFoundf("unknown user %q", target.ID)
		case u == nil:
			u = ensureUser(p, target.ID)
		}
		u.Plan = plan
	default:
		return gatehouse.Invalidf("plan of %s: want a tenant or a user", target)
	}
	return nil
}

func planNames(p *gatehouse.Policy) []string {
	names := make([]string, len(p.Plans))
	for i, pl := range p.Plans {
		names[i] = pl.Name
	}
	return names
}

// PlanView is a tenant's or user's plan as admin screens show it.
type PlanView struct {
	// Target is "tenant:ID" or "user:EMAIL".
	Target string `json:"target"`
	// Plan is the target's own plan, "" if it has none.
	Plan string `json:"plan,omitempty"`
	// Effective is the plan that applies: the target's own, else (for a
	// tenant) its nearest ancestor's, else the lowest plan. From names the
	// tenant it comes from when inherited.
	Effective string   `json:"effective_plan,omitempty"`
	From      string   `json:"inherited_from,omitempty"`
	Features  []string `json:"features"`
	// Billing lists the billing customers that pay for the target.
	Billing []gatehouse.BillingCustomer `json:"billing,omitempty"`
}

// TenantPlan returns tenant id's plan; ErrNotFound for an unknown tenant.
func (s *Service) TenantPlan(ctx context.Context, id string) (PlanView, error) {
	p, _, err := s.load(ctx)
	if err != nil {
		return PlanView{}, err
	}
	t := p.Tenant(id)
	if t == nil {
		return PlanView{}, gatehouse.NotFoundf("unknown tenant %q", id)
	}
	v := PlanView{Target: billing.Target{Kind: gatehouse.KindTenant, ID: id}.String(), Plan: t.Plan}
	for a := t; a != nil; a = p.Tenant(a.Parent) {
		if a.Plan != "" {
			v.Effective = a.Plan
			if a != t {
				v.From = a.ID
			}
			break
		}
	}
	return s.finishPlanView(ctx, p, v)
}

// UserPlan returns the plan of the user with email; ErrNotFound for a user
// the policy does not list.
func (s *Service) UserPlan(ctx context.Context, email string) (PlanView, error) {
	email, err := requireEmail(email)
	if err != nil {
		return PlanView{}, err
	}
	p, _, err := s.load(ctx)
	if err != nil {
		return PlanView{}, err
	}
	u := p.User(email)
	if u == nil {
		return PlanView{}, gatehouse.NotFoundf("unknown user %q", email)
	}
	v := PlanView{Target: billing.Target{Kind: gatehouse.KindUser, ID: email}.String(), Plan: u.Plan, Effective: u.Plan}
	return s.finishPlanView(ctx, p, v)
}

// finishPlanView falls back to the lowest plan and adds v's features and
// billing customers.
func (s *Service) finishPlanView(ctx context.Context, p *gatehouse.Policy, v PlanView) (PlanView, error) {
	names := planNames(p)
	if v.Effective == "" && len(names) > 0 {
		v.Effective = names[0]
	}
	v.Features = []string{}
	if i := slices.Index(names, v.Effective); i >= 0 {
		for _, pl := range p.Plans[:i+1] {
			v.Features = append(v.Features, pl.Features...)
		}
	}
	slices.Sort(v.Features)
	var err error
	v.Billing, err = s.BillingCustomers(ctx, v.Target)
	if err != nil {
		return PlanView{}, err
	}
	return v, nil
}
