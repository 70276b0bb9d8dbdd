package engine

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Explain rules and outcomes (gatehouse.ExplainStep).
const (
	ruleRequest    = "request"
	ruleSubject    = "subject"
	ruleTenant     = "tenant"
	ruleResource   = "resource"
	ruleVisibility = "visibility"
	ruleSuperuser  = "superuser"
	rulePermission = "permission"
	ruleCondition  = "condition"
	rulePlan       = "plan"

	outcomePass = "pass"
	outcomeFail = "fail"
	outcomeSkip = "skip"
)

// query is a request resolved to snapshot indices.
type query struct {
	req *gatehouse.Request
	// subs are the subjects to evaluate in order: the user an agent acts
	// for, then the request's subject.
	subs  [2]int32
	nsubs int
	// recs are the offsets of the subjects' records.
	recs [2]int32
	// perms must all be held: settings.access_permission and a tool's
	// permission, or the requested permission.
	perms  [2]int32
	nperms int
	// tenant is the tenant index and pos its Euler number; -1 without one.
	tenant, pos int32
	// plan is the effective plan index, -1 if the policy has no plans.
	plan int32
	// resource is the index of the request's resource among the policy's
	// resources, or -1.
	resource int32
}

func allows(r gatehouse.Reason) bool {
	return r == gatehouse.ReasonGranted || r == gatehouse.ReasonSuperuser
}

// Check decides req. It never panics and does not allocate unless a CEL
// condition has to be evaluated. A nil snapshot denies with internal_error.
func (s *Snapshot) Check(req *gatehouse.Request) (d gatehouse.Decision) {
	if s == nil {
		return gatehouse.Decision{Reason: gatehouse.ReasonInternalError}
	}
	defer s.recoverDecision(&d)
	d.Version = s.version
	s.decide(&d, req, "", false, nil)
	return d
}

// CheckTool decides whether req's subject may call tool in req.Tenant;
// req.Permission is ignored. The subject needs settings.access_permission,
// if set, and the tool's permission. An unknown tool is unknown_permission.
func (s *Snapshot) CheckTool(req *gatehouse.Request, tool string) (d gatehouse.Decision) {
	if s == nil {
		return gatehouse.Decision{Reason: gatehouse.ReasonInternalError}
	}
	defer s.recoverDecision(&d)
	d.Version = s.version
	s.decide(&d, req, tool, true, nil)
	return d
}

// Explain decides req like Check and records each rule it applied.
func (s *Snapshot) Explain(req *gatehouse.Request) gatehouse.Explanation {
	return s.explain(req, "", false)
}

// ExplainTool decides like CheckTool and records each rule it applied.
func (s *Snapshot) ExplainTool(req *gatehouse.Request, tool string) gatehouse.Explanation {
	return s.explain(req, tool, true)
}

func (s *Snapshot) explain(req *gatehouse.Request, tool string, isTool bool) (e gatehouse.Explanation) {
	tr := &tracer{steps: []gatehouse.ExplainStep{}}
	if s == nil {
		tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, "no policy snapshot is loaded", nil)
		return gatehouse.Explanation{Decision: gatehouse.Decision{Reason: gatehouse.ReasonInternalError}, Steps: tr.steps}
	}
	defer func() {
		if r := recover(); r != nil {
			tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("internal error: %v", r), nil)
			e = gatehouse.Explanation{Decision: s.deny(gatehouse.ReasonInternalError), Steps: tr.steps}
		}
	}()
	d := gatehouse.Decision{Version: s.version}
	s.decide(&d, req, tool, isTool, tr)
	return gatehouse.Explanation{Decision: d, Steps: tr.steps}
}

// recoverDecision turns a panic into an internal_error denial. The engine is
// written so that it never panics; this is the last line of defence.
func (s *Snapshot) recoverDecision(d *gatehouse.Decision) {
	if r := recover(); r != nil {
		*d = s.deny(gatehouse.ReasonInternalError)
	}
}

