package service

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/money"
	"github.com/gatehouse/gatehouse/policy"
)

// ActionPolicies returns the effective policy of every action type in
// tenant, each part with where it comes from.
func (s *Service) ActionPolicies(tenant string) ([]gatehouse.EffectiveAction, error) {
	return s.Snapshot().ActionPolicies(tenant)
}

// ReplayActions replays the actions recorded within the last period
// against the stored policy with doc applied (as Apply would apply it:
// section by section, so a proposal holding only tenants: keeps the stored
// users, roles, actions, …), without changing anything, and reports what
// the change would deny.
func (s *Service) ReplayActions(ctx context.Context, doc *policy.Document, period time.Duration, examples int) (guard.ReplayReport, error) {
	if period <= 0 {
		return guard.ReplayReport{}, gatehouse.Invalidf("replay: the period %v must be positive", period)
	}
	current, version, err := s.load(ctx)
	if err != nil {
		return guard.ReplayReport{}, err
	}
	proposed := policy.Merge(current, doc)
	policy.Normalize(proposed)
	if problems := policy.Validate(proposed); len(problems) > 0 {
		policy.ExplainReplaced(current, doc, problems)
		return guard.ReplayReport{}, doc.Locate(problems)
	}
	snap, err := engine.Compile(proposed, version+1)
	if err != nil {
		return guard.ReplayReport{}, fmt.Errorf("replay: %w", err)
	}
	return s.guard.Replay(ctx, snap, s.guard.Now().Add(-period), examples)
}

// ActionPolicyChange is a partial update of a tenant's own policy for one
// action type: nil fields stay as they are. Limits, when set, replace the
// tenant's own limits as a whole (an empty object: no limits here).
type ActionPolicyChange struct {
	Enabled              *bool                   `json:"enabled,omitempty"`
	RequiresConfirmation *bool                   `json:"requires_confirmation,omitempty"`
	Limits               *gatehouse.ActionLimits `json:"limits,omitempty"`
}

// SetActionPolicy applies c to tenant's own policy for action, as one
// validated, audited change. An unknown tenant or action type is
// ErrNotFound; invalid limits are ErrInvalid naming the field.
func (s *Service) SetActionPolicy(ctx context.Context, actor, tenant, action string, c ActionPolicyChange) (Result, error) {
	return s.Update(ctx, actor, "action.policy", func(p *gatehouse.Policy) error {
		t, err := actionTenant(p, tenant, action)
		if err != nil {
			return err
		}
		set := t.Actions[action]
		if c.Enabled != nil {
			set.Enabled = new(*c.Enabled)
		}
		if c.RequiresConfirmation != nil {
			set.RequiresConfirmation = new(*c.RequiresConfirmation)
		}
		if c.Limits != nil {
			l := *c.Limits
			set.Limits = &l
		}
		if t.Actions == nil {
			t.Actions = map[string]gatehouse.ActionSetting{}
		}
		t.Actions[action] = set
		return nil
	})
}

// InheritActionPolicy removes tenant's own policy for action, so that it
// inherits its parent's (or the action type's default) again.
func (s *Service) InheritActionPolicy(ctx context.Context, actor, tenant, action string) (Result, error) {
	return s.Update(ctx, actor, "action.policy", func(p *gatehouse.Policy) error {
		t, err := actionTenant(p, tenant, action)
		if err != nil {
			return err
		}
		delete(t.Actions, action)
		if len(t.Actions) == 0 {
			t.Actions = nil
		}
		return nil
	})
}

// EditActionLimits runs edit on tenant's effective limits for action and
// makes the result the tenant's own limits, as one validated, audited
// change. The effective limits are the tenant's own, else those of the
// nearest ancestor that sets limits, else the action type's default, else
// none: limits are inherited as a whole, so editing one inherited limit
// copies the others. Reading and writing are one update, so a concurrent
// change is never lost. An unknown tenant or action type is ErrNotFound;
// an error of edit is returned as it is and nothing changes.
func (s *Service) EditActionLimits(ctx context.Context, actor, tenant, action string, edit func(l *gatehouse.ActionLimits) error) (Result, error) {
	return s.Update(ctx, actor, "action.policy", func(p *gatehouse.Policy) error {
		t, err := actionTenant(p, tenant, action)
		if err != nil {
			return err
		}
		l := effectiveLimits(p, t, action)
		if err := edit(&l); err != nil {
			return err
		}
		set := t.Actions[action]
		set.Limits = &l
		if t.Actions == nil {
			t.Actions = map[string]gatehouse.ActionSetting{}
		}
		t.Actions[action] = set
		return nil
	})
}

// effectiveLimits returns a copy of the limits action has in tenant t of p.
func effectiveLimits(p *gatehouse.Policy, t *gatehouse.Tenant, action string) gatehouse.ActionLimits {
	var found *gatehouse.ActionLimits
	for i := range p.Actions {
		if p.Actions[i].Name == action {
			found = p.Actions[i].Default.Limits
		}
	}
	// At most one step per tenant: validation refuses parent cycles, and the
	// walk ends even on a policy it has not checked.
	for range p.Tenants {
		if set, ok := t.Actions[action]; ok && set.Limits != nil {
			found = set.Limits
			break
		}
		if t = p.Tenant(t.Parent); t == nil {
			break
		}
	}
	if found == nil {
		return gatehouse.ActionLimits{}
	}
	l := *found
	if l.MaxCount != nil {
		l.MaxCount = new(*l.MaxCount)
	}
	return l
}

// actionTenant returns the tenant an action policy change is about.
func actionTenant(p *gatehouse.Policy, tenant, action string) (*gatehouse.Tenant, error) {
	t := p.Tenant(tenant)
	if t == nil {
		return nil, gatehouse.NotFoundf("tenant %q", tenant)
	}
	if !slices.ContainsFunc(p.Actions, func(a gatehouse.ActionType) bool { return a.Name == action }) {
		return nil, gatehouse.NotFoundf("action type %q", action)
	}
	return t, nil
}

// ActionUsage returns, for every action type of tenant with a windowed
// limit, what its window holds now: the count and total amount the guard
// would compare with the limits.
func (s *Service) ActionUsage(ctx context.Context, tenant string) ([]gatehouse.WindowUsage, error) {
	pols, err := s.ActionPolicies(tenant)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	out := []gatehouse.WindowUsage{}
	for _, p := range pols {
		l := p.Exact
		if !l.Windowed() {
			continue
		}
		count, total, err := s.store.ActionUsage(ctx, tenant, p.Action, l.Window, now)
		if err != nil {
			return nil, fmt.Errorf("usage of %s in %s: %w", p.Action, tenant, err)
		}
		u := gatehouse.WindowUsage{Action: p.Action, Window: p.Limits.Window, Count: count, MaxCount: l.MaxCount}
		if l.MaxTotalAmount > 0 {
			u.Currency = l.Currency
			u.Total, u.MaxTotal = money.FormatAmount(total, l.Currency), money.FormatAmount(l.MaxTotalAmount, l.Currency)
		}
		out = append(out, u)
	}
	return out, nil
}
