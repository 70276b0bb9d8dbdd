package service

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/guard"
	"github.com/gatehouse/gatehouse/locale"
)

// The one door: every question any surface asks (AuthZEN evaluation,
// evaluations and search, /api/v1/check and /explain, the agent action
// API, the CLI, the client middleware through the HTTP API) is answered
// here, in the decision order of docs/policy.md, read top to bottom:
//
//	1–5  the snapshot (engine): request, subject, tenant, visibility, access
//	     permission, the permission through roles, bundles and grants,
//	     conditions, plan
//	6–8  for a tool that performs an agent action (guard): the tenant's action
//	     policy enabled, its limits against the arguments and the rolling
//	     windows, and confirmation
//
// Evaluate and Simulate change nothing; AuthorizeToolCall reserves. Each
// answer carries its localized message and is recorded in the decision log.

// mode is what a question asks the guard to do for an agent action.
type mode int

const (
	// evaluate decides read-only; an action that needs a confirmation is
	// denied with confirmation_required, since none exists yet.
	evaluate mode = iota
	// simulate decides as authorize would, storing nothing.
	simulate
	// authorize stores the action, reserving its limits.
	authorize
)

// Evaluate answers q for caller from the current snapshot without changing
// anything. For a tool that performs an agent action it also decides steps
// 6–8 read-only, counting the windows' current usage: an action that would
// need a confirmation is denied with confirmation_required (authorize it
// to create the confirmation). It never fails to decide: a malformed
// question is invalid_request and an internal failure internal_error. The
// error is ErrAskForbidden when caller may not ask about q's subject.
func (s *Service) Evaluate(ctx context.Context, caller gatehouse.Caller, q gatehouse.Question) (gatehouse.Answer, error) {
	if s == nil {
		return unavailable, nil
	}
	d := s.decider(ctx)
	if err := d.mayAsk(caller, &q); err != nil {
		return gatehouse.Answer{}, err
	}
	return d.answer(caller, &q, evaluate, ""), nil
}

// EvaluateAll answers qs in order from one snapshot, reading each window's
// usage once, and stops after the first answer for which stop (if not nil)
// reports true. If caller may not ask any one of them, nothing is decided
// and the error is ErrAskForbidden.
func (s *Service) EvaluateAll(ctx context.Context, caller gatehouse.Caller, qs []gatehouse.Question, stop func(gatehouse.Answer) bool) ([]gatehouse.Answer, error) {
	if s == nil {
		out := make([]gatehouse.Answer, len(qs))
		for i := range out {
			out[i] = unavailable
		}
		return out, nil
	}
	d := s.decider(ctx)
	for i := range qs {
		if err := d.mayAsk(caller, &qs[i]); err != nil {
			return nil, err
		}
	}
	out := make([]gatehouse.Answer, 0, len(qs))
	for i := range qs {
		a := d.answer(caller, &qs[i], evaluate, "")
		out = append(out, a)
		if stop != nil && stop(a) {
			break
		}
	}
	return out, nil
}

// Simulate answers q as AuthorizeToolCall would now, counting the windows'
// current usage, without storing or reserving anything: an action that
// needs a confirmation is allowed, pending.
func (s *Service) Simulate(ctx context.Context, caller gatehouse.Caller, q gatehouse.Question) (gatehouse.Answer, error) {
	if s == nil {
		return unavailable, nil
	}
	d := s.decider(ctx)
	if err := d.mayAsk(caller, &q); err != nil {
		return gatehouse.Answer{}, err
	}
	return d.answer(caller, &q, simulate, ""), nil
}

// AuthorizeToolCall decides the tool call q and, when it performs an agent
// action and is allowed, stores the action, reserving its capacity in the
// limits' windows in the same store transaction that checks them; an
// action that needs a confirmation is stored pending under the answer's
// ActionID. With an idempotency key a call the subject made before under
// the key returns that call's answer and reserves nothing. The error is
// ErrAskForbidden when caller may not act as q's subject: only the subject
// itself, a policy enforcement point or an administrator may.
func (s *Service) AuthorizeToolCall(ctx context.Context, caller gatehouse.Caller, q gatehouse.Question, idempotencyKey string) (gatehouse.Answer, error) {
	if s == nil {
		return unavailable, nil
	}
	d := s.decider(ctx)
	// Only the subject itself reserves in its name: asking about an agent
	// acting for the caller is not acting as that agent.
	q.Subject = d.subjectType(q.Subject)
	if err := d.mayAskAbout(caller, q.Subject, gatehouse.SubjectRef{}); err != nil {
		return gatehouse.Answer{}, err
	}
	return d.answer(caller, &q, authorize, idempotencyKey), nil
}

