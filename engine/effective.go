package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse"
)

// errNoSnapshot is returned by methods called on a nil snapshot.
var errNoSnapshot = errors.New("engine: no policy snapshot is loaded")

// Effective returns everything subject may do in tenant ("" for a
// tenant-less answer): each permission and tool decided as Check and
// CheckTool would decide a request without resource, context or properties.
// It returns an error wrapping gatehouse.ErrNotFound for an unknown subject
// or tenant and gatehouse.ErrInvalid for a malformed subject.
func (s *Snapshot) Effective(subject gatehouse.SubjectRef, tenant string) (e gatehouse.Effective, err error) {
	if s == nil {
		return gatehouse.Effective{}, errNoSnapshot
	}
	defer func() {
		if r := recover(); r != nil {
			e, err = gatehouse.Effective{}, fmt.Errorf("effective %s: internal error: %v", subject, r)
		}
	}()
	if strings.TrimSpace(subject.ID) == "" {
		return gatehouse.Effective{}, gatehouse.Invalidf("effective: empty subject id")
	}
	var si int32
	var ok bool
	switch subject.Type {
	case gatehouse.SubjectUser:
		si, ok = s.lookupUser(subject.ID)
	case gatehouse.SubjectAgent:
		si, ok = s.lookupAgent(strings.TrimSpace(subject.ID))
	default:
		return gatehouse.Effective{}, gatehouse.Invalidf("effective: subject type %q is not user or agent", subject.Type)
	}
	if !ok {
		return gatehouse.Effective{}, gatehouse.NotFoundf("%s %q", subject.Type, subject.ID)
	}
	sub := s.subjects.at(si)
	q := query{subs: [2]int32{si}, nsubs: 1, tenant: -1, pos: -1, resource: -1}
	req := gatehouse.Request{Subject: sub.ref}
	if tenant = strings.TrimSpace(tenant); tenant != "" {
		t, ok := s.tenantIdx[tenant]
		if !ok {
			return gatehouse.Effective{}, gatehouse.NotFoundf("tenant %q", tenant)
		}
		q.tenant, q.pos = t, s.tenants[t].in
		req.Tenant = tenant
	}
	q.req = &req
	hot := s.hotAt(si)
	q.recs[0] = *s.recOff.at(si)
	humanPlan := int32(-1)
	if sub.ref.Type == gatehouse.SubjectUser {
		humanPlan = hot.plan
	}
	q.plan = s.effectivePlan(q.tenant, humanPlan)

	e = gatehouse.Effective{
		Subject:     sub.ref,
		Tenant:      tenant,
		Superuser:   hot.superuser,
		Permissions: []string{},
		Tools:       make([]gatehouse.ToolAccess, 0, len(s.tools)),
		Flags:       make(map[string]bool),
		Version:     s.version,
	}
	if q.plan >= 0 {
		e.Plan = s.plans[q.plan]
		e.PlanSource, e.PlanFrom = s.planSource(q.tenant, humanPlan)
		for _, f := range s.featuresByName {
			if s.features[f].minPlan <= q.plan {
				e.Features = append(e.Features, s.features[f].name)
			}
		}
	}
	for _, p := range s.permsByName {
		q.perms[0], q.nperms = p, 1
		req.Permission = s.perms[p].name
		switch r, _, f := s.evalSubject(&q, 0, nil); r {
		case gatehouse.ReasonGranted, gatehouse.ReasonSuperuser:
			e.Permissions = append(e.Permissions, s.perms[p].name)
			if f := s.perms[p].flag; f != "" {
				e.Flags[f] = true
			}
		case gatehouse.ReasonPlanRequired:
			feature, plan := s.featurePlan(f)
			e.Locked = append(e.Locked, gatehouse.LockedPermission{Permission: s.perms[p].name, Feature: feature, Plan: plan})
		}
		if f := s.perms[p].flag; f != "" && !e.Flags[f] {
			e.Flags[f] = false
		}
	}
	for _, t := range s.tools {
		q.nperms = 0
		if s.access >= 0 && s.access != t.perm {
			q.perms[0], q.nperms = s.access, 1
		}
		q.perms[q.nperms] = t.perm
		q.nperms++
		req.Permission = s.perms[t.perm].name
		r, _, f := s.evalSubject(&q, 0, nil)
		ta := gatehouse.ToolAccess{Tool: t.name, Flag: t.flag, Allowed: allows(r), Reason: r}
		if f >= 0 {
			_, ta.Plan = s.featurePlan(f)
		}
		e.Tools = append(e.Tools, ta)
		if t.flag != "" {
			// Tools sharing a flag: the flag is on if any of them is allowed.
			e.Flags[t.flag] = e.Flags[t.flag] || ta.Allowed
		}
	}
	return e, nil
}