func (s *Snapshot) deny(r gatehouse.Reason) gatehouse.Decision {
	return gatehouse.Decision{Reason: r, Version: s.version}
}

// decide is the one decision function behind Check, CheckTool and Explain.
// It fills d, whose Version the caller has set; tr is nil on the hot path.
func (s *Snapshot) decide(d *gatehouse.Decision, req *gatehouse.Request, tool string, isTool bool, tr *tracer) {
	var q query
	if s.resolve(&q, d, req, tool, isTool, tr) {
		s.evaluate(&q, d, tr)
	}
}

// resolve is step 1: the request is well-formed and names a known subject
// (and user acted for), permission or tool, and tenant. It fills q, or sets
// d's reason and returns false.
func (s *Snapshot) resolve(q *query, d *gatehouse.Decision, req *gatehouse.Request, tool string, isTool bool, tr *tracer) bool {
	q.req, q.tenant, q.pos, q.plan, q.resource = req, -1, -1, -1, -1
	if req == nil {
		if tr != nil {
			tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, "the request is missing", nil)
		}
		d.Reason = gatehouse.ReasonInvalidRequest
		return false
	}
	name := req.Permission
	if isTool {
		name = tool
	}
	subID := trimSpace(req.Subject.ID)
	oboID := trimSpace(req.OnBehalfOf.ID)
	name = trimSpace(name)
	tenant := trimSpace(req.Tenant)
	if problem := malformed(req, subID, oboID, name, tenant, isTool); problem != "" {
		if tr != nil {
			tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, problem, nil)
		}
		d.Reason = gatehouse.ReasonInvalidRequest
		return false
	}
	if tr != nil {
		tr.add(ruleRequest, outcomePass, gatehouse.SubjectRef{}, "the request is well-formed", nil)
	}

	// human is the offset of the record of the user decided for, or -1.
	human := int32(-1)
	if req.OnBehalfOf.Type != "" {
		u, rec, ok := s.lookupTrimmedUser(oboID)
		if !ok {
			if tr != nil {
				tr.add(ruleSubject, outcomeFail, req.OnBehalfOf, "no user with this email is in the policy", nil)
			}
			d.Reason, d.Subject = gatehouse.ReasonUnknownSubject, req.OnBehalfOf
			return false
		}
		if tr != nil {
			tr.add(ruleSubject, outcomePass, s.subjects.at(u).ref, "the user acted for is known", nil)
		}
		q.subs[0], q.recs[0], q.nsubs, human = u, rec, 1, rec
	}
	var si, rec int32
	var ok bool
	if req.Subject.Type == gatehouse.SubjectUser {
		si, rec, ok = s.lookupTrimmedUser(subID)
	} else if si, ok = s.lookupAgent(subID); ok {
		rec = *s.recOff.at(si)
	}
	if !ok {
		if tr != nil {
			tr.add(ruleSubject, outcomeFail, req.Subject, fmt.Sprintf("no %s with this id is in the policy", req.Subject.Type), nil)
		}
		d.Reason = gatehouse.ReasonUnknownSubject
		if q.nsubs > 0 {
			d.Subject = req.Subject
		}
		return false
	}
	if tr != nil {
		tr.add(ruleSubject, outcomePass, s.subjects.at(si).ref, fmt.Sprintf("the %s is known", req.Subject.Type), nil)
	}
	q.subs[q.nsubs], q.recs[q.nsubs] = si, rec
	q.nsubs++
	if human < 0 && req.Subject.Type == gatehouse.SubjectUser {
		human = rec
	}

	if isTool {
		ti, ok := s.toolIdx[name]
		if !ok {
			if tr != nil {
				tr.add(rulePermission, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("tool %q is not in the policy", name), nil)
			}
			d.Reason = gatehouse.ReasonUnknownPermission
			return false
		}
		p := s.tools[ti].perm
		if s.access >= 0 && s.access != p {
			q.perms[q.nperms] = s.access
			q.nperms++
		}
		q.perms[q.nperms] = p
		q.nperms++
	} else {
		p, ok := s.permIdx[name]
		if !ok {
			if tr != nil {
				tr.add(rulePermission, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("permission %q is not declared", name), nil)
			}
			d.Reason = gatehouse.ReasonUnknownPermission
			return false
		}
		q.perms[0], q.nperms = p, 1
	}

	if tenant != "" {
		t, ok := s.tenantIdx[tenant]
		if !ok {
			if tr != nil {
				tr.add(ruleTenant, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("tenant %q is not in the policy", tenant), nil)
			}
			d.Reason = gatehouse.ReasonUnknownTenant
			return false
		}
		q.tenant, q.pos = t, s.tenants[t].in
		if tr != nil {
			tr.add(ruleTenant, outcomePass, gatehouse.SubjectRef{}, fmt.Sprintf("tenant %q is known", s.tenants[t].id), nil)
		}
	}
	if !s.resolveResource(q, d, tr) {
		return false
	}
	if q.tenant < 0 && tr != nil {
		tr.add(ruleTenant, outcomeSkip, gatehouse.SubjectRef{}, "the request names no tenant", nil)
	}
	humanPlan := int32(-1)
	if human >= 0 {
		humanPlan = s.records[human+recFlags].tenant
	}
	q.plan = s.effectivePlan(q.tenant, humanPlan)
	return true
}

