package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/policy"
)

// Who administers what, decided from the snapshot (no store read):
//
//	global  a superuser, a holder of settings.admin_permission granted
//	        without a tenant scope, or the operator at the command line
//	tenant  a holder of the admin permission through a tenant-scoped
//	        binding administers the subtrees of those tenants

// AdminScope is what a caller administers: everything, or the subtrees of
// Roots.
type AdminScope struct {
	Global bool
	Roots  []string
	snap   *engine.Snapshot
}

// Covers reports whether the scope administers tenant ("" is the global
// level, which only a global scope covers).
func (a AdminScope) Covers(tenant string) bool {
	if a.Global {
		return true
	}
	for _, root := range a.Roots {
		if a.snap.TenantWithin(tenant, root) {
			return true
		}
	}
	return false
}

// RequireAdmin returns nil if caller administers Gatehouse as a whole;
// otherwise a *gatehouse.ForbiddenError with the reason of the decision that
// refused.
func (s *Service) RequireAdmin(caller gatehouse.Caller) error {
	return requireAdmin(s.Snapshot(), caller)
}

func requireAdmin(snap *engine.Snapshot, caller gatehouse.Caller) error {
	if caller.Credential == gatehouse.CredentialOperator || isAdmin(snap, caller.Subject) {
		return nil
	}
	perm := snap.AdminPermission()
	if perm == "" || caller.Subject.IsZero() {
		return gatehouse.Forbiddenf(gatehouse.ReasonPermissionMissing, "%s is not a superuser and the policy names no admin permission", caller.Subject)
	}
	d := snap.Check(&gatehouse.Request{Subject: caller.Subject, Permission: perm})
	return gatehouse.Forbiddenf(d.Reason, "%s lacks %s: %s", caller.Subject, perm, d.Reason)
}

// AdminScope returns what caller administers; a caller that administers
// nothing gets RequireAdmin's error.
func (s *Service) AdminScope(caller gatehouse.Caller) (AdminScope, error) {
	return adminScope(s.Snapshot(), caller)
}

func adminScope(snap *engine.Snapshot, caller gatehouse.Caller) (AdminScope, error) {
	err := requireAdmin(snap, caller)
	if err == nil {
		return AdminScope{Global: true, snap: snap}, nil
	}
	scope := AdminScope{snap: snap}
	if perm := snap.AdminPermission(); perm != "" && !caller.Subject.IsZero() {
		for _, t := range snap.ResourceIDs(gatehouse.ResourceTypeTenant) {
			if snap.Check(&gatehouse.Request{Subject: caller.Subject, Permission: perm, Tenant: t}).Allowed {
				scope.Roots = append(scope.Roots, t)
			}
		}
	}
	if len(scope.Roots) == 0 {
		return AdminScope{}, err
	}
	return scope, nil
}

// outside is the error of a tenant admin reaching outside its tenants.
func outside(format string, args ...any) error {
	return gatehouse.Forbiddenf(gatehouse.ReasonTenantNotVisible, format, args...)
}

// AdminTenant returns tenant if caller administers it; an unknown tenant
// is ErrNotFound for a global administrator and forbidden for anyone else,
// so that tenant admins cannot probe which tenants exist.
func (s *Service) AdminTenant(caller gatehouse.Caller, tenant string) (string, error) {
	snap := s.Snapshot()
	scope, err := adminScope(snap, caller)
	if err != nil {
		return "", err
	}
	if !snap.TenantWithin(tenant, tenant) {
		if scope.Global {
			return "", gatehouse.NotFoundf("tenant %q", tenant)
		}
		return "", outside("tenant %q is outside the caller's tenants", tenant)
	}
	if !scope.Covers(tenant) {
		return "", outside("%s does not administer tenant %s", caller.Subject, tenant)
	}
	return tenant, nil
}

// ActionPolicyText is an effective action policy with the action type's
// label and description in one language.
type ActionPolicyText struct {
	gatehouse.EffectiveAction
	Label       string
	Description string
}

