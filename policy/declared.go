package policy

import "github.com/gatehouse/gatehouse"

// Declared is what a valid policy declares apart from its users and
// agents: the names a changed user or agent may refer to. It lets a change
// of a few subjects be checked (CheckSubjects) without validating the
// whole policy again, in time independent of how many subjects it holds.
type Declared struct {
	names map[gatehouse.Kind]map[string]bool
}

// Declare records the names p declares apart from its users and agents.
// p must be valid (Validate reported no problem); Declared keeps none of
// p's slices, so a later change of p does not change it.
func Declare(p *gatehouse.Policy) *Declared {
	d := &Declared{names: map[gatehouse.Kind]map[string]bool{}}
	add := func(kind gatehouse.Kind, n int, name func(int) string) {
		set := make(map[string]bool, n)
		for i := range n {
			set[name(i)] = true
		}
		d.names[kind] = set
	}
	add(gatehouse.KindPermission, len(p.Permissions), func(i int) string { return p.Permissions[i].Name })
	add(gatehouse.KindBundle, len(p.Bundles), func(i int) string { return p.Bundles[i].Name })
	add(gatehouse.KindCategory, len(p.Categories), func(i int) string { return p.Categories[i].Name })
	add(gatehouse.KindRole, len(p.Roles), func(i int) string { return p.Roles[i].Name })
	add(gatehouse.KindPlan, len(p.Plans), func(i int) string { return p.Plans[i].Name })
	add(gatehouse.KindTenant, len(p.Tenants), func(i int) string { return p.Tenants[i].ID })
	add(gatehouse.KindTool, len(p.Tools), func(i int) string { return p.Tools[i].Name })
	add(gatehouse.KindAction, len(p.Actions), func(i int) string { return p.Actions[i].Name })
	return d
}

// CheckSubjects returns the problems Validate reports for users and agents
// in a policy that declares what d holds, with paths into the lists given
// ("users[0].roles[1].role"): malformed or duplicate emails, aliases and
// ids among them, emails not in canonical form, unknown plans, tenants,
// roles and permissions. Whether an email, alias or id of theirs is
// already one of another subject of that policy is the caller's to check.
func (d *Declared) CheckSubjects(users []gatehouse.UserEntry, agents []gatehouse.Agent) []Problem {
	v := &validator{names: make(map[gatehouse.Kind]map[string]bool, len(d.names)+2)}
	for kind, set := range d.names {
		v.names[kind] = set
	}
	v.declare(gatehouse.KindUser, "users", len(users), func(i int) string { return gatehouse.NormalizeEmail(users[i].Email) }, "email")
	v.declare(gatehouse.KindAgent, "agents", len(agents), func(i int) string { return agents[i].ID }, "id")
	v.subjects(users, agents)
	return v.problems
}
