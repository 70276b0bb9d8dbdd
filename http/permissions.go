package http

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
	"github.com/gatehouse/gatehouse/service"
)

// Seed 004's permission API under /api/v1/permissions: each action type's
// effective policy in a tenant, a partial update of it, and its limits as
// one row per limit. The rows are views of the policy document, where
// Gatehouse keeps action policies: they carry the policy version instead of
// timestamps, and every change is one validated, audited policy change
// (event action.policy). The RBAC permissions are at /api/v1/rbac/permissions.

// actionRowSpace is the namespace of the rows' ids: a row's id is the SHA-1
// UUID of its tenant, action type and (limits) limit type, so it is the
// same on every read and every instance.
var actionRowSpace = uuid.MustParse("6288ee9e-6558-42a3-ad27-d98c2a4bedbf")

// limitTimeWindow is seed 004's name of a limit on how many actions a
// window may hold: max_count with a window in Gatehouse.
const limitTimeWindow = "time_window"

type (
	// permissionRow is one action type's effective policy in a tenant:
	// seed 004's ActionPermissionResponse without timestamps, with the
	// provenance of each part.
	permissionRow struct {
		ID                       string `json:"id" description:"stable: derived from the tenant and the action type"`
		StoreID                  string `json:"store_id" description:"the tenant (seed 004's store)"`
		Tenant                   string `json:"tenant"`
		ActionType               string `json:"action_type"`
		Label                    string `json:"label" description:"in the language of Accept-Language, else English, else the action type"`
		Description              string `json:"description,omitempty" description:"in the language of Accept-Language, else English"`
		Enabled                  bool   `json:"enabled"`
		RequiresConfirmation     bool   `json:"requires_confirmation"`
		EnabledFrom              string `json:"enabled_from" description:"default, or tenant:ID of the tenant that sets it"`
		RequiresConfirmationFrom string `json:"requires_confirmation_from" description:"default, or tenant:ID of the tenant that sets it"`
		ApproverPermission       string `json:"approver_permission,omitempty" description:"whose holders may confirm besides the customer"`
		// Ceilings are the parts an ancestor enforces for its subtree.
		Ceilings      map[string]string `json:"ceilings,omitempty" description:"enabled, requires_confirmation, limits: the tenant:ID that enforces each for its subtree; this tenant may only tighten them"`
		PolicyVersion int64             `json:"policy_version"`
	}
	// limitRow is one limit of an action type in a tenant: seed 004's
	// ActionLimitResponse without timestamps, with its provenance.
	limitRow struct {
		ID         string `json:"id" description:"stable: derived from the tenant, the action type and the limit type"`
		StoreID    string `json:"store_id" description:"the tenant (seed 004's store)"`
		Tenant     string `json:"tenant"`
		ActionType string `json:"action_type"`
		LimitType  string `json:"limit_type" enum:"max_amount,max_percentage,max_count,max_total_amount,time_window" description:"time_window only in the answer to a request that used it"`
		LimitValue string `json:"limit_value" description:"the decimal as stored, e.g. 100.00; max_count as an integer"`
		Currency   string `json:"currency,omitempty" description:"of max_amount and max_total_amount"`
		Window     string `json:"window,omitempty" description:"of max_count and max_total_amount: a Go duration such as 24h"`
		// TimeWindowHours is Window in whole hours; omitted when it is not.
		TimeWindowHours int64  `json:"time_window_hours,omitempty"`
		Source          string `json:"source" description:"default, or tenant:ID of the tenant whose limits these are"`
		PolicyVersion   int64  `json:"policy_version"`
	}
	// permissionUpdate is seed 004's ActionPermissionUpdate: absent fields
	// stay as they are.
	permissionUpdate struct {
		Enabled              *bool `json:"enabled,omitempty"`
		RequiresConfirmation *bool `json:"requires_confirmation,omitempty"`
	}
	// limitBody is seed 004's ActionLimitCreate.
	limitBody struct {
		ActionType      string          `json:"action_type" required:"true"`
		LimitType       string          `json:"limit_type" required:"true" enum:"max_amount,max_percentage,max_count,max_total_amount,time_window"`
		LimitValue      json.RawMessage `json:"limit_value" required:"true" description:"a positive decimal, as a number or a string; max_count and time_window a positive whole number"`
		Window          string          `json:"window,omitempty" description:"the window of max_count, max_total_amount or time_window, a Go duration such as 24h; or time_window_hours"`
		TimeWindowHours *int64          `json:"time_window_hours,omitempty" description:"the window in whole hours; or window"`
		Currency        string          `json:"currency,omitempty" description:"ISO 4217, for max_amount and max_total_amount; required unless the limits have one"`
	}
	tenantParams struct {
		TenantHeader string `header:"X-Tenant-ID" description:"the tenant; else ?tenant=, else the token's tenant claim, else the caller's only tenant"`
		Tenant       string `query:"tenant" description:"the tenant, when X-Tenant-ID names none"`
	}
	actionTypeParams struct {
		tenantParams
		ActionType string `path:"action_type" description:"the action type, e.g. process_refund"`
	}
	limitParams struct {
		tenantParams
		ActionType string `path:"action_type" description:"the action type, e.g. process_refund"`
		LimitType  string `path:"limit_type" enum:"max_amount,max_percentage,max_count,max_total_amount,time_window"`
	}
)