// planSource says why effectivePlan(tenant, humanPlan) applies and, for an
// inherited plan, which ancestor's it is.
func (s *Snapshot) planSource(tenant, humanPlan int32) (source, from string) {
	if tenant >= 0 {
		switch f := s.tenants[tenant].planFrom; {
		case f == tenant:
			return gatehouse.PlanSourceTenant, ""
		case f >= 0:
			return gatehouse.PlanSourceInherited, s.tenants[f].id
		}
	}
	if humanPlan >= 0 {
		return gatehouse.PlanSourceUser, ""
	}
	return gatehouse.PlanSourceDefault, ""
}

// Tenant returns the summary of the tenant with id, false if there is none.
func (s *Snapshot) Tenant(id string) (gatehouse.TenantSummary, bool) {
	if s == nil {
		return gatehouse.TenantSummary{}, false
	}
	t, ok := s.tenantIdx[strings.TrimSpace(id)]
	if !ok {
		return gatehouse.TenantSummary{}, false
	}
	ti := &s.tenants[t]
	ts := gatehouse.TenantSummary{ID: ti.id, Title: ti.name}
	if ts.Title == "" {
		ts.Title = ti.id
	}
	if ti.parent >= 0 {
		ts.Parent = s.tenants[ti.parent].id
	}
	if ti.plan >= 0 {
		ts.Plan = s.plans[ti.plan]
		if ti.planFrom != t {
			ts.PlanFrom = s.tenants[ti.planFrom].id
		}
	}
	return ts, true
}

// PermissionTitle is the title the policy gives the permission, else its
// name.
func (s *Snapshot) PermissionTitle(name string) string {
	if s != nil {
		if p, ok := s.permIdx[name]; ok && s.perms[p].title != "" {
			return s.perms[p].title
		}
	}
	return name
}

// ToolTitle is the title the policy gives the tool, else its name.
func (s *Snapshot) ToolTitle(name string) string {
	if t, ok := s.ToolAction(name); ok && t.Title != "" {
		return t.Title
	}
	return name
}

// VisibleTenants returns the tenant ids the user with email may see, sorted
// (seed 003): every tenant for a superuser, exactly the user's own list if
// it has one, else settings.default_tenants — also for an email the policy
// does not know. A blank email sees nothing (nil).
func (s *Snapshot) VisibleTenants(email string) []string {
	if s == nil || strings.TrimSpace(email) == "" {
		return nil
	}
	visible := s.defaultVisible
	if u, ok := s.lookupUser(email); ok {
		h := s.hotAt(u)
		if h.superuser {
			return slices.Clone(s.tenantNames)
		}
		visible = h.visible
	}
	ids := s.visible(visible)
	out := make([]string, len(ids))
	for i, t := range ids {
		out[i] = s.tenants[t].id
	}
	slices.Sort(out)
	return out
}

// AgentTenants returns the tenant ids the agent with id may act in,
// sorted; nil for an unknown agent.
func (s *Snapshot) AgentTenants(id string) []string {
	if s == nil {
		return nil
	}
	a, ok := s.lookupAgent(strings.TrimSpace(id))
	if !ok {
		return nil
	}
	h := s.hotAt(a)
	if h.superuser {
		return slices.Clone(s.tenantNames)
	}
	ids := s.visible(h.visible)
	out := make([]string, len(ids))
	for i, t := range ids {
		out[i] = s.tenants[t].id
	}
	slices.Sort(out)
	return out
}

// IsSuperuser reports whether email names a superuser, case-insensitively.
func (s *Snapshot) IsSuperuser(email string) bool {
	if s == nil {
		return false
	}
	u, ok := s.lookupUser(email)
	return ok && s.hotAt(u).superuser
}
