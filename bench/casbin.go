// Package bench compares the Gatehouse engine with Casbin on the same
// generated policy. It is a separate module so that Casbin never becomes a
// dependency of Gatehouse itself.
//
// # Mapping
//
// Casbin uses its RBAC-with-domains model (CasbinModel): a request is
// (user, tenant, permission), a domain is a tenant id and "*" is the domain
// that stands for every tenant.
//
//   - A role becomes one policy line per permission it holds, its bundles
//     flattened: p, ROLE, *, PERMISSION.
//   - A global assignment becomes g, USER, ROLE, *; a direct global grant
//     p, USER, *, PERMISSION.
//   - An assignment or grant scoped to a tenant becomes one line per tenant
//     of that tenant's subtree, since Casbin domains have no hierarchy.
//
// Casbin has no superusers, plans, tenant visibility or conditions, so the
// compared policy has none: it is generated with no superusers and no plans,
// and every user sees every tenant (enginetest.Config.Visibility false).
// Gatehouse still runs its visibility check on every request. With that, both
// engines give the same answer for every request; TestAgreement checks it.
package bench

import (
	"fmt"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/gatehouse/gatehouse"
)

// CasbinModel is Casbin's RBAC with domains, with "*" as the domain of
// global assignments and grants. The matcher tests the cheap equalities
// before the role lookups: Casbin evaluates it for each policy line, and this
// order makes it about four times faster than the order of its examples.
const CasbinModel = `
[request_definition]
r = sub, dom, act

[policy_definition]
p = sub, dom, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && (p.dom == r.dom || p.dom == "*") && (g(r.sub, p.sub, r.dom) || g(r.sub, p.sub, "*"))
`

// NewCasbin builds a Casbin enforcer holding p's roles, assignments and
// grants as described in the package documentation. It rejects policies
// with what Casbin cannot express: superusers, plans, conditions, agents.
func NewCasbin(p *gatehouse.Policy) (*casbin.Enforcer, error) {
	if len(p.Plans) > 0 || len(p.Agents) > 0 || len(p.Superusers()) > 0 {
		return nil, fmt.Errorf("casbin policy: plans, agents and superusers have no Casbin equivalent")
	}
	m, err := model.NewModelFromString(CasbinModel)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	subtree := subtrees(p.Tenants)
	domains := func(tenant string) []string {
		if tenant == "" {
			return []string{"*"}
		}
		return subtree[tenant]
	}
	bundles := make(map[string][]string, len(p.Bundles))
	for _, b := range p.Bundles {
		bundles[b.Name] = b.Permissions
	}
	var rules, links rulesSet
	for _, r := range p.Roles {
		for _, perm := range r.Permissions {
			rules.add(r.Name, "*", perm)
		}
		for _, b := range r.Bundles {
			for _, perm := range bundles[b] {
				rules.add(r.Name, "*", perm)
			}
		}
	}
	for _, u := range p.Users {
		for _, a := range u.Roles {
			if a.Condition != "" {
				return nil, fmt.Errorf("casbin policy: user %s: conditions have no Casbin equivalent", u.Email)
			}
			for _, d := range domains(a.Tenant) {
				links.add(u.Email, a.Role, d)
			}
		}
		for _, g := range u.Grants {
			if g.Condition != "" {
				return nil, fmt.Errorf("casbin policy: user %s: conditions have no Casbin equivalent", u.Email)
			}
			for _, d := range domains(g.Tenant) {
				rules.add(u.Email, d, g.Permission)
			}
		}
	}
	if _, err := e.AddPolicies(rules.list); err != nil {
		return nil, fmt.Errorf("casbin policies: %w", err)
	}
	if _, err := e.AddGroupingPolicies(links.list); err != nil {
		return nil, fmt.Errorf("casbin grouping policies: %w", err)
	}
	return e, nil
}

// rulesSet collects distinct rules; Casbin's batch add rejects duplicates.
type rulesSet struct {
	seen map[[3]string]bool
	list [][]string
}

func (s *rulesSet) add(a, b, c string) {
	if s.seen == nil {
		s.seen = make(map[[3]string]bool)
	}
	k := [3]string{a, b, c}
	if s.seen[k] {
		return
	}
	s.seen[k] = true
	s.list = append(s.list, []string{a, b, c})
}

// subtrees maps each tenant to itself and all its descendants.
func subtrees(tenants []gatehouse.Tenant) map[string][]string {
	parent := make(map[string]string, len(tenants))
	for _, t := range tenants {
		parent[t.ID] = t.Parent
	}
	out := make(map[string][]string, len(tenants))
	for _, t := range tenants {
		// Walk up from t, adding t to every ancestor's subtree; the depth
		// bound stops at a cycle, which Compile rejects anyway.
		for a, depth := t.ID, 0; a != "" && depth <= len(tenants); a, depth = parent[a], depth+1 {
			out[a] = append(out[a], t.ID)
		}
	}
	return out
}
