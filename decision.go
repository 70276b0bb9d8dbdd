package gatehouse

import "time"

// Reason is the stable code a decision carries. Codes never change meaning;
// tests and clients compare codes, never messages.
type Reason string

// Reason codes, in the decision order of DESIGN.md.
const (
	// ReasonGranted: allowed through roles, bundles or direct grants.
	ReasonGranted Reason = "granted"
	// ReasonSuperuser: allowed because the subject is a superuser.
	ReasonSuperuser Reason = "superuser"
	// ReasonInvalidRequest: the request is malformed (empty subject or permission, bad arguments).
	ReasonInvalidRequest Reason = "invalid_request"
	// ReasonUnknownSubject: no user or agent with that id.
	ReasonUnknownSubject Reason = "unknown_subject"
	// ReasonUnknownTenant: no tenant with that id.
	ReasonUnknownTenant Reason = "unknown_tenant"
	// ReasonUnknownPermission: the permission (or tool) is not in the policy.
	ReasonUnknownPermission Reason = "unknown_permission"
	// ReasonUnknownResource: the policy declares resources of the request's
	// resource type, and none with that id.
	ReasonUnknownResource Reason = "unknown_resource"
	// ReasonTenantNotVisible: the subject may not see the tenant.
	ReasonTenantNotVisible Reason = "tenant_not_visible"
	// ReasonPermissionMissing: no role, bundle or grant gives the permission.
	ReasonPermissionMissing Reason = "permission_missing"
	// ReasonConditionFailed: the permission is given only under a condition
	// that evaluated to false or failed to evaluate.
	ReasonConditionFailed Reason = "condition_failed"
	// ReasonPlanRequired: the permission needs a feature outside the
	// effective plan; Decision.Plan names the lowest plan that has it.
	ReasonPlanRequired Reason = "plan_required"
	// ReasonActionDisabled: the tenant's action policy disables the action.
	ReasonActionDisabled Reason = "action_disabled"
	// ReasonLimitExceeded: the action exceeds a configured limit.
	ReasonLimitExceeded Reason = "limit_exceeded"
	// ReasonConfirmationRequired: allowed once a human confirms.
	ReasonConfirmationRequired Reason = "confirmation_required"
	// ReasonInternalError: the decision could not be made; always a deny.
	ReasonInternalError Reason = "internal_error"
	// ReasonTenantOutsideScope: a tenant-scoped decision point was asked
	// about a tenant outside its subtree.
	ReasonTenantOutsideScope Reason = "tenant_outside_scope"
	// ReasonUnknownSubjectType: the subject's type is neither user, agent
	// nor a type settings.subject_types declares.
	ReasonUnknownSubjectType Reason = "unknown_subject_type"
	// ReasonTenantRequired: the request names no tenant, and the subject
	// holds the permission only in tenants.
	ReasonTenantRequired Reason = "tenant_required"
)

// Reasons lists every reason code, for catalogs and tests.
var Reasons = []Reason{ReasonGranted, ReasonSuperuser, ReasonInvalidRequest,
	ReasonUnknownSubject, ReasonUnknownTenant, ReasonUnknownPermission, ReasonUnknownResource,
	ReasonTenantNotVisible, ReasonPermissionMissing, ReasonConditionFailed,
	ReasonPlanRequired, ReasonActionDisabled, ReasonLimitExceeded,
	ReasonConfirmationRequired, ReasonInternalError,
	ReasonTenantOutsideScope, ReasonUnknownSubjectType, ReasonTenantRequired}

// Resource types with a Gatehouse meaning. A request about a tenant is a
// request in that tenant; a request about a tool is a tool call. Every
// other type is the application's own (see ResourceEntry).
const (
	ResourceTypeTenant = "tenant"
	ResourceTypeTool   = "tool"
)