// resolveResource finds the request's resource among the policy's. A
// resource type the policy declares is closed: an id it does not declare is
// unknown_resource. Other types are the application's alone. A resource
// that belongs to a tenant is decided in that tenant; a request
// that names a tenant must name that one or an ancestor of it, else it is
// invalid: it asks about data outside the tenant it speaks for.
func (s *Snapshot) resolveResource(q *query, d *gatehouse.Decision, tr *tracer) bool {
	byID, declared := s.resourceIdx[q.req.Resource.Type]
	if !declared {
		return true
	}
	r, ok := byID[q.req.Resource.ID]
	if !ok {
		// The policy lists every resource of a type it declares.
		if tr != nil {
			tr.add(ruleResource, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("the policy declares no %s %q", q.req.Resource.Type, q.req.Resource.ID), nil)
		}
		d.Reason = gatehouse.ReasonUnknownResource
		return false
	}
	q.resource = r
	rt := s.resources[r].tenant
	if rt < 0 {
		return true
	}
	if q.tenant >= 0 && !s.within(rt, q.tenant) {
		if tr != nil {
			tr.add(ruleTenant, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("%s %q belongs to tenant %q, outside the request's tenant %q",
				q.req.Resource.Type, q.req.Resource.ID, s.tenants[rt].id, s.tenants[q.tenant].id), nil)
		}
		d.Reason = gatehouse.ReasonInvalidRequest
		return false
	}
	if tr != nil {
		tr.add(ruleTenant, outcomePass, gatehouse.SubjectRef{}, fmt.Sprintf("%s %q belongs to tenant %q; the request is decided there",
			q.req.Resource.Type, q.req.Resource.ID, s.tenants[rt].id), nil)
	}
	q.tenant, q.pos = rt, s.tenants[rt].in
	return true
}

// within reports whether tenant t is root or in root's subtree.
func (s *Snapshot) within(t, root int32) bool {
	a, b := &s.tenants[root], &s.tenants[t]
	return a.in <= b.in && b.in <= a.out
}

// TenantWithin reports whether tenant is root or one of its descendants;
// false when either is unknown.
func (s *Snapshot) TenantWithin(tenant, root string) bool {
	if s == nil {
		return false
	}
	t, ok := s.tenantIdx[tenant]
	r, rok := s.tenantIdx[root]
	return ok && rok && s.within(t, r)
}