// TenantActions returns the effective policy of every action type in
// tenant, or of action alone when it is not "", with labels in lang and
// the policy version, all from one snapshot. An unknown tenant or action
// type is ErrNotFound.
func (s *Service) TenantActions(tenant, action, lang string) (int64, []ActionPolicyText, error) {
	snap := s.Snapshot()
	var pols []gatehouse.EffectiveAction
	if action != "" {
		p, err := snap.ActionPolicy(tenant, action)
		if err != nil {
			return 0, nil, err
		}
		pols = []gatehouse.EffectiveAction{p}
	} else {
		var err error
		if pols, err = snap.ActionPolicies(tenant); err != nil {
			return 0, nil, err
		}
	}
	out := make([]ActionPolicyText, len(pols))
	for i, p := range pols {
		out[i] = ActionPolicyText{EffectiveAction: p, Label: snap.ActionLabel(p.Action, lang),
			Description: snap.ActionDescription(p.Action, lang)}
	}
	return snap.Version(), out, nil
}

// TenantExists reports whether the policy has tenant.
func (s *Service) TenantExists(tenant string) bool { return s.Snapshot().TenantWithin(tenant, tenant) }

// Version is the policy version of the current snapshot.
func (s *Service) Version() int64 { return s.Snapshot().Version() }

// AccessPermission returns the policy's surface access permission
// (settings.access_permission, e.g. access_ai_chat), "" when it has none.
func (s *Service) AccessPermission() string { return s.Snapshot().AccessPermission() }

// Who may see and move an action record: its subject and the user it was
// for see it, and administrators of its tenant; the guard decides who may
// move it (guard/lifecycle.go).

// GetAction returns the action record id, its status as of now, if caller
// may see it; for anyone else it is ErrNotFound, as if there were none.
func (s *Service) GetAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
	rec, err := s.guard.Get(ctx, id)
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	if !s.seesAction(caller, rec) {
		return gatehouse.ActionRecord{}, gatehouse.NotFoundf("action %q", id)
	}
	return rec, nil
}

func (s *Service) seesAction(caller gatehouse.Caller, rec gatehouse.ActionRecord) bool {
	who := caller.Subject.String()
	if who != "" && (rec.Subject == who || rec.OnBehalfOf == who) {
		return true
	}
	scope, err := s.AdminScope(caller)
	return err == nil && scope.Covers(rec.Tenant)
}

// ListActions returns the action records matching f that caller may see:
// an administrator of everything sees all, a tenant admin the tenants it
// administers (it must name one: another is forbidden), anyone else the
// actions it requested.
func (s *Service) ListActions(ctx context.Context, caller gatehouse.Caller, f gatehouse.ActionFilter) ([]gatehouse.ActionRecord, error) {
	scope, err := s.AdminScope(caller)
	switch {
	case err == nil && scope.Global:
	case err == nil && f.Tenant != "" && scope.Covers(f.Tenant):
	case err == nil && f.Tenant != "":
		return nil, outside("%s does not administer tenant %s", caller.Subject, f.Tenant)
	case err != nil && !errors.Is(err, gatehouse.ErrForbidden):
		return nil, err
	default:
		// Not an administrator of all that was asked: only its own actions.
		f.Subject = caller.Subject.String()
		if f.Subject == "" {
			return nil, outside("a caller without a subject has no actions")
		}
	}
	return s.guard.List(ctx, f)
}

// approvableBatch is how many pending records ApprovableActions reads at
// a time while it looks for those the caller may confirm.
const approvableBatch = 500

