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
	// perms must all be held: settings.access_permission and a tool's
	// permission, or the requested permission.
	perms  [2]int32
	nperms int
	// tenant is the tenant index and pos its Euler number; -1 without one.
	tenant, pos int32
	// plan is the effective plan index, -1 if the policy has no plans.
	plan int32
}

// verdict is one subject's outcome.
type verdict struct {
	reason  gatehouse.Reason
	feature string
	plan    string
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
	return s.decide(req, "", false, nil)
}

// CheckTool decides whether req's subject may call tool in req.Tenant;
// req.Permission is ignored. The subject needs settings.access_permission,
// if set, and the tool's permission. An unknown tool is unknown_permission.
func (s *Snapshot) CheckTool(req *gatehouse.Request, tool string) (d gatehouse.Decision) {
	if s == nil {
		return gatehouse.Decision{Reason: gatehouse.ReasonInternalError}
	}
	defer s.recoverDecision(&d)
	return s.decide(req, tool, true, nil)
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
	d := s.decide(req, tool, isTool, tr)
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

// decide is the one decision function behind Check, CheckTool and Explain;
// tr is nil on the hot path.
func (s *Snapshot) decide(req *gatehouse.Request, tool string, isTool bool, tr *tracer) gatehouse.Decision {
	q, d, ok := s.resolve(req, tool, isTool, tr)
	if !ok {
		return d
	}
	return s.evaluate(&q, tr)
}

// resolve is step 1: the request is well-formed and names a known subject
// (and user acted for), permission or tool, and tenant.
func (s *Snapshot) resolve(req *gatehouse.Request, tool string, isTool bool, tr *tracer) (query, gatehouse.Decision, bool) {
	q := query{req: req, tenant: -1, pos: -1, plan: -1}
	if req == nil {
		if tr != nil {
			tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, "the request is missing", nil)
		}
		return q, s.deny(gatehouse.ReasonInvalidRequest), false
	}
	name := req.Permission
	if isTool {
		name = tool
	}
	name = strings.TrimSpace(name)
	if problem := malformed(req, name, isTool); problem != "" {
		if tr != nil {
			tr.add(ruleRequest, outcomeFail, gatehouse.SubjectRef{}, problem, nil)
		}
		return q, s.deny(gatehouse.ReasonInvalidRequest), false
	}
	if tr != nil {
		tr.add(ruleRequest, outcomePass, gatehouse.SubjectRef{}, "the request is well-formed", nil)
	}

	human := int32(-1)
	if !req.OnBehalfOf.IsZero() {
		u, ok := s.lookupUser(req.OnBehalfOf.ID)
		if !ok {
			if tr != nil {
				tr.add(ruleSubject, outcomeFail, req.OnBehalfOf, "no user with this email is in the policy", nil)
			}
			d := s.deny(gatehouse.ReasonUnknownSubject)
			d.Subject = req.OnBehalfOf
			return q, d, false
		}
		if tr != nil {
			tr.add(ruleSubject, outcomePass, s.subjects[u].ref, "the user acted for is known", nil)
		}
		q.subs[0], q.nsubs, human = u, 1, u
	}
	si, ok := s.lookupSubject(req.Subject)
	if !ok {
		if tr != nil {
			tr.add(ruleSubject, outcomeFail, req.Subject, fmt.Sprintf("no %s with this id is in the policy", req.Subject.Type), nil)
		}
		d := s.deny(gatehouse.ReasonUnknownSubject)
		if q.nsubs > 0 {
			d.Subject = req.Subject
		}
		return q, d, false
	}
	if tr != nil {
		tr.add(ruleSubject, outcomePass, s.subjects[si].ref, fmt.Sprintf("the %s is known", req.Subject.Type), nil)
	}
	q.subs[q.nsubs] = si
	q.nsubs++
	if human < 0 && req.Subject.Type == gatehouse.SubjectUser {
		human = si
	}

	if isTool {
		ti, ok := s.toolIdx[name]
		if !ok {
			if tr != nil {
				tr.add(rulePermission, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("tool %q is not in the policy", name), nil)
			}
			return q, s.deny(gatehouse.ReasonUnknownPermission), false
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
			return q, s.deny(gatehouse.ReasonUnknownPermission), false
		}
		q.perms[0], q.nperms = p, 1
	}

	if req.Tenant != "" {
		t, ok := s.tenantIdx[strings.TrimSpace(req.Tenant)]
		if !ok {
			if tr != nil {
				tr.add(ruleTenant, outcomeFail, gatehouse.SubjectRef{}, fmt.Sprintf("tenant %q is not in the policy", req.Tenant), nil)
			}
			return q, s.deny(gatehouse.ReasonUnknownTenant), false
		}
		q.tenant, q.pos = t, s.tenants[t].in
		if tr != nil {
			tr.add(ruleTenant, outcomePass, gatehouse.SubjectRef{}, fmt.Sprintf("tenant %q is known", s.tenants[t].id), nil)
		}
	} else if tr != nil {
		tr.add(ruleTenant, outcomeSkip, gatehouse.SubjectRef{}, "the request names no tenant", nil)
	}
	q.plan = s.effectivePlan(q.tenant, human)
	return q, gatehouse.Decision{}, true
}

