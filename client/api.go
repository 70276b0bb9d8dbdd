package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
)

// CheckRequest asks the native API whether Subject may use Permission, or
// call Tool (exactly one of the two), in Tenant. A zero Subject is the
// caller the token names; another subject needs an administrator's token.
type CheckRequest struct {
	Subject gatehouse.SubjectRef
	// OnBehalfOf is the user an agent acts for; both must be allowed.
	OnBehalfOf gatehouse.SubjectRef
	Permission string
	Tool       string
	Tenant     string
	Resource   gatehouse.Resource
	// Context, SubjectProperties and ActionProperties reach CEL conditions.
	Context           map[string]any
	SubjectProperties map[string]any
	ActionProperties  map[string]any
	// Args are a tool's arguments: for a tool that performs an agent
	// action, its amount, percentage and currency are read from them and
	// checked against the tenant's limits. Send amounts as decimal strings.
	Args map[string]any
}

// checkJSON is a CheckRequest on the wire: subjects as "user:EMAIL".
type checkJSON struct {
	Subject           string             `json:"subject,omitempty"`
	OnBehalfOf        string             `json:"on_behalf_of,omitempty"`
	Permission        string             `json:"permission,omitempty"`
	Tool              string             `json:"tool,omitempty"`
	Tenant            string             `json:"tenant,omitempty"`
	Context           map[string]any     `json:"context,omitempty"`
	Resource          gatehouse.Resource `json:"resource,omitzero"`
	SubjectProperties map[string]any     `json:"subject_properties,omitempty"`
	ActionProperties  map[string]any     `json:"action_properties,omitempty"`
	Args              map[string]any     `json:"args,omitempty"`
}

func (r *CheckRequest) wire() checkJSON {
	return checkJSON{Subject: r.Subject.String(), OnBehalfOf: r.OnBehalfOf.String(), Permission: r.Permission,
		Tool: r.Tool, Tenant: r.Tenant, Context: r.Context, Resource: r.Resource,
		SubjectProperties: r.SubjectProperties, ActionProperties: r.ActionProperties, Args: r.Args}
}

// Check decides req (POST /api/v1/check). A deny is an Answer with Allowed
// false and its reason, not an error. Errors: unauthorized without a valid
// token; ask_forbidden when asking about another subject without a PEP
// credential or admin rights; invalid for a malformed request (both or
// neither of Permission and Tool). A tool that performs an agent action is
// decided with its policy, limits (from Args) and confirmation, read-only:
// one that needs a confirmation is denied with confirmation_required.
func (c *Client) Check(ctx context.Context, req CheckRequest) (gatehouse.Answer, error) {
	var a gatehouse.Answer
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/check", body: req.wire()}, &a)
	return a, err
}

// Explain decides req like Check and returns the decision path in Steps
// (POST /api/v1/explain).
func (c *Client) Explain(ctx context.Context, req CheckRequest) (gatehouse.Answer, error) {
	var a gatehouse.Answer
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/explain", body: req.wire()}, &a)
	return a, err
}

// Effective returns everything the caller may do in tenant: permissions,
// locked features and tool flags (GET /api/v1/me/effective). An unknown
// tenant or caller is not_found.
func (c *Client) Effective(ctx context.Context, tenant string) (gatehouse.Effective, error) {
	var q url.Values
	if tenant != "" {
		q = url.Values{"tenant": {tenant}}
	}
	var e gatehouse.Effective
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/me/effective", query: q}, &e)
	return e, err
}

// Tenants returns the tenants the caller may see, sorted by id, each with
// its title, parent and effective plan (GET /api/v1/me/tenants): a
// frontend's tenant switcher.
func (c *Client) Tenants(ctx context.Context) ([]gatehouse.TenantSummary, error) {
	var out struct {
		Tenants []gatehouse.TenantSummary `json:"tenants"`
	}
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/me/tenants"}, &out)
	return out.Tenants, err
}
