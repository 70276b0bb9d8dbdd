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
func (s *Snapshot) tracePermission(q *query, sub *subject, p int32, tr *tracer) {
	var path []string
	for _, src := range sub.sources[:len(sub.sources)-len(sub.conds)] {
		if s.applies(src.tenant, q.pos) && s.gives(src, p) {
			path = s.sourcePath(src, p)
			break
		}
	}
	tr.add(rulePermission, outcomePass, sub.ref, fmt.Sprintf("permission %q is held%s", s.perms[p].name, s.inTenant(q.tenant)), path)
}

// sourcePath is how src gives p: role → bundle → permission, or the grant.
func (s *Snapshot) sourcePath(src source, p int32) []string {
	label := s.sourceLabel(src)
	if src.kind == sourceGrant {
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
	if src.kind == sourceGrant {
		return fmt.Sprintf("grant %s (%s)", s.perms[src.ref].name, scope)
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
