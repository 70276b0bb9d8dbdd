package engine

import (
	"fmt"

	"github.com/gatehouse/gatehouse"
)

// tracer records explain steps. decide receives a nil tracer on the hot path
// and builds step text only behind a nil check, so Check never formats.
type tracer struct {
	steps []gatehouse.ExplainStep
}

func (t *tracer) add(rule, outcome string, sub gatehouse.SubjectRef, detail string, path []string) {
	t.steps = append(t.steps, gatehouse.ExplainStep{
		Rule: rule, Outcome: outcome, Subject: sub, Detail: detail, Path: path,
	})
}

// tracePermission records the first unconditional source that gives p.
func (s *Snapshot) tracePermission(q *query, sub *subject, h *subjectHot, p int32, tr *tracer) {
	var path []string
	for _, e := range s.uncond(sub, h) {
		if s.applies(e.tenant, q.pos) && s.gives(e, p) {
			path = s.sourcePath(source{entry: e, cond: -1}, p)
			break
		}
	}
	tr.add(rulePermission, outcomePass, sub.ref, fmt.Sprintf("permission %q is held%s", s.perms[p].name, s.inTenant(q.tenant)), path)
}

// sourcePath is how src gives p: role → bundle → permission, or the grant.
func (s *Snapshot) sourcePath(src source, p int32) []string {
	label := s.sourceLabel(src)
	if src.isGrant() {
		return []string{label}
	}
	perm := "permission " + s.perms[p].name
	r := &s.roles[src.ref]
	for _, rp := range r.perms {
		if rp == p {
			return []string{label, perm}
		}
	}
	for _, b := range r.bundles {
		for _, bp := range s.bundles[b].perms {
			if bp == p {
				return []string{label, "bundle " + s.bundles[b].name, perm}
			}
		}
	}
	return []string{label, perm}
}

// sourceLabel names a source with its scope and condition, e.g.
// "role Agent Supervisor (tenant acme)" or "grant fetch_report (global, condition …)".
func (s *Snapshot) sourceLabel(src source) string {
	scope := "global"
	if src.tenant >= 0 {
		scope = "tenant " + s.tenants[src.tenant].id
	}
	if src.cond >= 0 {
		scope += ", condition " + s.conds[src.cond].expr
	}
	if src.isGrant() {
		return fmt.Sprintf("grant %s (%s)", s.perms[^src.ref].name, scope)
	}
	return fmt.Sprintf("role %s (%s)", s.roles[src.ref].name, scope)
}

// inTenant is " in tenant ID" or "" for a tenant-less request.
func (s *Snapshot) inTenant(t int32) string {
	if t < 0 {
		return ""
	}
	return fmt.Sprintf(" in tenant %q", s.tenants[t].id)
}

// traceCondition records one condition's outcome.
func (s *Snapshot) traceCondition(sub *subject, src source, p int32, ok bool, err error, tr *tracer) {
	c := &s.conds[src.cond]
	path := s.sourcePath(src, p)
	switch {
	case err != nil:
		tr.add(ruleCondition, outcomeFail, sub.ref, fmt.Sprintf("condition %s failed to evaluate: %v", c.expr, err), path)
	case ok:
		tr.add(ruleCondition, outcomePass, sub.ref, fmt.Sprintf("condition %s is true", c.expr), path)
		tr.add(rulePermission, outcomePass, sub.ref, fmt.Sprintf("permission %q is given under a condition that holds", s.perms[p].name), path)
	default:
		tr.add(ruleCondition, outcomeFail, sub.ref, fmt.Sprintf("condition %s is false", c.expr), path)
	}
}

// tracePlanRequired records that the effective plan lacks p's feature f.
func (s *Snapshot) tracePlanRequired(q *query, sub *subject, p, f int32, tr *tracer) {
	feature, lowest := s.featurePlan(f)
	have := "no plan"
	if q.plan >= 0 {
		have = fmt.Sprintf("plan %q", s.plans[q.plan])
	}
	want := "no plan includes it"
	if lowest != "" {
		want = fmt.Sprintf("the lowest plan that includes it is %q", lowest)
	}
	tr.add(rulePlan, outcomeFail, sub.ref, fmt.Sprintf("permission %q needs feature %q, which %s does not include; %s", s.perms[p].name, feature, have, want), nil)
}