// malformed returns what is wrong with req, or "" if it is well-formed.
// name is the trimmed permission or tool.
func malformed(req *gatehouse.Request, name string, isTool bool) string {
	switch req.Subject.Type {
	case gatehouse.SubjectUser, gatehouse.SubjectAgent:
	default:
		return "the subject type must be user or agent"
	}
	if strings.TrimSpace(req.Subject.ID) == "" {
		return "the subject id is empty"
	}
	if !req.OnBehalfOf.IsZero() {
		if req.Subject.Type != gatehouse.SubjectAgent {
			return "only an agent can act on behalf of a user"
		}
		if req.OnBehalfOf.Type != gatehouse.SubjectUser {
			return "on_behalf_of must be a user"
		}
		if strings.TrimSpace(req.OnBehalfOf.ID) == "" {
			return "the on_behalf_of email is empty"
		}
	}
	if name == "" {
		if isTool {
			return "the tool is empty"
		}
		return "the permission is empty"
	}
	if req.Tenant != "" && strings.TrimSpace(req.Tenant) == "" {
		return "the tenant is blank"
	}
	return ""
}

// evaluate runs steps 2–5 for each subject in order; the first denial wins.
func (s *Snapshot) evaluate(q *query, tr *tracer) gatehouse.Decision {
	reason := gatehouse.ReasonGranted
	for i := 0; i < q.nsubs; i++ {
		v := s.evalSubject(q, i, tr)
		if !allows(v.reason) {
			d := gatehouse.Decision{Reason: v.reason, Feature: v.feature, Plan: v.plan, Version: s.version}
			if q.nsubs > 1 {
				d.Subject = s.subjects[q.subs[i]].ref
			}
			return d
		}
		reason = v.reason
	}
	return gatehouse.Decision{Allowed: true, Reason: reason, Version: s.version}
}

// evalSubject runs superuser, visibility, permission and plan for subject i.
func (s *Snapshot) evalSubject(q *query, i int, tr *tracer) verdict {
	sub := &s.subjects[q.subs[i]]
	if sub.superuser {
		if tr != nil {
			tr.add(ruleSuperuser, outcomePass, sub.ref, "a superuser bypasses visibility, roles and plans", nil)
		}
		return verdict{reason: gatehouse.ReasonSuperuser}
	}
	if tr != nil {
		tr.add(ruleSuperuser, outcomeSkip, sub.ref, fmt.Sprintf("the %s is not a superuser", sub.ref.Type), nil)
	}
	if q.tenant >= 0 {
		if !sub.sees(q.tenant) {
			if tr != nil {
				tr.add(ruleVisibility, outcomeFail, sub.ref, fmt.Sprintf("tenant %q is not among the tenants the %s may see", s.tenants[q.tenant].id, sub.ref.Type), nil)
			}
			return verdict{reason: gatehouse.ReasonTenantNotVisible}
		}
		if tr != nil {
			tr.add(ruleVisibility, outcomePass, sub.ref, fmt.Sprintf("the %s may see tenant %q", sub.ref.Type, s.tenants[q.tenant].id), nil)
		}
	} else if tr != nil {
		tr.add(ruleVisibility, outcomeSkip, sub.ref, "the request names no tenant", nil)
	}
	for k := 0; k < q.nperms; k++ {
		if v := s.evalPermission(q, i, sub, q.perms[k], tr); v.reason != gatehouse.ReasonGranted {
			return v
		}
	}
	return verdict{reason: gatehouse.ReasonGranted}
}