// Resource is what a request is about, in AuthZEN's shape.
type Resource struct {
	Type       string         `json:"type,omitempty"`
	ID         string         `json:"id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// Request asks whether Subject may use Permission in Tenant. When Subject is
// an agent and OnBehalfOf names a user, both must be allowed.
type Request struct {
	Subject SubjectRef `json:"subject"`
	// SubjectProperties are request-supplied subject attributes; attributes
	// stored in the policy win over them when both name a key.
	SubjectProperties map[string]any `json:"subject_properties,omitempty"`
	OnBehalfOf        SubjectRef     `json:"on_behalf_of,omitzero"`
	Permission        string         `json:"permission"`
	ActionProperties  map[string]any `json:"action_properties,omitempty"`
	// Tenant is empty for a tenant-independent question.
	Tenant   string         `json:"tenant,omitempty"`
	Resource Resource       `json:"resource,omitzero"`
	Context  map[string]any `json:"context,omitempty"`
}

// Decision is the answer to a Request. Denials carry the first rule that
// denied; plan_required carries the feature and the lowest plan that has it.
type Decision struct {
	Allowed bool   `json:"allowed"`
	Reason  Reason `json:"reason"`
	// Subject is who was denied when an agent acts for a user (the agent or
	// the user); zero when allowed or when only one subject was asked.
	Subject SubjectRef `json:"denied_subject,omitzero"`
	// Permission is the permission a denial is about: the one missing, whose
	// condition failed or whose feature the plan lacks. For a tool it may be
	// the access permission or the tool's own.
	Permission string `json:"permission,omitempty"`
	Feature    string `json:"feature,omitempty"`
	Plan       string `json:"plan,omitempty"`
	// Version is the policy version of the snapshot that decided.
	Version int64 `json:"version"`
}

// Explanation is a decision with the path that granted it or the rule that
// denied it, for humans and admin screens.
type Explanation struct {
	Decision
	Steps []ExplainStep `json:"steps"`
}

// ExplainStep is one rule of the decision order and what it found.
type ExplainStep struct {
	// Rule is one of: request, subject, tenant, resource, visibility,
	// superuser, permission, condition, plan.
	Rule string `json:"rule"`
	// Outcome is pass, fail or skip.
	Outcome string `json:"outcome"`
	// Subject is the subject the step was evaluated for.
	Subject SubjectRef `json:"subject,omitzero"`
	Detail  string     `json:"detail,omitempty"`
	// Path is how the permission was reached, e.g. role "Agent Supervisor"
	// (tenant acme) → bundle "Use Loan Analysis Tool" → use_ai_loan_tool.
	Path []string `json:"path,omitempty"`
}

// Effective is everything a subject may do in a tenant, in one answer: what
// a frontend needs to show, hide or lock its features.
type Effective struct {
	Subject   SubjectRef `json:"subject"`
	Tenant    string     `json:"tenant,omitempty"`
	Superuser bool       `json:"superuser"`
	// Plan is the effective plan and Features everything it includes.
	Plan string `json:"plan,omitempty"`
	// PlanSource says why Plan applies (PlanSourceTenant, …); PlanFrom
	// names the ancestor tenant whose plan an inherited plan is.
	PlanSource string   `json:"plan_source,omitempty"`
	PlanFrom   string   `json:"plan_from,omitempty"`
	Features   []string `json:"features,omitempty"`
	// Permissions are held and usable, sorted.
	Permissions []string `json:"permissions"`
	// Locked are held but need a higher plan.
	Locked []LockedPermission `json:"locked,omitempty"`
	// Tools lists every tool with its decision.
	Tools []ToolAccess `json:"tools"`
	// Flags are the tools' capability flags (seed 000's canUseLoanTool).
	Flags   map[string]bool `json:"flags"`
	Version int64           `json:"version"`
}

// Why an effective plan applies (Effective.PlanSource), in the order the
// decision looks: the tenant's own plan, an ancestor's, the user's own,
// else the lowest plan.
const (
	PlanSourceTenant    = "tenant"
	PlanSourceInherited = "inherited"
	PlanSourceUser      = "user"
	PlanSourceDefault   = "default"
)

// TenantSummary is a tenant as a tenant switcher shows it: its id, title
// (the policy's name, else the id), parent and effective plan; PlanFrom
// names the ancestor whose plan it inherits.
type TenantSummary struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Parent   string `json:"parent,omitempty"`
	Plan     string `json:"plan,omitempty"`
	PlanFrom string `json:"plan_from,omitempty"`
}

// LockedPermission is a held permission that the effective plan does not include.
type LockedPermission struct {
	Permission string `json:"permission"`
	Feature    string `json:"feature"`
	Plan       string `json:"plan"`
}

// ToolAccess is one tool's decision for a subject in a tenant.
type ToolAccess struct {
	Tool    string `json:"tool"`
	Flag    string `json:"flag,omitempty"`
	Allowed bool   `json:"allowed"`
	Reason  Reason `json:"reason"`
	Plan    string `json:"plan,omitempty"`
	// Message is the reason of a denied tool as a localized sentence; the
	// engine leaves it empty, a surface that knows its reader's language
	// (the chat's capabilities event) fills it in.
	Message string `json:"message,omitempty"`
}

// Question is one decision any surface asks of the service: a permission,
// a tool call, or an AuthZEN action name to resolve.
type Question struct {
	Request
	// Tool, when set, asks for a call of this tool: its permission, the
	// access permission and, for a tool that performs an agent action, the
	// action's policy, limits and confirmation (steps 6–8).
	Tool string `json:"tool,omitempty"`
	// Name, when neither Tool nor Permission is set, is an AuthZEN action
	// name: a tool of that name, else the tool of the agent action type of
	// that name, else a permission.
	Name string `json:"name,omitempty"`
	// Args are the tool's arguments. Amounts and percentages are read from
	// them as the tool maps them, as json.Number or decimal strings (a
	// float64 is read through its shortest decimal form).
	Args map[string]any `json:"args,omitempty"`
	// Within, when set, confines the question to this tenant's subtree (a
	// tenant-scoped PDP): an empty tenant becomes Within, one outside it is
	// invalid_request.
	Within string `json:"within,omitempty"`
	// Problem, when set, says why the surface could not read the question:
	// the answer is invalid_request, recorded like any other decision.
	Problem string `json:"problem,omitempty"`
	// Explain asks for the path that decided.
	Explain bool `json:"explain,omitempty"`
	// Lang is the language of the answer's message.
	Lang string `json:"-"`
	// Surface and RequestID name where the question came from, for the
	// decision log ("authzen.evaluation", "check", "cli", …).
	Surface   string `json:"-"`
	RequestID string `json:"-"`
	// Conversation is the chat thread a tool call comes from, for the
	// decision log.
	Conversation string `json:"-"`
}

// LimitExceeded names the limit an action exceeded and its figures, as
// decimals: amounts in Currency, percentages in percent.
type LimitExceeded struct {
	Limit     string `json:"limit"`
	Max       string `json:"max"`
	Requested string `json:"requested"`
	// Used is the window's usage before the action: a count for
	// max_count, an amount for max_total_amount.
	Used     string `json:"used,omitempty"`
	Window   string `json:"window,omitempty"`
	Currency string `json:"currency,omitempty"`
}

// Answer is a decision as every surface reports it (CLI check --json,
// /api/v1/check, /api/v1/explain, /api/v1/actions/*, the AuthZEN context):
// the question, the decision, its localized message and, for an agent
// action, its policy, limits and confirmation.
type Answer struct {
	Allowed    bool   `json:"allowed"`
	Reason     Reason `json:"reason"`
	Message    string `json:"message"`
	Subject    string `json:"subject"`
	OnBehalfOf string `json:"on_behalf_of,omitempty"`
	Permission string `json:"permission,omitempty"`
	Tool       string `json:"tool,omitempty"`
	Tenant     string `json:"tenant,omitempty"`
	// DeniedSubject and DeniedPermission say who lacked what.
	DeniedSubject    string `json:"denied_subject,omitempty"`
	DeniedPermission string `json:"denied_permission,omitempty"`
	Feature          string `json:"feature,omitempty"`
	Plan             string `json:"plan,omitempty"`
	// Action is the agent action the tool performs.
	Action string `json:"action,omitempty"`
	// RequiresConfirmation: the action is allowed only once a human
	// confirms it. An authorization stores it pending under ActionID; a
	// read-only evaluation denies it with confirmation_required, and the
	// caller authorizes it to create the confirmation.
	RequiresConfirmation bool         `json:"requires_confirmation"`
	ActionID             string       `json:"action_id,omitempty"`
	Status               ActionStatus `json:"status,omitempty"`
	ExpiresAt            time.Time    `json:"expires_at,omitzero"`
	// Replayed: the idempotency key was used before; this is that result.
	Replayed bool `json:"replayed,omitempty"`
	// Limit names the limit a limit_exceeded denial is about, with figures.
	Limit *LimitExceeded `json:"limit,omitempty"`
	// Problem says, in English, what is wrong with an invalid_request;
	// ProblemCode is its stable code where it has one (the message is
	// then that problem's, localized), ProblemArgs the message's values.
	Problem     string            `json:"problem,omitempty"`
	ProblemCode string            `json:"problem_code,omitempty"`
	ProblemArgs map[string]string `json:"-"`
	// Policy is the effective action policy that decided steps 6–8.
	Policy  *EffectiveAction `json:"policy,omitempty"`
	Version int64            `json:"version"`
	Steps   []ExplainStep    `json:"steps,omitempty"`
}

// NewAnswer reports decision e of req, asked for permission req.Permission
// or, when tool is set, for that tool.
func NewAnswer(req *Request, tool string, e Explanation, message string) Answer {
	a := Answer{
		Allowed: e.Allowed, Reason: e.Reason, Message: message,
		Subject: req.Subject.String(), OnBehalfOf: req.OnBehalfOf.String(), Tenant: req.Tenant,
		DeniedSubject: e.Subject.String(), DeniedPermission: e.Permission,
		Feature: e.Feature, Plan: e.Plan, Version: e.Version, Steps: e.Steps,
	}
	if tool != "" {
		a.Tool = tool
	} else {
		a.Permission = req.Permission
	}
	return a
}