// MayAsk returns nil if caller may ask about subject (an agent acting for
// onBehalfOf): a policy enforcement point (see Caller.PEP) or an
// administrator of Gatehouse may ask about anyone; anyone else only about
// itself, and about an agent acting for it. Otherwise it returns an error
// wrapping ErrAskForbidden.
func (s *Service) MayAsk(caller gatehouse.Caller, subject, onBehalfOf gatehouse.SubjectRef) error {
	return s.decider(context.Background()).mayAskAbout(caller, subject, onBehalfOf)
}

// decider answers questions from one snapshot; a batch shares one.
type decider struct {
	s     *Service
	ctx   context.Context
	snap  *engine.Snapshot
	usage *guard.Usage
	// admin caches whether the caller administers Gatehouse: 0 unknown,
	// 1 yes, 2 no.
	admin int8
	// searching: only whether each answer allows counts, so a denial
	// without a tenant is not probed for tenant_required.
	searching bool
}

func (s *Service) decider(ctx context.Context) *decider {
	return &decider{s: s, ctx: ctx, snap: s.Snapshot()}
}

// unavailable is the answer of a nil Service: a deny with internal_error.
var unavailable = gatehouse.Answer{Reason: gatehouse.ReasonInternalError}

func (d *decider) mayAsk(caller gatehouse.Caller, q *gatehouse.Question) error {
	q.Subject = d.subjectType(q.Subject)
	if t := q.Subject.Type; q.Problem != "" || (t != gatehouse.SubjectUser && t != gatehouse.SubjectAgent) {
		// Malformed or of an unknown subject type: answered
		// invalid_request or unknown_subject_type, about nobody.
		return nil
	}
	return d.mayAskAbout(caller, q.Subject, q.OnBehalfOf)
}

func (d *decider) mayAskAbout(caller gatehouse.Caller, subject, onBehalfOf gatehouse.SubjectRef) error {
	if caller.PEP() || (!caller.Subject.IsZero() && (sameSubject(subject, caller.Subject) ||
		(subject.Type == gatehouse.SubjectAgent && sameSubject(onBehalfOf, caller.Subject)))) {
		return nil
	}
	if d.admin == 0 {
		d.admin = 2
		if isAdmin(d.snap, caller.Subject) {
			d.admin = 1
		}
	}
	if d.admin == 1 {
		return nil
	}
	who := caller.Subject.String()
	if who == "" {
		who = string(caller.Credential)
	}
	return fmt.Errorf("%s may not ask about %s: %w", who, subject, gatehouse.ErrAskForbidden)
}

// sameSubject compares subjects as the engine does: emails whatever their
// case and surrounding space.
func sameSubject(a, b gatehouse.SubjectRef) bool {
	if a.Type != b.Type {
		return false
	}
	if a.Type == gatehouse.SubjectUser {
		return gatehouse.NormalizeEmail(a.ID) == gatehouse.NormalizeEmail(b.ID)
	}
	return strings.TrimSpace(a.ID) == strings.TrimSpace(b.ID)
}

// isAdmin reports whether subject administers Gatehouse as a whole: a
// superuser, or a holder of settings.admin_permission granted without a
// tenant scope.
func isAdmin(snap *engine.Snapshot, subject gatehouse.SubjectRef) bool {
	if subject.IsZero() {
		return false
	}
	if subject.Type == gatehouse.SubjectUser && snap.IsSuperuser(subject.ID) {
		return true
	}
	perm := snap.AdminPermission()
	return perm != "" && snap.Check(&gatehouse.Request{Subject: subject, Permission: perm}).Allowed
}