// evalPermission checks that sub holds p (unconditionally, else through a
// condition) and that the effective plan includes p's feature.
func (s *Snapshot) evalPermission(q *query, i int, sub *subject, p int32, tr *tracer) verdict {
	if s.holds(sub, p, q.pos) {
		if tr != nil {
			s.tracePermission(q, sub, p, tr)
		}
	} else {
		granted, tried := s.evalConditions(q, i, sub, p, tr)
		if !granted {
			if tried {
				if tr != nil {
					tr.add(rulePermission, outcomeFail, sub.ref, fmt.Sprintf("permission %q is given only under conditions that did not hold", s.perms[p].name), nil)
				}
				return verdict{reason: gatehouse.ReasonConditionFailed}
			}
			if tr != nil {
				tr.add(rulePermission, outcomeFail, sub.ref, fmt.Sprintf("no role, bundle or grant gives permission %q%s", s.perms[p].name, s.inTenant(q.tenant)), nil)
			}
			return verdict{reason: gatehouse.ReasonPermissionMissing}
		}
	}
	f := s.perms[p].feature
	if f < 0 {
		if tr != nil {
			tr.add(rulePlan, outcomeSkip, sub.ref, fmt.Sprintf("permission %q needs no feature", s.perms[p].name), nil)
		}
		return verdict{reason: gatehouse.ReasonGranted}
	}
	lowest := s.features[f].minPlan
	if q.plan >= 0 && lowest >= 0 && lowest <= q.plan {
		if tr != nil {
			tr.add(rulePlan, outcomePass, sub.ref, fmt.Sprintf("plan %q includes feature %q", s.plans[q.plan], s.features[f].name), nil)
		}
		return verdict{reason: gatehouse.ReasonGranted}
	}
	v := verdict{reason: gatehouse.ReasonPlanRequired, feature: s.features[f].name}
	if lowest >= 0 {
		v.plan = s.plans[lowest]
	}
	if tr != nil {
		have := "no plan"
		if q.plan >= 0 {
			have = fmt.Sprintf("plan %q", s.plans[q.plan])
		}
		want := "no plan includes it"
		if v.plan != "" {
			want = fmt.Sprintf("the lowest plan that includes it is %q", v.plan)
		}
		tr.add(rulePlan, outcomeFail, sub.ref, fmt.Sprintf("permission %q needs feature %q, which %s does not include; %s", s.perms[p].name, v.feature, have, want), nil)
	}
	return v
}

// evalConditions tries every conditional source of sub that would give p in
// the request's tenant. Evaluation errors count as false.
func (s *Snapshot) evalConditions(q *query, i int, sub *subject, p int32, tr *tracer) (granted, tried bool) {
	var vars map[string]any
	for _, src := range sub.conds {
		if !s.applies(src.tenant, q.pos) || !s.gives(src, p) {
			continue
		}
		tried = true
		if vars == nil {
			vars = s.conditionVars(q, sub, i == q.nsubs-1, p)
		}
		c := &s.conds[src.cond]
		ok, err := evalCondition(c.prg, vars)
		if tr != nil {
			switch {
			case err != nil:
				tr.add(ruleCondition, outcomeFail, sub.ref, fmt.Sprintf("condition %s failed to evaluate: %v", c.expr, err), s.sourcePath(src, p))
			case ok:
				tr.add(ruleCondition, outcomePass, sub.ref, fmt.Sprintf("condition %s is true", c.expr), s.sourcePath(src, p))
			default:
				tr.add(ruleCondition, outcomeFail, sub.ref, fmt.Sprintf("condition %s is false", c.expr), s.sourcePath(src, p))
			}
		}
		if ok {
			if tr != nil {
				tr.add(rulePermission, outcomePass, sub.ref, fmt.Sprintf("permission %q is given under a condition that holds", s.perms[p].name), s.sourcePath(src, p))
			}
			return true, true
		}
	}
	return false, tried
}

// effectivePlan is the plan of the tenant (nearest ancestor-or-self with
// one), else the human user's own plan, else the lowest plan.
func (s *Snapshot) effectivePlan(tenant, human int32) int32 {
	if tenant >= 0 {
		if p := s.tenants[tenant].plan; p >= 0 {
			return p
		}
	}
	if human >= 0 {
		if p := s.subjects[human].plan; p >= 0 {
			return p
		}
	}
	if len(s.plans) > 0 {
		return 0
	}
	return -1
}

func (s *Snapshot) lookupSubject(ref gatehouse.SubjectRef) (int32, bool) {
	if ref.Type == gatehouse.SubjectUser {
		return s.lookupUser(ref.ID)
	}
	i, ok := s.agentIdx[strings.TrimSpace(ref.ID)]
	return i, ok
}

// maxStackEmail is the longest email lower-cased on the stack.
const maxStackEmail = 128

// lookupUser finds a user by email, trimmed and case-insensitively, without
// allocating for ASCII emails of up to maxStackEmail bytes.
func (s *Snapshot) lookupUser(email string) (int32, bool) {
	email = strings.TrimSpace(email)
	upper := false
	for i := 0; i < len(email); i++ {
		c := email[i]
		if c >= utf8.RuneSelf {
			i, ok := s.userIdx[strings.ToLower(email)]
			return i, ok
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		i, ok := s.userIdx[email]
		return i, ok
	}
	if len(email) > maxStackEmail {
		i, ok := s.userIdx[strings.ToLower(email)]
		return i, ok
	}
	var buf [maxStackEmail]byte
	for i := 0; i < len(email); i++ {
		c := email[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	// The compiler does not allocate for a map index by string(bytes).
	i, ok := s.userIdx[string(buf[:len(email)])]
	return i, ok
}