// ApprovableActions returns the pending actions matching f (whatever its
// Status) that caller may confirm now, oldest first: those it is the
// customer of and those whose action's approver permission it holds in
// their tenant (the guard decides, as ConfirmAction will). f.Limit caps
// the answer as in ListActions, f.AfterSeq pages it.
func (s *Service) ApprovableActions(ctx context.Context, caller gatehouse.Caller, f gatehouse.ActionFilter) ([]gatehouse.ActionRecord, error) {
	if caller.Subject.IsZero() {
		return nil, outside("a caller without a subject approves no actions")
	}
	want := f.Limit
	switch {
	case want < 0:
		return nil, gatehouse.Invalidf("list approvable actions: negative limit %d", want)
	case want == 0:
		want = 100
	}
	f.Status, f.Limit = gatehouse.ActionPending, approvableBatch
	out := []gatehouse.ActionRecord{}
	for {
		page, err := s.guard.List(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, rec := range page {
			if s.guard.MayConfirm(rec, caller.Subject) {
				out = append(out, rec)
				if len(out) == want {
					return out, nil
				}
			}
		}
		if len(page) < approvableBatch {
			return out, nil
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// ActionConcerns reports whether a change of rec is news to caller: it
// may see rec, or could confirm it while it is pending (so that a record
// confirmed or cancelled by someone else leaves its inbox).
func (s *Service) ActionConcerns(caller gatehouse.Caller, rec gatehouse.ActionRecord) bool {
	if s.seesAction(caller, rec) {
		return true
	}
	rec.Status = gatehouse.ActionPending
	return !caller.Subject.IsZero() && s.guard.MayConfirm(rec, caller.Subject)
}

// ConfirmAction records that caller confirmed the pending action id: its
// customer, or a holder of the action's approver permission in its tenant.
// ErrNotApprover if caller may not, ErrActionExpired after its expiry,
// ErrIllegalTransition unless it is pending, ErrNotFound for an unknown id.
func (s *Service) ConfirmAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
	return s.guard.Confirm(ctx, id, caller.Subject)
}

// CancelAction records that caller cancelled the pending action id,
// releasing its capacity: its customer, its subject or an approver.
func (s *Service) CancelAction(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
	return s.guard.Cancel(ctx, id, caller.Subject)
}

// ActionExecuted records that the confirmed action id was carried out, by
// its subject or an approver.
func (s *Service) ActionExecuted(ctx context.Context, caller gatehouse.Caller, id string) (gatehouse.ActionRecord, error) {
	return s.guard.Executed(ctx, id, caller.Subject)
}

// ActionFailed records that the confirmed action id failed with message,
// releasing its capacity; an empty or overlong message is ErrInvalid.
func (s *Service) ActionFailed(ctx context.Context, caller gatehouse.Caller, id, message string) (gatehouse.ActionRecord, error) {
	return s.guard.Failed(ctx, id, caller.Subject, message)
}

// SearchTarget is what an AuthZEN search looks for.
type SearchTarget int

// Search targets.
const (
	SearchSubject SearchTarget = iota
	SearchResource
	SearchAction
)

// Search asks which subjects, resources or actions template allows.
type Search struct {
	Target SearchTarget
	// Template is the question every candidate is decided as: the
	// searched-for subject's or resource's type is set, its id is filled
	// in per candidate; for an action search, Name is.
	Template gatehouse.Question
	// After is the candidate the previous page ended with; "" for the first.
	After string
	Limit int
}

// SearchHit is one allowed candidate: a subject or resource (type and id)
// or an action (name).
type SearchHit struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// SearchResult is one page of a search.
type SearchResult struct {
	Hits []SearchHit
	// More reports that allowed candidates follow Last.
	More    bool
	Last    string
	Version int64
}

// Search decides every candidate of the target's type after sr.After, in
// order, exactly as Evaluate would (agent actions included, from one
// snapshot and one reading of each window's usage), and returns one page
// of the allowed ones. Searching for subjects asks about others, so it
// needs a caller that may ask about anyone (ErrAskForbidden otherwise); a
// resource or action search asks about the template's subject. A type
// Gatehouse does not know has no candidates.
func (s *Service) Search(ctx context.Context, caller gatehouse.Caller, sr Search) (SearchResult, error) {
	d := s.decider(ctx)
	d.searching = true
	sr.Template.Subject = d.subjectType(sr.Template.Subject)
	probe := sr.Template.Request
	if sr.Target == SearchSubject {
		// Anyone but the caller: only who may ask about anyone may search.
		probe.Subject, probe.OnBehalfOf = gatehouse.SubjectRef{Type: "search", ID: "*"}, gatehouse.SubjectRef{}
	}
	if err := d.mayAskAbout(caller, probe.Subject, probe.OnBehalfOf); err != nil {
		return SearchResult{}, err
	}
	snap := d.snap
	var candidates []string
	switch sr.Target {
	case SearchSubject:
		candidates = snap.SubjectIDs(sr.Template.Subject.Type)
	case SearchResource:
		candidates = snap.ResourceIDs(sr.Template.Resource.Type)
	case SearchAction:
		candidates = snap.ActionNames()
	}
	start := 0
	if sr.After != "" {
		start = sort.SearchStrings(candidates, sr.After)
		if start < len(candidates) && candidates[start] == sr.After {
			start++
		}
	}
	res := SearchResult{Version: snap.Version(), Hits: []SearchHit{}}
	for i := start; i < len(candidates); i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return SearchResult{}, fmt.Errorf("search: %w", err)
			}
		}
		q := sr.Template
		id := candidates[i]
		switch sr.Target {
		case SearchSubject:
			q.Subject.ID = id
		case SearchResource:
			q.Resource.ID = id
			if q.Resource.Type == gatehouse.ResourceTypeTenant {
				q.Tenant = id
			} else if q.Resource.Type == gatehouse.ResourceTypeTool {
				q.Tool = id
			}
		case SearchAction:
			q.Name, q.Permission, q.Tool = id, "", ""
			if q.Resource.Type == gatehouse.ResourceTypeTool {
				q.Tool = q.Resource.ID
				q.Permission = id
			}
		}
		if a := d.answer(caller, &q, evaluate, ""); !a.Allowed {
			continue
		}
		if len(res.Hits) == sr.Limit {
			res.More = true
			break
		}
		res.Hits = append(res.Hits, hit(snap, &q, sr.Target, id))
		res.Last = id
	}
	return res, nil
}