// answer decides q in m, localizes the answer and records it in the
// decision log. A panic is a deny with internal_error.
func (d *decider) answer(caller gatehouse.Caller, q *gatehouse.Question, m mode, key string) gatehouse.Answer {
	start := time.Now()
	a := d.safely(q, func() gatehouse.Answer { return d.decide(q, m, key) })
	msg := d.safely(q, func() gatehouse.Answer { return gatehouse.Answer{Message: d.s.message(q.Lang, q, &a)} })
	if msg.Reason == gatehouse.ReasonInternalError {
		a = msg
	}
	a.Message = msg.Message
	d.s.logDecision(caller, q, &a, m, time.Since(start))
	return a
}

// safely runs f, turning a panic into a deny with internal_error.
func (d *decider) safely(q *gatehouse.Question, f func() gatehouse.Answer) (a gatehouse.Answer) {
	defer func() {
		if v := recover(); v != nil {
			d.s.cfg.Logger.Error("decision panicked", "request_id", q.RequestID, "panic", v)
			a = gatehouse.Answer{Reason: gatehouse.ReasonInternalError, Subject: q.Subject.String(),
				Tool: q.Tool, Tenant: q.Tenant, Version: d.snap.Version()}
		}
	}()
	return f()
}

// decide runs the decision order for q.
func (d *decider) decide(q *gatehouse.Question, m mode, key string) gatehouse.Answer {
	snap := d.snap
	if snap == nil {
		return gatehouse.Answer{Reason: gatehouse.ReasonInternalError, Subject: q.Subject.String()}
	}
	if reason, problem := d.resolve(q); reason != "" {
		a := gatehouse.NewAnswer(&q.Request, q.Tool, gatehouse.Explanation{Decision: gatehouse.Decision{
			Reason: reason, Version: snap.Version()}}, "")
		a.Problem = problem
		return a
	}
	a := d.decideResolved(q, m, key)
	if a.Reason == gatehouse.ReasonPermissionMissing && !d.searching && strings.TrimSpace(q.Tenant) == "" && d.tenantWouldGrant(q) {
		a.Reason = gatehouse.ReasonTenantRequired
	}
	return a
}

// decideResolved decides q once resolve found nothing wrong with it.
func (d *decider) decideResolved(q *gatehouse.Question, m mode, key string) gatehouse.Answer {
	snap := d.snap
	if q.Tool != "" {
		if ta, ok := snap.ToolAction(q.Tool); ok && ta.Action != "" {
			return d.action(q, m, key)
		}
		if q.Explain {
			// A copy: explaining keeps the request, the hot path must not.
			r := q.Request
			return gatehouse.NewAnswer(&q.Request, q.Tool, snap.ExplainTool(&r, q.Tool), "")
		}
		return gatehouse.NewAnswer(&q.Request, q.Tool, gatehouse.Explanation{Decision: snap.CheckTool(&q.Request, q.Tool)}, "")
	}
	if q.Explain {
		r := q.Request
		return gatehouse.NewAnswer(&q.Request, "", snap.Explain(&r), "")
	}
	return gatehouse.NewAnswer(&q.Request, "", gatehouse.Explanation{Decision: snap.Check(&q.Request)}, "")
}

// resolve applies q's scope and resolves its Name; it returns the reason
// q cannot be decided and what is wrong with it in English, or "".
func (d *decider) resolve(q *gatehouse.Question) (gatehouse.Reason, string) {
	if q.Problem != "" {
		return gatehouse.ReasonInvalidRequest, q.Problem
	}
	if t := q.Subject.Type; t != gatehouse.SubjectUser && t != gatehouse.SubjectAgent {
		return gatehouse.ReasonUnknownSubjectType, fmt.Sprintf("subject type %q: want user, agent or a type of settings.subject_types", t)
	}
	if q.Within != "" {
		switch {
		case q.Tenant == "":
			q.Tenant = q.Within
		case !d.snap.TenantWithin(q.Tenant, q.Within):
			return gatehouse.ReasonTenantOutsideScope, fmt.Sprintf("tenant %q is outside the tenant %q this decision point serves", q.Tenant, q.Within)
		}
	}
	if q.Tool == "" && q.Permission == "" && q.Name != "" {
		if _, ok := d.snap.ToolAction(q.Name); ok {
			q.Tool = q.Name
		} else if tool, ok := d.snap.ActionTool(q.Name); ok {
			q.Tool = tool
		} else {
			q.Permission = q.Name
		}
	}
	return "", ""
}

