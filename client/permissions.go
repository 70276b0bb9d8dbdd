package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/gatehouse/gatehouse"
)

// Seed 004's permission API: each action type's effective policy in a
// tenant and its limits, for an administrator of the tenant. Every method
// takes the tenant; "" lets the server pick the token's tenant claim, else
// the caller's only tenant (else invalid, Field "tenant").

// ActionPermission is one action type's effective policy in a tenant
// (GET /api/v1/permissions). EnabledFrom and RequiresConfirmationFrom say
// where each part comes from: gatehouse.SourceDefault or "tenant:ID".
type ActionPermission struct {
	ID                       string `json:"id"`
	StoreID                  string `json:"store_id"`
	Tenant                   string `json:"tenant"`
	ActionType               string `json:"action_type"`
	Label                    string `json:"label"`
	Description              string `json:"description,omitempty"`
	Enabled                  bool   `json:"enabled"`
	RequiresConfirmation     bool   `json:"requires_confirmation"`
	EnabledFrom              string `json:"enabled_from"`
	RequiresConfirmationFrom string `json:"requires_confirmation_from"`
	ApproverPermission       string `json:"approver_permission,omitempty"`
	PolicyVersion            int64  `json:"policy_version"`
}

// ActionPermissionUpdate changes a tenant's own policy of an action type;
// nil fields stay as they are.
type ActionPermissionUpdate struct {
	Enabled              *bool `json:"enabled,omitempty"`
	RequiresConfirmation *bool `json:"requires_confirmation,omitempty"`
}

// ActionLimit is one limit of an action type in a tenant
// (GET /api/v1/permissions/limits). LimitValue is the decimal as stored;
// Window and TimeWindowHours are set for max_count and max_total_amount;
// Source is gatehouse.SourceDefault or "tenant:ID".
type ActionLimit struct {
	ID              string `json:"id"`
	StoreID         string `json:"store_id"`
	Tenant          string `json:"tenant"`
	ActionType      string `json:"action_type"`
	LimitType       string `json:"limit_type"`
	LimitValue      string `json:"limit_value"`
	Currency        string `json:"currency,omitempty"`
	Window          string `json:"window,omitempty"`
	TimeWindowHours int64  `json:"time_window_hours,omitempty"`
	Source          string `json:"source"`
	PolicyVersion   int64  `json:"policy_version"`
}

// ActionLimitRequest creates or updates one limit. LimitType is max_amount,
// max_percentage, max_count, max_total_amount or time_window (max_count
// within a window); the windowed ones need Window or TimeWindowHours, the
// amounts a Currency unless the limits have one.
type ActionLimitRequest struct {
	ActionType      string            `json:"action_type"`
	LimitType       string            `json:"limit_type"`
	LimitValue      gatehouse.Decimal `json:"limit_value"`
	Window          string            `json:"window,omitempty"`
	TimeWindowHours int64             `json:"time_window_hours,omitempty"`
	Currency        string            `json:"currency,omitempty"`
}

// tenantQuery is the ?tenant= of a permission call.
func tenantQuery(tenant string) url.Values {
	if tenant == "" {
		return nil
	}
	return url.Values{"tenant": {tenant}}
}

// ActionPermissions returns each action type's effective policy in tenant
// (GET /api/v1/permissions).
func (c *Client) ActionPermissions(ctx context.Context, tenant string) ([]ActionPermission, error) {
	var rows []ActionPermission
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/permissions", query: tenantQuery(tenant)}, &rows)
	return rows, err
}

// SetActionPermission sets tenant's own enabled and requires_confirmation
// of action, the fields u gives, and returns the action's policy after it
// (PUT /api/v1/permissions/{action}). An unknown action type is not_found.
func (c *Client) SetActionPermission(ctx context.Context, tenant, action string, u ActionPermissionUpdate) (ActionPermission, error) {
	var row ActionPermission
	err := c.call(ctx, request{method: http.MethodPut, path: "/api/v1/permissions" + pathEscape(action),
		query: tenantQuery(tenant), body: u}, &row)
	return row, err
}

// InheritActionPermission removes tenant's own policy of action, limits
// included, so that it inherits again (DELETE /api/v1/permissions/{action}).
func (c *Client) InheritActionPermission(ctx context.Context, tenant, action string) (ActionPermission, error) {
	var row ActionPermission
	err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/permissions" + pathEscape(action),
		query: tenantQuery(tenant)}, &row)
	return row, err
}

// ActionLimits returns the effective limits in tenant, one per row
// (GET /api/v1/permissions/limits).
func (c *Client) ActionLimits(ctx context.Context, tenant string) ([]ActionLimit, error) {
	var rows []ActionLimit
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/permissions/limits", query: tenantQuery(tenant)}, &rows)
	return rows, err
}

// SetActionLimit creates or updates one limit and returns its row (POST
// /api/v1/permissions/limits): the action's effective limits, with this
// one set, become tenant's own. A refused value is invalid with Field
// naming the request field.
func (c *Client) SetActionLimit(ctx context.Context, tenant string, l ActionLimitRequest) (ActionLimit, error) {
	var row ActionLimit
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/permissions/limits", query: tenantQuery(tenant), body: l}, &row)
	return row, err
}

// DeleteActionLimit removes one limit of action and returns the action's
// remaining limits, which become tenant's own (DELETE
// /api/v1/permissions/limits/{action}/{limit_type}). A limit the action
// does not have is not_found.
func (c *Client) DeleteActionLimit(ctx context.Context, tenant, action, limitType string) ([]ActionLimit, error) {
	var rows []ActionLimit
	err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/permissions/limits" + pathEscape(action, limitType),
		query: tenantQuery(tenant)}, &rows)
	return rows, err
}