// malformed returns what is wrong with req, or "" if it is well-formed.
// The ids, name (permission or tool) and tenant are req's, trimmed.
func malformed(req *gatehouse.Request, subID, oboID, name, tenant string, isTool bool) string {
	switch req.Subject.Type {
	case gatehouse.SubjectUser, gatehouse.SubjectAgent:
	default:
		return "the subject type must be user or agent"
	}
	if subID == "" {
		return "the subject id is empty"
	}
	if !req.OnBehalfOf.IsZero() {
		if req.Subject.Type != gatehouse.SubjectAgent {
			return "only an agent can act on behalf of a user"
		}
		if req.OnBehalfOf.Type != gatehouse.SubjectUser {
			return "on_behalf_of must be a user"
		}
		if oboID == "" {
			return "the on_behalf_of email is empty"
		}
	}
	if name == "" {
		if isTool {
			return "the tool is empty"
		}
		return "the permission is empty"
	}
	if req.Tenant != "" && tenant == "" {
		return "the tenant is blank"
	}
	return ""
}

// evaluate runs steps 2–5 for each subject in order; the first denial wins.
func (s *Snapshot) evaluate(q *query, d *gatehouse.Decision, tr *tracer) {
	reason := gatehouse.ReasonGranted
	for i := 0; i < q.nsubs; i++ {
		r, perm, feature := s.evalSubject(q, i, tr)
		if !allows(r) {
			d.Reason = r
			if q.nsubs > 1 {
				d.Subject = s.subjects.at(q.subs[i]).ref
			}
			if perm >= 0 {
				d.Permission = s.perms[perm].name
			}
			if feature >= 0 {
				d.Feature, d.Plan = s.featurePlan(feature)
			}
			return
		}
		reason = r
	}
	d.Allowed, d.Reason = true, reason
}

// featurePlan returns feature f's name and the lowest plan that has it.
func (s *Snapshot) featurePlan(f int32) (feature, plan string) {
	ft := &s.features[f]
	if ft.minPlan >= 0 {
		plan = s.plans[ft.minPlan]
	}
	return ft.name, plan
}

// evalSubject runs superuser, visibility, permission and plan for subject i.
// When a permission denies it also returns that permission, and for
// plan_required the missing feature; -1 otherwise.
func (s *Snapshot) evalSubject(q *query, i int, tr *tracer) (r gatehouse.Reason, perm, feature int32) {
	hot, sub := s.hot(q.recs[i]), s.subjects.at(q.subs[i])
	h := &hot
	if h.superuser {
		if tr != nil {
			tr.add(ruleSuperuser, outcomePass, sub.ref, "a superuser bypasses visibility, roles and plans", nil)
		}
		return gatehouse.ReasonSuperuser, -1, -1
	}
	if tr != nil {
		tr.add(ruleSuperuser, outcomeSkip, sub.ref, fmt.Sprintf("the %s is not a superuser", sub.ref.Type), nil)
	}
	if q.tenant >= 0 {
		if !s.sees(h, q.tenant) {
			if tr != nil {
				tr.add(ruleVisibility, outcomeFail, sub.ref, fmt.Sprintf("tenant %q is not among the tenants the %s may see", s.tenants[q.tenant].id, sub.ref.Type), nil)
			}
			return gatehouse.ReasonTenantNotVisible, -1, -1
		}
		if tr != nil {
			tr.add(ruleVisibility, outcomePass, sub.ref, fmt.Sprintf("the %s may see tenant %q", sub.ref.Type, s.tenants[q.tenant].id), nil)
		}
	} else if tr != nil {
		tr.add(ruleVisibility, outcomeSkip, sub.ref, "the request names no tenant", nil)
	}
	for k := 0; k < q.nperms; k++ {
		if r, feature := s.evalPermission(q, i, h, sub, q.perms[k], tr); r != gatehouse.ReasonGranted {
			return r, q.perms[k], feature
		}
	}
	return gatehouse.ReasonGranted, -1, -1
}