// maxTenantProbe bounds the tenants tenantWouldGrant tries.
const maxTenantProbe = 256

// tenantWouldGrant reports whether q, denied permission_missing without a
// tenant, would pass the permission step in one of the tenants its subject
// may see: the permission is held only within tenants, so the request
// lacks its tenant rather than the permission. It runs on that denial only.
func (d *decider) tenantWouldGrant(q *gatehouse.Question) bool {
	var tenants []string
	switch q.Subject.Type {
	case gatehouse.SubjectUser:
		tenants = d.snap.VisibleTenants(q.Subject.ID)
	case gatehouse.SubjectAgent:
		tenants = d.snap.AgentTenants(q.Subject.ID)
	}
	r := q.Request
	for i, t := range tenants {
		if i == maxTenantProbe {
			break
		}
		r.Tenant = t
		var dec gatehouse.Decision
		if q.Tool != "" {
			dec = d.snap.CheckTool(&r, q.Tool)
		} else {
			dec = d.snap.Check(&r)
		}
		if dec.Reason != gatehouse.ReasonPermissionMissing && dec.Reason != gatehouse.ReasonTenantNotVisible {
			return true
		}
	}
	return false
}

// subjectType maps a subject type the policy declares in
// settings.subject_types onto user or agent; other types stay as they are
// (and are answered unknown_subject_type).
func (d *decider) subjectType(ref gatehouse.SubjectRef) gatehouse.SubjectRef {
	if ref.Type == gatehouse.SubjectUser || ref.Type == gatehouse.SubjectAgent || ref.IsZero() {
		return ref
	}
	switch d.snap.SubjectType(string(ref.Type)) {
	case gatehouse.SubjectUser:
		return gatehouse.User(strings.TrimSpace(ref.ID))
	case gatehouse.SubjectAgent:
		return gatehouse.AgentRef(ref.ID)
	}
	return ref
}

// action decides a tool that performs an agent action: steps 1–8 through
// the guard.
func (d *decider) action(q *gatehouse.Question, m mode, key string) gatehouse.Answer {
	req := &guard.Request{Subject: q.Subject, OnBehalfOf: q.OnBehalfOf, Tenant: q.Tenant, Tool: q.Tool,
		Args: q.Args, Context: q.Context, Resource: q.Resource,
		SubjectProperties: q.SubjectProperties, ActionProperties: q.ActionProperties}
	var res guard.Result
	switch m {
	case authorize:
		res = d.s.guard.Authorize(d.ctx, req, key)
	default:
		if d.usage == nil {
			d.usage = d.s.guard.NewUsage()
		}
		res = d.s.guard.SimulateAll(d.ctx, req, d.usage)
	}
	a := gatehouse.Answer{
		Allowed: res.Allowed, Reason: res.Reason,
		Subject: q.Subject.String(), OnBehalfOf: q.OnBehalfOf.String(), Tool: q.Tool, Tenant: q.Tenant,
		DeniedSubject: res.Decision.Subject.String(), DeniedPermission: res.Decision.Permission,
		Feature: res.Decision.Feature, Plan: res.Decision.Plan,
		Action: res.Action, RequiresConfirmation: res.RequiresConfirmation, ActionID: res.ActionID,
		Status: res.Status, ExpiresAt: res.ExpiresAt, Replayed: res.Replayed, Limit: res.Limit,
		Problem: res.Problem, ProblemCode: res.ProblemCode, ProblemArgs: res.ProblemArgs, Policy: res.Policy, Version: res.Version,
	}
	if a.Reason == gatehouse.ReasonInternalError {
		a.Version = d.snap.Version()
	}
	if m == evaluate && a.Allowed && a.RequiresConfirmation {
		// Nothing is pending yet: the caller authorizes the action to
		// create the confirmation.
		a.Allowed, a.Reason, a.Status, a.ExpiresAt = false, gatehouse.ReasonConfirmationRequired, "", time.Time{}
	}
	if q.Explain {
		r := q.Request
		a.Steps = append(d.snap.ExplainTool(&r, q.Tool).Steps, actionSteps(&a)...)
	}
	return a
}