func (s *Server) permissionRoutes(mux *http.ServeMux) {
	doc := func(id, summary string, body, resp, params any) operation {
		return apiDoc(id, summary, body, resp).withParams(params).tagged("actions")
	}
	s.route(mux, http.MethodGet, "/api/v1/permissions", s.authenticated(s.handlePermissions),
		doc("list_action_permissions", "Each action type's effective policy in the tenant and where each part comes from",
			nil, new([]permissionRow), new(tenantParams)))
	s.route(mux, http.MethodPut, "/api/v1/permissions/{action_type}", s.authenticated(s.handleSetPermission),
		doc("set_action_permission", "Set the tenant's own enabled and requires_confirmation of an action type (the fields given)",
			new(permissionUpdate), new(permissionRow), new(actionTypeParams)))
	s.route(mux, http.MethodDelete, "/api/v1/permissions/{action_type}", s.authenticated(s.handleInheritPermission),
		doc("inherit_action_permission", "Remove the tenant's own policy of an action type, limits included, so that it inherits again",
			nil, new(permissionRow), new(actionTypeParams)))
	s.route(mux, http.MethodGet, "/api/v1/permissions/limits", s.authenticated(s.handleLimits),
		doc("list_action_limits", "The effective limits in the tenant, one row per limit", nil, new([]limitRow), new(tenantParams)))
	s.route(mux, http.MethodGet, "/api/v1/permissions/usage", s.authenticated(s.handleUsage),
		doc("action_usage", "What each windowed limit's window holds now in the tenant (count, total amount)",
			nil, new([]gatehouse.WindowUsage), new(tenantParams)))
	s.route(mux, http.MethodPost, "/api/v1/permissions/limits", s.authenticated(s.handleSetLimit),
		doc("set_action_limit", "Create or update one limit: the action's effective limits, with this one set, become the tenant's own",
			new(limitBody), new(limitRow), new(tenantParams)))
	s.route(mux, http.MethodDelete, "/api/v1/permissions/limits/{action_type}/{limit_type}", s.authenticated(s.handleDeleteLimit),
		doc("delete_action_limit", "Remove one limit: the action's other effective limits become the tenant's own; answers the remaining rows",
			nil, new([]limitRow), new(limitParams)))
}

// adminTenant returns the tenant a request is for: the X-Tenant-ID header,
// else ?tenant=, else the tenant claim of the caller's bearer JWT, else the
// one tenant of a caller that is a user whose entry lists exactly one. The
// caller must administer it; a caller that administers nothing is
// forbidden whatever the request names.
func (s *Server) adminTenant(r *http.Request) (string, error) {
	caller := callerOf(r)
	if _, err := s.svc.AdminScope(caller); err != nil {
		return "", err
	}
	tenant := strings.TrimSpace(r.Header.Get("X-Tenant-ID"))
	if tenant == "" {
		tenant = strings.TrimSpace(r.URL.Query().Get("tenant"))
	}
	if tenant == "" {
		tenant = strings.TrimSpace(caller.Tenant)
	}
	if tenant == "" && caller.Subject.Type == gatehouse.SubjectUser {
		u, err := s.svc.User(r.Context(), caller.Subject.ID)
		if err != nil {
			return "", err
		}
		if len(u.Tenants) == 1 {
			tenant = u.Tenants[0]
		}
	}
	if tenant == "" {
		return "", missingField("tenant")
	}
	return s.svc.AdminTenant(caller, tenant)
}