// hit is the entity a search returns for an allowed candidate. A user is
// returned by the id other systems know it by: its first alias, else its
// email.
func hit(snap *engine.Snapshot, q *gatehouse.Question, target SearchTarget, id string) SearchHit {
	switch target {
	case SearchSubject:
		if q.Subject.Type == gatehouse.SubjectUser {
			id = snap.UserID(id)
		}
		return SearchHit{Type: string(q.Subject.Type), ID: id}
	case SearchResource:
		return SearchHit{Type: q.Resource.Type, ID: id}
	}
	return SearchHit{Name: id}
}

// Now is the service's clock reading, as action records store it.
func (s *Service) Now() time.Time { return s.guard.Now() }

// ToolInfo describes a tool of the policy for a surface that shows tools
// (the MCP gateway): its name, title, description, the agent action it
// performs and the MCP upstream tool it is.
type ToolInfo struct {
	Name, Title, Description string
	Action                   string
	Upstream, UpstreamTool   string
}

// Tools returns every tool of the current policy, sorted by name, and the
// policy version.
func (s *Service) Tools() (int64, []ToolInfo) {
	snap := s.Snapshot()
	tools := snap.Tools()
	out := make([]ToolInfo, len(tools))
	for i, t := range tools {
		out[i] = ToolInfo{Name: t.Tool, Title: t.Title, Description: t.Description, Action: t.Action,
			Upstream: t.Upstream, UpstreamTool: t.UpstreamTool}
	}
	return snap.Version(), out
}

// CallableTools returns, of names, the tools subject may call in tenant
// at all: steps 1–6 of the decision order (its permissions and plan, and
// for an agent action its tenant's policy enables it). Limits and
// confirmation are decided per call. The error is ErrAskForbidden when
// caller may not ask about subject.
func (s *Service) CallableTools(ctx context.Context, caller gatehouse.Caller, subject, onBehalfOf gatehouse.SubjectRef, tenant string, names []string) ([]string, error) {
	d := s.decider(ctx)
	if err := d.mayAskAbout(caller, subject, onBehalfOf); err != nil {
		return nil, err
	}
	var out []string
	for _, name := range names {
		req := gatehouse.Request{Subject: subject, OnBehalfOf: onBehalfOf, Tenant: tenant}
		if !d.snap.CheckTool(&req, name).Allowed {
			continue
		}
		if ta, ok := d.snap.ToolAction(name); ok && ta.Action != "" {
			pol, err := d.snap.ActionPolicy(tenant, ta.Action)
			if err != nil || !pol.Enabled {
				continue
			}
		}
		out = append(out, name)
	}
	return out, nil
}

// CheckNames returns an error wrapping ErrNotFound, with the closest known
// name, for a tenant, tool or permission ("" is not checked) the policy
// does not have: a question naming one is a mistake of the asker, which a
// command line reports as such rather than as a denial.
func (s *Service) CheckNames(tenant, tool, permission string) error {
	snap := s.Snapshot()
	tools := snap.ResourceIDs(gatehouse.ResourceTypeTool)
	var perms []string
	for _, n := range snap.ActionNames() {
		if !slices.Contains(tools, n) {
			perms = append(perms, n)
		}
	}
	for _, c := range []struct {
		kind, name string
		known      []string
	}{
		{"tenant", tenant, snap.ResourceIDs(gatehouse.ResourceTypeTenant)},
		{"tool", tool, tools},
		{"permission", permission, perms},
	} {
		if c.name != "" && !slices.Contains(c.known, c.name) {
			return gatehouse.NotFoundf("unknown %s %q%s", c.kind, c.name, policy.Suggest(c.name, c.known))
		}
	}
	return nil
}