// evalPermission checks that sub holds p (unconditionally, else through a
// condition) and that the effective plan includes p's feature.
func (s *Snapshot) evalPermission(q *query, i int, h *subjectHot, sub *subject, p int32, tr *tracer) (gatehouse.Reason, int32) {
	if s.holds(h, p, q.pos) {
		if tr != nil {
			s.tracePermission(q, sub, h, p, tr)
		}
	} else {
		granted, tried := false, false
		if h.hasConds {
			granted, tried = s.evalConditions(q, i, sub, p, tr)
		}
		if !granted {
			if tried {
				if tr != nil {
					tr.add(rulePermission, outcomeFail, sub.ref, fmt.Sprintf("permission %q is given only under conditions that did not hold", s.perms[p].name), nil)
				}
				return gatehouse.ReasonConditionFailed, -1
			}
			if tr != nil {
				tr.add(rulePermission, outcomeFail, sub.ref, fmt.Sprintf("no role, bundle or grant gives permission %q%s", s.perms[p].name, s.inTenant(q.tenant)), nil)
			}
			return gatehouse.ReasonPermissionMissing, -1
		}
	}
	f := s.perms[p].feature
	if f < 0 {
		if tr != nil {
			tr.add(rulePlan, outcomeSkip, sub.ref, fmt.Sprintf("permission %q needs no feature", s.perms[p].name), nil)
		}
		return gatehouse.ReasonGranted, -1
	}
	if lowest := s.features[f].minPlan; q.plan >= 0 && lowest >= 0 && lowest <= q.plan {
		if tr != nil {
			tr.add(rulePlan, outcomePass, sub.ref, fmt.Sprintf("plan %q includes feature %q", s.plans[q.plan], s.features[f].name), nil)
		}
		return gatehouse.ReasonGranted, -1
	}
	if tr != nil {
		s.tracePlanRequired(q, sub, p, f, tr)
	}
	return gatehouse.ReasonPlanRequired, f
}

// evalConditions tries every conditional source of sub that would give p in
// the request's tenant. Evaluation errors count as false.
func (s *Snapshot) evalConditions(q *query, i int, sub *subject, p int32, tr *tracer) (granted, tried bool) {
	var vars map[string]any
	for _, src := range s.condSources(sub) {
		if !s.applies(src.tenant, q.pos) || !s.gives(src.entry, p) {
			continue
		}
		tried = true
		if vars == nil {
			vars = s.conditionVars(q, sub, i == q.nsubs-1, p)
		}
		c := &s.conds[src.cond]
		ok, err := evalCondition(c.prg, vars)
		if tr != nil {
			s.traceCondition(sub, src, p, ok, err, tr)
		}
		if ok {
			return true, true
		}
	}
	return false, tried
}

// effectivePlan is the plan of the tenant (nearest ancestor-or-self with
// one), else the human user's own plan (-1 for none), else the lowest plan.
func (s *Snapshot) effectivePlan(tenant, humanPlan int32) int32 {
	if tenant >= 0 {
		if p := s.tenants[tenant].plan; p >= 0 {
			return p
		}
	}
	if humanPlan >= 0 {
		return humanPlan
	}
	if len(s.plans) > 0 {
		return 0
	}
	return -1
}

// trimSpace is strings.TrimSpace with a fast path for the usual string that
// starts and ends with a printable ASCII byte.
func trimSpace(s string) string {
	if s == "" || (' ' < s[0] && s[0] < utf8.RuneSelf && ' ' < s[len(s)-1] && s[len(s)-1] < utf8.RuneSelf) {
		return s
	}
	return strings.TrimSpace(s)
}

// lookupUser finds a user by email, trimmed and case-insensitively.
func (s *Snapshot) lookupUser(email string) (int32, bool) {
	i, _, ok := s.lookupTrimmedUser(trimSpace(email))
	return i, ok
}

// lookupTrimmedUser finds a user by a trimmed id: the email,
// case-insensitively, or else one of the user's aliases, exactly. It
// returns the user's index and the offset of its record.
func (s *Snapshot) lookupTrimmedUser(id string) (user, rec int32, ok bool) {
	if s.over != nil {
		return s.lookupDerivedUser(id)
	}
	if i, rec, ok := s.lookupEmail(id); ok {
		return i, rec, true
	}
	if i, ok := s.aliasIdx[id]; ok {
		return i, *s.recOff.at(i), true
	}
	return 0, 0, false
}