// actionSteps explains steps 6–8 of an answer about an agent action.
func actionSteps(a *gatehouse.Answer) []gatehouse.ExplainStep {
	if a.Policy == nil {
		return nil
	}
	p := a.Policy
	enabled := gatehouse.ExplainStep{Rule: "action", Outcome: "pass",
		Detail: fmt.Sprintf("%s is enabled in %s (from %s)", p.Action, p.Tenant, p.EnabledFrom)}
	if !p.Enabled {
		enabled.Outcome, enabled.Detail = "fail", fmt.Sprintf("%s is disabled in %s (from %s)", p.Action, p.Tenant, p.EnabledFrom)
		return []gatehouse.ExplainStep{enabled}
	}
	steps := []gatehouse.ExplainStep{enabled}
	limit := gatehouse.ExplainStep{Rule: "limit", Outcome: "pass", Detail: "within the limits"}
	if p.Limits == nil {
		limit.Outcome, limit.Detail = "skip", "no limits"
	} else if p.LimitsFrom != "" {
		limit.Detail += " (from " + p.LimitsFrom + ")"
	}
	if l := a.Limit; l != nil {
		limit.Outcome = "fail"
		limit.Detail = fmt.Sprintf("%s %s exceeded: requested %s", l.Limit, l.Max, l.Requested)
		if l.Used != "" {
			limit.Detail += ", used " + l.Used + " in " + l.Window
		}
		return append(steps, limit)
	}
	if a.Reason == gatehouse.ReasonInvalidRequest {
		return steps
	}
	steps = append(steps, limit)
	confirm := gatehouse.ExplainStep{Rule: "confirmation", Outcome: "skip",
		Detail: fmt.Sprintf("no confirmation required (from %s)", p.RequiresConfirmationFrom)}
	if p.RequiresConfirmation {
		confirm.Outcome = "fail"
		confirm.Detail = fmt.Sprintf("a human must confirm (from %s)", p.RequiresConfirmationFrom)
	}
	return append(steps, confirm)
}

// message is the answer's reason as a sentence in lang: which action is
// disabled in which tenant, which limit was exceeded with its figures, or
// the message of steps 1–5's decision.
func (s *Service) message(lang string, q *gatehouse.Question, a *gatehouse.Answer) string {
	c, snap := s.cfg.Catalog, s.Snapshot()
	// Messages name permissions and tools by the policy's titles; the ids
	// stay in the answer's reason fields.
	args := locale.Args{Subject: a.Subject, Permission: snap.PermissionTitle(q.Permission), Tenant: q.Tenant,
		Resource: q.Resource.ID, ResourceType: q.Resource.Type, Action: a.Action,
		Scope: q.Within, SubjectType: string(q.Subject.Type)}
	if a.Reason == gatehouse.ReasonInvalidRequest && a.ProblemCode != "" {
		return c.Text(lang, "problem."+a.ProblemCode, a.ProblemArgs)
	}
	if q.Tool != "" {
		args.Permission = snap.ToolTitle(q.Tool)
	} else if q.Permission == "" {
		args.Permission = snap.PermissionTitle(q.Name)
	}
	if l := a.Limit; l != nil {
		unit := func(v string) string {
			if l.Currency == "" || v == "" {
				return v
			}
			return v + " " + l.Currency
		}
		used := l.Used
		if l.Limit != gatehouse.LimitMaxCount {
			used = unit(used)
		}
		args.Limit = c.Text(lang, "limit."+l.Limit, map[string]string{
			"Requested": unit(l.Requested), "Max": unit(l.Max), "Used": used, "Window": l.Window,
		})
	}
	d := gatehouse.Decision{Allowed: a.Allowed, Reason: a.Reason, Permission: snap.PermissionTitle(a.DeniedPermission),
		Feature: a.Feature, Plan: a.Plan, Version: a.Version}
	if a.DeniedSubject != "" {
		d.Subject, _ = gatehouse.ParseSubject(a.DeniedSubject)
	}
	return c.Reason(lang, d, args)
}

// decisionAction is the action of the audit events that record decisions;
// retention prunes them (see PruneDecisions).
const decisionAction = gatehouse.ActionDecision