// handlePermissions answers GET /api/v1/permissions: a row per action type,
// sorted by action type.
func (s *Server) handlePermissions(w http.ResponseWriter, r *http.Request) {
	version, pols, err := s.tenantPolicies(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows := make([]permissionRow, len(pols))
	for i, p := range pols {
		rows[i] = permissionRowOf(version, p)
	}
	s.writeJSON(w, r, http.StatusOK, rows)
}

// handleSetPermission answers PUT /api/v1/permissions/{action_type}.
func (s *Server) handleSetPermission(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in permissionUpdate
	body, err := s.readBody(w, r)
	if err == nil {
		err = decodeStrict(body, &in)
	}
	action := r.PathValue("action_type")
	// An empty update changes nothing; the answer still says 404 for an
	// unknown action type.
	if err == nil && (in.Enabled != nil || in.RequiresConfirmation != nil) {
		_, err = s.svc.SetActionPolicy(r.Context(), s.actor(r), tenant, action,
			service.ActionPolicyChange{Enabled: in.Enabled, RequiresConfirmation: in.RequiresConfirmation})
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerPermission(w, r, tenant, action)
}

// handleInheritPermission answers DELETE /api/v1/permissions/{action_type}.
func (s *Server) handleInheritPermission(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	action := r.PathValue("action_type")
	if _, err := s.svc.InheritActionPolicy(r.Context(), s.actor(r), tenant, action); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerPermission(w, r, tenant, action)
}

// answerPermission answers with action's row in tenant as it is now.
func (s *Server) answerPermission(w http.ResponseWriter, r *http.Request, tenant, action string) {
	v, pols, err := s.svc.TenantActions(tenant, action, language(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, permissionRowOf(v, pols[0]))
}

func permissionRowOf(version int64, p service.ActionPolicyText) permissionRow {
	return permissionRow{
		ID:      uuid.NewSHA1(actionRowSpace, []byte(p.Tenant+"\x00"+p.Action)).String(),
		StoreID: p.Tenant, Tenant: p.Tenant, ActionType: p.Action,
		Label:       p.Label,
		Description: p.Description,
		Enabled:     p.Enabled, RequiresConfirmation: p.RequiresConfirmation,
		EnabledFrom: p.EnabledFrom, RequiresConfirmationFrom: p.RequiresConfirmationFrom,
		ApproverPermission: p.Approver, Ceilings: p.Ceilings,
		PolicyVersion: version,
	}
}

// tenantPolicies returns the effective action policies of the tenant r
// names, which the caller must administer, and the version they are of.
func (s *Server) tenantPolicies(r *http.Request) (int64, []service.ActionPolicyText, error) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		return 0, nil, err
	}
	return s.svc.TenantActions(tenant, "", language(r.Context()))
}

// handleLimits answers GET /api/v1/permissions/limits: the rows of every
// action type's effective limits, by action type and then in the order of
// gatehouse.LimitTypes.
func (s *Server) handleLimits(w http.ResponseWriter, r *http.Request) {
	version, pols, err := s.tenantPolicies(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows := []limitRow{}
	for _, p := range pols {
		rows = append(rows, limitRows(version, p.EffectiveAction)...)
	}
	s.writeJSON(w, r, http.StatusOK, rows)
}

// handleUsage answers GET /api/v1/permissions/usage for a tenant the
// caller administers.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	usage, err := s.svc.ActionUsage(r.Context(), tenant)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, usage)
}

// limitRows returns a row for each limit p has.
func limitRows(version int64, p gatehouse.EffectiveAction) []limitRow {
	if p.Limits == nil {
		return nil
	}
	var rows []limitRow
	for _, typ := range gatehouse.LimitTypes {
		if p.Limits.Value(typ) != "" {
			rows = append(rows, limitRowOf(version, p, typ))
		}
	}
	return rows
}

// limitRowOf returns the row of p's limit of type typ, which p has.
func limitRowOf(version int64, p gatehouse.EffectiveAction, typ string) limitRow {
	row := limitRow{
		ID:      uuid.NewSHA1(actionRowSpace, []byte(p.Tenant+"\x00"+p.Action+"\x00"+typ)).String(),
		StoreID: p.Tenant, Tenant: p.Tenant, ActionType: p.Action,
		LimitType: typ, LimitValue: p.Limits.Value(typ), Source: p.LimitsFrom, PolicyVersion: version,
	}
	if gatehouse.IsAmountLimit(typ) {
		row.Currency = p.Limits.Currency
	}
	if gatehouse.IsWindowLimit(typ) {
		row.Window = p.Limits.Window
		if w := p.Exact.Window; w%time.Hour == 0 {
			row.TimeWindowHours = int64(w / time.Hour)
		}
	}
	return row
}

// canonicalLimit returns the limit type name stands for; false for none.
func canonicalLimit(name string) (string, bool) {
	if name == limitTimeWindow {
		return gatehouse.LimitMaxCount, true
	}
	for _, typ := range gatehouse.LimitTypes {
		if name == typ {
			return typ, true
		}
	}
	return "", false
}

// badField is the 400 of a field whose value is refused.
func badField(field string, cause error) error {
	return invalid("error.bad_field", map[string]any{"Field": field}).wrap(cause)
}

// limitChange is a checked limitBody: the one limit to set.
type limitChange struct {
	typ   string
	value gatehouse.Decimal
	count int64
	// window, when set, replaces the limits' window; windowField is the
	// request field that gave it.
	window, windowField string
	currency            string
}

// parseLimit checks what in says on its own; what depends on the limits it
// changes is checked by apply.
func parseLimit(in limitBody) (limitChange, error) {
	if in.LimitType == "" {
		return limitChange{}, missingField("limit_type")
	}
	typ, ok := canonicalLimit(in.LimitType)
	if !ok {
		return limitChange{}, badField("limit_type", fmt.Errorf("limit type %q", in.LimitType))
	}
	c := limitChange{typ: typ, currency: strings.TrimSpace(in.Currency)}
	if isNull(in.LimitValue) {
		return limitChange{}, missingField("limit_value")
	}
	// A JSON number or a string holding one, kept as written.
	var text json.Number
	if err := json.Unmarshal(in.LimitValue, &text); err != nil {
		return limitChange{}, badField("limit_value", err)
	}
	c.value = gatehouse.Decimal(text)
	if typ == gatehouse.LimitMaxCount {
		n, err := strconv.ParseInt(string(c.value), 10, 64)
		if err != nil || n <= 0 {
			return limitChange{}, badField("limit_value", fmt.Errorf("max_count %q: want a positive whole number", c.value))
		}
		c.count = n
	}
	if c.currency != "" && !gatehouse.IsAmountLimit(typ) {
		return limitChange{}, badField("currency", fmt.Errorf("%s has no currency", typ))
	}
	if in.Window != "" {
		d, err := time.ParseDuration(strings.TrimSpace(in.Window))
		if err != nil || d <= 0 {
			return limitChange{}, invalid("error.bad_duration", map[string]any{"Field": "window"}).wrap(fmt.Errorf("window %q", in.Window))
		}
		c.window, c.windowField = strings.TrimSpace(in.Window), "window"
		if h := in.TimeWindowHours; h != nil && time.Duration(*h)*time.Hour != d {
			return limitChange{}, badField("time_window_hours", fmt.Errorf("%d hours, but window %s", *h, in.Window))
		}
	} else if h := in.TimeWindowHours; h != nil {
		if *h <= 0 || *h > int64(money.MaxWindow/time.Hour) {
			return limitChange{}, badField("time_window_hours", fmt.Errorf("%d hours", *h))
		}
		c.window, c.windowField = strconv.FormatInt(*h, 10)+"h", "time_window_hours"
	}
	switch {
	case c.window == "" && gatehouse.IsWindowLimit(typ):
		return limitChange{}, missingField("window")
	case c.window != "" && !gatehouse.IsWindowLimit(typ):
		return limitChange{}, badField(c.windowField, fmt.Errorf("%s has no window", typ))
	}
	return c, nil
}

// apply sets c's limit in l, the effective limits it changes.
func (c limitChange) apply(l *gatehouse.ActionLimits) error {
	switch c.typ {
	case gatehouse.LimitMaxAmount:
		l.MaxAmount = c.value
	case gatehouse.LimitMaxPercentage:
		l.MaxPercentage = c.value
	case gatehouse.LimitMaxCount:
		l.MaxCount = new(c.count)
	case gatehouse.LimitMaxTotalAmount:
		l.MaxTotalAmount = c.value
	}
	if gatehouse.IsAmountLimit(c.typ) {
		other := l.MaxTotalAmount
		if c.typ == gatehouse.LimitMaxTotalAmount {
			other = l.MaxAmount
		}
		switch {
		case c.currency == "" && l.Currency == "":
			return missingField("currency")
		case c.currency != "" && other != "" && l.Currency != c.currency:
			// One currency for all of an action's amounts: changing it would
			// change what the other amount means.
			return badField("currency", fmt.Errorf("the other amount limit is in %s", l.Currency))
		case c.currency != "":
			l.Currency = c.currency
		}
	}
	if c.window != "" {
		l.Window = c.window
	}
	if _, problems := money.Limits(*l); len(problems) > 0 {
		p := problems[0]
		field := p.Field
		if field == c.typ {
			field = "limit_value"
		}
		return badField(field, fmt.Errorf("%s: %s", p.Field, p.Message))
	}
	return nil
}

// handleSetLimit answers POST /api/v1/permissions/limits with the row of
// the limit it set, its limit_type as the request named it.
func (s *Server) handleSetLimit(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in limitBody
	body, err := s.readBody(w, r)
	if err == nil {
		err = decodeStrict(body, &in)
	}
	if err == nil && strings.TrimSpace(in.ActionType) == "" {
		err = missingField("action_type")
	}
	if err == nil {
		// An unknown action type is 404 whatever else is wrong.
		_, _, err = s.svc.TenantActions(tenant, in.ActionType, "")
	}
	var c limitChange
	if err == nil {
		c, err = parseLimit(in)
	}
	var (
		p       gatehouse.EffectiveAction
		version int64
	)
	if err == nil {
		p, version, err = s.editLimits(r, tenant, in.ActionType, c.apply)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	row := limitRowOf(version, p, c.typ)
	row.LimitType = in.LimitType
	s.writeJSON(w, r, http.StatusOK, row)
}

// handleDeleteLimit answers DELETE
// /api/v1/permissions/limits/{action_type}/{limit_type} with the rows of
// the action's remaining limits. A limit the action does not have is 404.
func (s *Server) handleDeleteLimit(w http.ResponseWriter, r *http.Request) {
	tenant, err := s.adminTenant(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	action := r.PathValue("action_type")
	typ, ok := canonicalLimit(r.PathValue("limit_type"))
	if !ok {
		s.writeError(w, r, gatehouse.NotFoundf("limit type %q", r.PathValue("limit_type")))
		return
	}
	p, version, err := s.editLimits(r, tenant, action, func(l *gatehouse.ActionLimits) error {
		if !l.Remove(typ) {
			return gatehouse.NotFoundf("limit %s of action %q in tenant %q", typ, action, tenant)
		}
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rows := limitRows(version, p)
	if rows == nil {
		rows = []limitRow{}
	}
	s.writeJSON(w, r, http.StatusOK, rows)
}

// editLimits makes edit's change of action's effective limits in tenant
// the tenant's own and returns them as written, with the policy version
// that holds them: a later write by someone else does not change the
// answer.
func (s *Server) editLimits(r *http.Request, tenant, action string, edit func(l *gatehouse.ActionLimits) error) (gatehouse.EffectiveAction, int64, error) {
	var after gatehouse.ActionLimits
	res, err := s.svc.EditActionLimits(r.Context(), s.actor(r), tenant, action, func(l *gatehouse.ActionLimits) error {
		if err := edit(l); err != nil {
			return err
		}
		after = *l
		return nil
	})
	if err != nil {
		return gatehouse.EffectiveAction{}, 0, err
	}
	// The service validated them: no problems are left.
	exact, _ := money.Limits(after)
	return gatehouse.EffectiveAction{Action: action, Tenant: tenant,
		Limits: &after, LimitsFrom: gatehouse.TenantSource(tenant), Exact: exact}, res.Version, nil
}
