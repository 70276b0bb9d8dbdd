package policy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/gatehouse/gatehouse"
)

// Merge returns d's policy with every section d omits taken from current, so
// a document without `users:` leaves the stored users alone while a present
// but empty section deletes everything in it. A nil current is an empty
// policy. The result shares no memory with current or d, so normalizing or
// importing into it changes neither.
func Merge(current *gatehouse.Policy, d *Document) *gatehouse.Policy {
	return deepCopy(merged(current, d))
}

// MergeTaking is Merge for a caller that hands d's policy over: the result
// holds d's sections as they are and copies only those taken from current,
// so that merging a large document does not copy it a second time.
// Whatever changes the result (normalizing, sorting) changes d's policy,
// which the caller must not use for anything else.
func MergeTaking(current *gatehouse.Policy, d *Document) *gatehouse.Policy {
	omitted := &Document{Policy: &gatehouse.Policy{}, sections: d.sections}
	return merged(deepCopy(merged(current, omitted)), d)
}

// merged is d's policy with every section d omits taken from current; it
// shares the memory of both.
func merged(current *gatehouse.Policy, d *Document) *gatehouse.Policy {
	if current == nil {
		current = &gatehouse.Policy{}
	}
	out := &gatehouse.Policy{}
	if d.Policy != nil {
		*out = *d.Policy
	}
	keep := func(kind gatehouse.Kind) bool { return !d.Has(kind) }
	if keep(gatehouse.KindSettings) {
		out.Settings = current.Settings
	}
	if keep(gatehouse.KindPermission) {
		out.Permissions = current.Permissions
	}
	if keep(gatehouse.KindBundle) {
		out.Bundles = current.Bundles
	}
	if keep(gatehouse.KindCategory) {
		out.Categories = current.Categories
	}
	if keep(gatehouse.KindRole) {
		out.Roles = current.Roles
	}
	if keep(gatehouse.KindPlan) {
		out.Plans = current.Plans
	}
	if keep(gatehouse.KindTenant) {
		out.Tenants = current.Tenants
	}
	if keep(gatehouse.KindUser) {
		out.Users = current.Users
	}
	if keep(gatehouse.KindAgent) {
		out.Agents = current.Agents
	}
	if keep(gatehouse.KindTool) {
		out.Tools = current.Tools
	}
	if keep(gatehouse.KindAction) {
		out.Actions = current.Actions
	}
	if keep(gatehouse.KindResource) {
		out.Resources = current.Resources
	}
	return out
}

// deepCopy copies every list and map of p; attribute values, which nothing
// in Gatehouse mutates, are shared.
func deepCopy(p *gatehouse.Policy) *gatehouse.Policy {
	out := *p
	out.Settings.DefaultTenants = slices.Clone(p.Settings.DefaultTenants)
	out.Permissions = slices.Clone(p.Permissions)
	out.Bundles = slices.Clone(p.Bundles)
	for i := range out.Bundles {
		out.Bundles[i].Permissions = slices.Clone(out.Bundles[i].Permissions)
	}
	out.Categories = slices.Clone(p.Categories)
	for i := range out.Categories {
		out.Categories[i].Bundles = slices.Clone(out.Categories[i].Bundles)
	}
	out.Roles = slices.Clone(p.Roles)
	for i := range out.Roles {
		r := &out.Roles[i]
		r.Bundles, r.Permissions = slices.Clone(r.Bundles), slices.Clone(r.Permissions)
	}
	out.Plans = slices.Clone(p.Plans)
	for i := range out.Plans {
		out.Plans[i].Features = slices.Clone(out.Plans[i].Features)
	}
	out.Tenants = slices.Clone(p.Tenants)
	for i := range out.Tenants {
		out.Tenants[i].Attributes = maps.Clone(out.Tenants[i].Attributes)
		out.Tenants[i].Actions = cloneSettings(out.Tenants[i].Actions)
	}
	out.Users = slices.Clone(p.Users)
	for i := range out.Users {
		u := &out.Users[i]
		u.Tenants, u.Roles, u.Grants = slices.Clone(u.Tenants), slices.Clone(u.Roles), slices.Clone(u.Grants)
		u.Aliases = slices.Clone(u.Aliases)
		u.Attributes = maps.Clone(u.Attributes)
	}
	out.Agents = slices.Clone(p.Agents)
	for i := range out.Agents {
		a := &out.Agents[i]
		a.Tenants, a.Roles, a.Grants = slices.Clone(a.Tenants), slices.Clone(a.Roles), slices.Clone(a.Grants)
		a.Attributes = maps.Clone(a.Attributes)
	}
	out.Tools = slices.Clone(p.Tools)
	out.Actions = slices.Clone(p.Actions)
	for i := range out.Actions {
		a := &out.Actions[i]
		a.Labels, a.Descriptions = maps.Clone(a.Labels), maps.Clone(a.Descriptions)
		a.Default.Limits = cloneLimits(a.Default.Limits)
	}
	out.Resources = slices.Clone(p.Resources)
	for i := range out.Resources {
		out.Resources[i].Attributes = maps.Clone(out.Resources[i].Attributes)
	}
	return &out
}

// cloneSettings deep-copies a tenant's action settings.
func cloneSettings(m map[string]gatehouse.ActionSetting) map[string]gatehouse.ActionSetting {
	if m == nil {
		return nil
	}
	out := make(map[string]gatehouse.ActionSetting, len(m))
	for name, set := range m {
		if set.Enabled != nil {
			set.Enabled = new(*set.Enabled)
		}
		if set.RequiresConfirmation != nil {
			set.RequiresConfirmation = new(*set.RequiresConfirmation)
		}
		set.Limits = cloneLimits(set.Limits)
		out[name] = set
	}
	return out
}

func cloneLimits(l *gatehouse.ActionLimits) *gatehouse.ActionLimits {
	if l == nil {
		return nil
	}
	c := *l
	if c.MaxCount != nil {
		c.MaxCount = new(*c.MaxCount)
	}
	return &c
}

// unknownRef matches the validator's "unknown KIND "NAME"" problems.
var unknownRef = regexp.MustCompile(`^unknown (\w+) ("(?:[^"\\]|\\.)*")$`)

// ExplainReplaced says, in each problem about an unknown reference that
// current has in a section d replaces, why it is unknown now: a section the
// document holds replaces the stored one as a whole, so a proposal that
// lists one tenant removes the others. problems are those of Validate on
// Merge(current, d), or, with a nil d, those of Parse (which checks only
// references into sections the document holds).
func ExplainReplaced(current *gatehouse.Policy, d *Document, problems []Problem) {
	if current == nil {
		return
	}
	v := &validator{names: map[gatehouse.Kind]map[string]bool{}}
	v.declareAll(current)
	for i := range problems {
		m := unknownRef.FindStringSubmatch(problems[i].Message)
		if m == nil {
			continue
		}
		name, err := strconv.Unquote(m[2])
		kind := gatehouse.Kind(m[1])
		if err != nil || (d != nil && !d.Has(kind)) || !v.names[kind][name] {
			continue
		}
		problems[i].Message += fmt.Sprintf("; the document's %s: section replaces the stored one, which has %s: list it in the document too, or leave the section out",
			kind.Section(), m[2])
	}
}