// decisionRecord is what a "decision" audit event says was asked.
type decisionRecord struct {
	Endpoint   string       `json:"endpoint"`
	Subject    string       `json:"subject"`
	OnBehalfOf string       `json:"on_behalf_of,omitempty"`
	Action     string       `json:"action,omitempty"`
	Tool       string       `json:"tool,omitempty"`
	Resource   *resourceRef `json:"resource,omitempty"`
	Tenant     string       `json:"tenant,omitempty"`
	// Mode is simulate or authorize for the agent action API; empty for
	// a read-only evaluation.
	Mode      string           `json:"mode,omitempty"`
	Allowed   bool             `json:"allowed"`
	Reason    gatehouse.Reason `json:"reason"`
	ActionID  string           `json:"action_id,omitempty"`
	Version   int64            `json:"version"`
	RequestID string           `json:"request_id,omitempty"`
	// Conversation is the chat thread the question came from.
	Conversation string `json:"conversation_id,omitempty"`
	LatencyUS    int64  `json:"latency_us"`
}

type resourceRef struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
}

// logDecision queues the decision a in the decision log, if one is
// attached; it never blocks.
func (s *Service) logDecision(caller gatehouse.Caller, q *gatehouse.Question, a *gatehouse.Answer, m mode, took time.Duration) {
	l := s.decisions.Load()
	if l == nil {
		return
	}
	// Action is what was asked: the AuthZEN action name, else the
	// permission; Tool the tool that decided.
	rec := decisionRecord{Endpoint: q.Surface, Subject: a.Subject, OnBehalfOf: a.OnBehalfOf,
		Action: q.Name, Tool: q.Tool, Tenant: q.Tenant, Allowed: a.Allowed, Reason: a.Reason,
		ActionID: a.ActionID, Version: a.Version, RequestID: q.RequestID, Conversation: q.Conversation,
		LatencyUS: took.Microseconds()}
	if rec.Action == "" {
		rec.Action = q.Permission
	}
	switch m {
	case simulate:
		rec.Mode = "simulate"
	case authorize:
		rec.Mode = "authorize"
	}
	if q.Resource.Type != "" || q.Resource.ID != "" {
		rec.Resource = &resourceRef{Type: q.Resource.Type, ID: q.Resource.ID}
	}
	detail, err := json.Marshal(rec)
	if err != nil {
		s.cfg.Logger.Error("decision log: encode", "err", err)
		return
	}
	actor := caller.Subject.String()
	if actor == "" {
		actor = "pep:" + string(caller.Credential)
	}
	l.Log(gatehouse.AuditEvent{Actor: actor, Action: decisionAction, Target: rec.Subject, Detail: detail})
}

// ToolCall is what a gateway did with an allowed tool call: forwarded to
// which upstream, with which outcome, how fast.
type ToolCall struct {
	Surface  string `json:"surface"`
	Tool     string `json:"tool"`
	Upstream string `json:"upstream,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	ActionID string `json:"action_id,omitempty"`
	// Conversation is the chat thread of the call.
	Conversation string `json:"conversation_id,omitempty"`
	// Status is ok, error (the upstream answered isError) or failed (it
	// did not answer).
	Status    string `json:"status"`
	LatencyUS int64  `json:"latency_us"`
}

// RecordToolCall records c in the audit trail as a "tool.call" event by
// caller, through the decision log when one is attached (never blocking),
// else directly.
func (s *Service) RecordToolCall(ctx context.Context, caller gatehouse.Caller, c ToolCall) {
	detail, err := json.Marshal(c)
	if err != nil {
		s.cfg.Logger.Error("record tool call: encode", "err", err)
		return
	}
	actor := caller.Subject.String()
	if actor == "" {
		actor = "pep:" + string(caller.Credential)
	}
	e := gatehouse.AuditEvent{Time: s.cfg.Clock.Now(), Actor: actor, Action: "tool.call", Target: "tool/" + c.Tool, Detail: detail}
	if l := s.decisions.Load(); l != nil {
		l.Log(e)
		return
	}
	if err := s.store.AppendAudit(ctx, []gatehouse.AuditEvent{e}); err != nil {
		s.cfg.Logger.Warn("record tool call", "tool", c.Tool, "err", err)
	}
}
