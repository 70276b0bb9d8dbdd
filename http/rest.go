package http

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

// The native REST API's administration: CRUD for every kind of policy
// object, role bindings and grants, superusers, whole-policy apply, and the
// audit trail. Every write goes through the service's one write path, so it
// is validated, compiled, guarded (last superuser) and audited like
// `gatehouse apply`.

// restKind is a kind of policy object served at /api/v1/{prefix}{section}.
type restKind struct {
	// prefix goes before the section in the path: the RBAC permissions are
	// at /api/v1/rbac/permissions, as /api/v1/permissions serves seed 004's
	// action permissions.
	prefix  string
	section string
	kind    gatehouse.Kind
	// doc is a pointer to the kind's Go type, for the OpenAPI document.
	doc any
}

var restKinds = []restKind{
	{"rbac/", "permissions", gatehouse.KindPermission, new(gatehouse.Permission)},
	{"", "bundles", gatehouse.KindBundle, new(gatehouse.Bundle)},
	{"", "categories", gatehouse.KindCategory, new(gatehouse.Category)},
	{"", "roles", gatehouse.KindRole, new(gatehouse.Role)},
	{"", "plans", gatehouse.KindPlan, new(gatehouse.Plan)},
	{"", "tenants", gatehouse.KindTenant, new(gatehouse.Tenant)},
	{"", "users", gatehouse.KindUser, new(gatehouse.UserEntry)},
	{"", "agents", gatehouse.KindAgent, new(gatehouse.Agent)},
	{"", "tools", gatehouse.KindTool, new(gatehouse.Tool)},
	{"", "action-types", gatehouse.KindAction, new(gatehouse.ActionType)},
}

// writeResult answers every write: the policy version after it and what
// changed (nothing, when the write changed nothing).
type writeResult struct {
	Version int64              `json:"version"`
	Changes []gatehouse.Change `json:"changes"`
	Created bool               `json:"created,omitempty"`
	DryRun  bool               `json:"dry_run,omitempty"`
	// Diff is the changes as `gatehouse apply --dry-run` prints them.
	Diff string `json:"diff,omitempty"`
}

type objectList struct {
	Version int64 `json:"version"`
	Items   []any `json:"items"`
}

// Path and query parameters of the REST routes, for the OpenAPI document.
type (
	idPath struct {
		ID string `path:"id" description:"the object's name, id or (users) email"`
	}
	resourcePath struct {
		Type string `path:"type"`
		ID   string `path:"id"`
	}
	resourceQuery struct {
		Type string `query:"type" description:"only resources of this type"`
	}
	bindingPath struct {
		ID     string `path:"id" description:"the user's email or the agent's id"`
		Name   string `path:"name" description:"the role or permission"`
		Tenant string `query:"tenant" description:"the binding's tenant; none for a global one"`
	}
	applyQuery struct {
		DryRun bool `query:"dry_run" description:"report the changes without applying them"`
	}
	auditQuery struct {
		Actor  string    `query:"actor"`
		Action string    `query:"action"`
		Target string    `query:"target" description:"events whose target starts with this"`
		Kind   string    `query:"kind" enum:"decision,change" description:"decision: the decisions; change: every other event"`
		Reason string    `query:"reason" description:"the decisions with this reason code"`
		Since  time.Time `query:"since" description:"RFC 3339, inclusive"`
		Until  time.Time `query:"until" description:"RFC 3339, exclusive"`
		After  int64     `query:"after" description:"the cursor: events after this sequence number"`
		Limit  int       `query:"limit" description:"at most this many events (default 100, at most 10000)"`
	}
	auditPage struct {
		Events []gatehouse.AuditEvent `json:"events"`
		// Next is the cursor of the following page, 0 at the end.
		Next int64 `json:"next"`
	}
)

func (s *Server) restRoutes(mux *http.ServeMux) {
	for _, k := range restKinds {
		base := "/api/v1/" + k.prefix + k.section
		s.route(mux, http.MethodGet, base, s.authenticated(s.listObjects(k.kind)),
			apiDoc("list_"+k.section, "List the "+k.section, nil, new(objectList)).tagged("admin"))
		s.route(mux, http.MethodGet, base+"/{id}", s.authenticated(s.getObject(k.kind)),
			apiDoc("get_"+k.section, "One of the "+k.section, nil, k.doc).withParams(new(idPath)).tagged("admin"))
		s.route(mux, http.MethodPut, base+"/{id}", s.authenticated(s.putObject(k.kind)),
			apiDoc("put_"+k.section, "Create or replace one of the "+k.section+" (201 when created)", k.doc, new(writeResult)).withParams(new(idPath)).tagged("admin"))
		s.route(mux, http.MethodDelete, base+"/{id}", s.authenticated(s.deleteObject(k.kind)),
			apiDoc("delete_"+k.section, "Delete one of the "+k.section, nil, new(writeResult)).withParams(new(idPath)).tagged("admin"))
	}
	s.route(mux, http.MethodGet, "/api/v1/resources", s.authenticated(s.listObjects(gatehouse.KindResource)),
		apiDoc("list_resources", "List the application resources", nil, new(objectList)).withParams(new(resourceQuery)).tagged("admin"))
	s.route(mux, http.MethodGet, "/api/v1/resources/{type}/{id}", s.authenticated(s.getObject(gatehouse.KindResource)),
		apiDoc("get_resources", "One application resource", nil, new(gatehouse.ResourceEntry)).withParams(new(resourcePath)).tagged("admin"))
	s.route(mux, http.MethodPut, "/api/v1/resources/{type}/{id}", s.authenticated(s.putObject(gatehouse.KindResource)),
		apiDoc("put_resources", "Create or replace an application resource", new(gatehouse.ResourceEntry), new(writeResult)).withParams(new(resourcePath)).tagged("admin"))
	s.route(mux, http.MethodDelete, "/api/v1/resources/{type}/{id}", s.authenticated(s.deleteObject(gatehouse.KindResource)),
		apiDoc("delete_resources", "Delete an application resource", nil, new(writeResult)).withParams(new(resourcePath)).tagged("admin"))
	s.route(mux, http.MethodGet, "/api/v1/settings", s.authenticated(s.getObject(gatehouse.KindSettings)),
		apiDoc("get_settings", "The policy-wide settings", nil, new(gatehouse.Settings)).tagged("admin"))
	s.route(mux, http.MethodPut, "/api/v1/settings", s.authenticated(s.putObject(gatehouse.KindSettings)),
		apiDoc("put_settings", "Replace the policy-wide settings", new(gatehouse.Settings), new(writeResult)).tagged("admin"))

	for _, section := range []string{"users", "agents"} {
		base := "/api/v1/" + section + "/{id}"
		s.route(mux, http.MethodPost, base+"/roles", s.authenticated(s.bind(section, true)),
			apiDoc("bind_"+section, "Assign a role", new(gatehouse.Assignment), new(writeResult)).withParams(new(idPath)).tagged("admin"))
		s.route(mux, http.MethodDelete, base+"/roles/{name}", s.authenticated(s.unbind(section, true)),
			apiDoc("unbind_"+section, "Remove a role assignment", nil, new(writeResult)).withParams(new(bindingPath)).tagged("admin"))
		s.route(mux, http.MethodPost, base+"/grants", s.authenticated(s.bind(section, false)),
			apiDoc("grant_"+section, "Grant a permission directly", new(gatehouse.Grant), new(writeResult)).withParams(new(idPath)).tagged("admin"))
		s.route(mux, http.MethodDelete, base+"/grants/{name}", s.authenticated(s.unbind(section, false)),
			apiDoc("revoke_"+section, "Remove a direct grant", nil, new(writeResult)).withParams(new(bindingPath)).tagged("admin"))
	}
	s.route(mux, http.MethodPut, "/api/v1/users/{id}/superuser", s.authenticated(s.superuser(true)),
		apiDoc("promote", "Make a user a superuser", nil, new(writeResult)).withParams(new(idPath)).tagged("admin"))
	s.route(mux, http.MethodDelete, "/api/v1/users/{id}/superuser", s.authenticated(s.superuser(false)),
		apiDoc("demote", "Take superuser away (never from the last one: 409 last_superuser)", nil, new(writeResult)).withParams(new(idPath)).tagged("admin"))

	s.route(mux, http.MethodGet, "/api/v1/policy", s.authenticated(s.handlePolicy),
		operation{id: "get_policy", summary: "The whole policy as YAML that `gatehouse apply` accepts", tag: "admin",
			security: securityBearer, contentType: "application/yaml"})
	s.route(mux, http.MethodPost, "/api/v1/policy:apply", s.authenticated(s.handleApply),
		apiDoc("apply_policy", "Sync a policy document (YAML or JSON; sections it omits stay as they are)", nil, new(writeResult)).
			withParams(new(applyQuery)).tagged("admin"))
	s.route(mux, http.MethodPost, "/api/v1/users:batch", s.authenticated(s.handleUserBatch),
		apiDoc("batch_users", "Set many users' roles and tenants in one change, audited per user (as `gatehouse user import`)",
			new(userBatch), new(writeResult)).withParams(new(applyQuery)).tagged("admin"))
	s.route(mux, http.MethodGet, "/api/v1/audit", s.authenticated(s.handleAudit),
		apiDoc("audit", "The audit trail, oldest first, with cursor pagination", nil, new(auditPage)).withParams(new(auditQuery)).tagged("admin"))
	s.route(mux, http.MethodGet, "/api/v1/audit/verify", s.authenticated(s.handleVerifyAudit),
		apiDoc("verify_audit", "Verify the audit chain and the signed checkpoints it records (error corrupt when it does not verify)",
			nil, new(audit.Report)).tagged("admin"))
}

// handleVerifyAudit answers GET /api/v1/audit/verify: the whole chain's
// verification, as `gatehouse audit verify` reports it; admins only.
func (s *Server) handleVerifyAudit(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, err := s.svc.VerifyAudit(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, rep)
}

// admin returns what the caller administers; a caller who administers
// nothing is forbidden.
func (s *Server) admin(r *http.Request) (service.AdminScope, error) {
	return s.svc.AdminScope(callerOf(r))
}

// forbidden is the 403 of a tenant admin reaching outside its tenants.
func forbidden(format string, args ...any) error {
	return &Error{Code: CodeForbidden, Reason: gatehouse.ReasonTenantNotVisible, Err: fmt.Errorf(format, args...)}
}

// objectKey is the id of the object a request names: its {id}, or a
// resource's {type}/{id}.
func objectKey(r *http.Request, kind gatehouse.Kind) string {
	if kind == gatehouse.KindResource {
		return r.PathValue("type") + "/" + r.PathValue("id")
	}
	if kind == gatehouse.KindSettings {
		return "settings"
	}
	return r.PathValue("id")
}

func (s *Server) listObjects(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope, _, ok := s.adminRequest(w, r, false)
		if !ok {
			return
		}
		if !scope.Global && kind != gatehouse.KindTenant {
			s.writeError(w, r, forbidden("a tenant admin lists only tenants"))
			return
		}
		objs, v, err := s.svc.ObjectsOf(r.Context(), kind)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		typ := r.URL.Query().Get("type")
		out := objectList{Version: v, Items: []any{}}
		for _, o := range objs {
			if kind == gatehouse.KindTenant && !scope.Covers(o.ID) {
				continue
			}
			if typ != "" && !strings.HasPrefix(o.ID, typ+"/") {
				continue
			}
			out.Items = append(out.Items, o.Body)
		}
		s.writeJSON(w, r, http.StatusOK, out)
	}
}

func (s *Server) getObject(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope, _, ok := s.adminRequest(w, r, false)
		if !ok {
			return
		}
		id := objectKey(r, kind)
		if !scope.Global && (kind != gatehouse.KindTenant || !scope.Covers(id)) {
			s.writeError(w, r, forbidden("%s %q is outside the caller's tenants", kind, id))
			return
		}
		o, err := s.svc.Object(r.Context(), kind, id)
		if errors.Is(err, gatehouse.ErrNotFound) && kind == gatehouse.KindSettings {
			o.Body = []byte("{}")
		} else if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeJSON(w, r, http.StatusOK, o.Body)
	}
}

func (s *Server) putObject(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, body, ok := s.adminRequest(w, r, true)
		if !ok {
			return
		}
		// The service authorizes a tenant admin's change inside the update
		// that commits it (service/authorize.go).
		res, created, err := s.svc.PutObject(r.Context(), s.actor(r), kind, objectKey(r, kind), body)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		s.writeResult(w, r, status, res, created)
	}
}

func (s *Server) deleteObject(kind gatehouse.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := s.adminRequest(w, r, false); !ok {
			return
		}
		res, err := s.svc.DeleteObject(r.Context(), s.actor(r), kind, objectKey(r, kind))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeResult(w, r, http.StatusOK, res, false)
	}
}

// pathSubject is the user or agent of a /users/{id} or /agents/{id} path.
func pathSubject(r *http.Request, section string) gatehouse.SubjectRef {
	if section == "agents" {
		return gatehouse.AgentRef(r.PathValue("id"))
	}
	return gatehouse.User(gatehouse.NormalizeEmail(r.PathValue("id")))
}

// bind adds a role assignment (role is true) or a direct grant. A tenant
// admin may bind only within its tenants.
func (s *Server) bind(section string, role bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, body, ok := s.adminRequest(w, r, true)
		if !ok {
			return
		}
		subject := pathSubject(r, section)
		var res service.Result
		var err error
		if role {
			var a gatehouse.Assignment
			if err = decodeStrict(body, &a); err == nil {
				res, err = s.svc.Bind(r.Context(), s.actor(r), subject, a)
			}
		} else {
			var g gatehouse.Grant
			if err = decodeStrict(body, &g); err == nil {
				res, err = s.svc.AddGrant(r.Context(), s.actor(r), subject, g)
			}
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeResult(w, r, http.StatusOK, res, false)
	}
}

// unbind removes a role assignment (role is true) or a direct grant named
// {name} in ?tenant=.
func (s *Server) unbind(section string, role bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := s.adminRequest(w, r, false); !ok {
			return
		}
		tenant := r.URL.Query().Get("tenant")
		subject, name := pathSubject(r, section), r.PathValue("name")
		var res service.Result
		var err error
		if role {
			res, err = s.svc.Unbind(r.Context(), s.actor(r), subject, name, tenant)
		} else {
			res, err = s.svc.RemoveGrant(r.Context(), s.actor(r), subject, name, tenant)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeResult(w, r, http.StatusOK, res, false)
	}
}

// superuser promotes or demotes the user {id}; global admins only.
func (s *Server) superuser(promote bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.requireAdmin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
		email := r.PathValue("id")
		var res service.Result
		var err error
		if promote {
			res, err = s.svc.Promote(r.Context(), s.actor(r), email)
		} else {
			res, err = s.svc.Demote(r.Context(), s.actor(r), email)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.writeResult(w, r, http.StatusOK, res, false)
	}
}

// yamlTypes are the content types policy:apply reads as YAML; JSON is
// YAML's subset, so one parser reads both.
var yamlTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "application/json"}

// linesTypes are the content types policy:apply reads as a JSON-lines
// document (policy.ParseLines).
var linesTypes = []string{"application/jsonl", "application/x-ndjson"}

// handleApply syncs a policy document, like `gatehouse apply`.
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	ct = strings.TrimSpace(strings.ToLower(ct))
	lines := slices.Contains(linesTypes, ct)
	if !lines && !slices.Contains(yamlTypes, ct) {
		s.writeError(w, r, &Error{Code: CodeUnsupportedMediaType, Message: "error.policy_media_type", Err: fmt.Errorf("content type %q", ct)})
		return
	}
	body, err := readLimited(w, r, s.cfg.MaxApplyBytes, "error.policy_too_large")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	dryRun, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
	var doc *policy.Document
	if lines {
		doc, err = policy.ParseLines("policy", bytes.NewReader(body), s.cfg.MaxApplyBytes)
	} else {
		doc, err = policy.ParseMax("policy", body, s.cfg.MaxApplyBytes)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.svc.ApplyTaking(r.Context(), s.actor(r), doc, dryRun)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, writeResult{Version: res.Version, Changes: changes(res), DryRun: dryRun, Diff: policy.FormatDiff(res.Changes)})
}

// userBatch is the body of POST /api/v1/users:batch.
type userBatch struct {
	Users []service.UserRecord `json:"users"`
}

// handleUserBatch sets many users at once, in one transaction, like
// `gatehouse user import`. A batch is a bulk body: it is bounded by
// Config.MaxApplyBytes, not MaxBodyBytes. Problems name the record by its
// index (users[3]) and nothing changes.
func (s *Server) handleUserBatch(w http.ResponseWriter, r *http.Request) {
	if _, err := s.admin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBodyMax(w, r, s.cfg.MaxApplyBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var batch userBatch
	if err := decodeStrict(body, &batch); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(batch.Users) == 0 {
		s.writeError(w, r, missingField("users"))
		return
	}
	dryRun, _ := strconv.ParseBool(r.URL.Query().Get("dry_run"))
	res, err := s.svc.ImportUsers(r.Context(), s.actor(r), "", batch.Users, dryRun)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, writeResult{Version: res.Version, Changes: changes(res), DryRun: dryRun, Diff: policy.FormatDiff(res.Changes)})
}

// handleAudit lists audit events; global admins only.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	f := gatehouse.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), TargetPrefix: q.Get("target"),
		Kind: q.Get("kind"), Reason: q.Get("reason")}
	var err error
	if kerr := f.CheckKind(); kerr != nil {
		err = invalid("error.bad_query", map[string]any{"Field": "kind"}).wrap(kerr)
	}
	parseInt := func(key string, dst *int64) {
		if v := q.Get(key); v != "" && err == nil {
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil || *dst < 0 {
				err = invalid("error.bad_query", map[string]any{"Field": key}).wrap(fmt.Errorf("%s=%q", key, v))
			}
		}
	}
	parseTime := func(key string, dst *time.Time) {
		if v := q.Get(key); v != "" && err == nil {
			if *dst, err = time.Parse(time.RFC3339, v); err != nil {
				err = invalid("error.bad_query", map[string]any{"Field": key}).wrap(err)
			}
		}
	}
	var limit int64
	parseInt("after", &f.AfterSeq)
	parseInt("limit", &limit)
	parseTime("since", &f.Since)
	parseTime("until", &f.Until)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = int(min(limit, 10000))
	events, err := s.svc.ListAudit(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page := auditPage{Events: events}
	if page.Events == nil {
		page.Events = []gatehouse.AuditEvent{}
	}
	want := f.Limit
	if want == 0 {
		want = 100
	}
	if len(events) == want {
		page.Next = events[len(events)-1].Seq
	}
	s.writeJSON(w, r, http.StatusOK, page)
}

// adminRequest finds what the caller administers and, if withBody, reads
// the request body; ok is false when it has answered with an error.
func (s *Server) adminRequest(w http.ResponseWriter, r *http.Request, withBody bool) (scope service.AdminScope, body []byte, ok bool) {
	scope, err := s.admin(r)
	if err == nil && withBody {
		body, err = s.readBody(w, r)
	}
	if err != nil {
		s.writeError(w, r, err)
		return service.AdminScope{}, nil, false
	}
	return scope, body, true
}

// writeResult answers a write with its result.
func (s *Server) writeResult(w http.ResponseWriter, r *http.Request, status int, res service.Result, created bool) {
	s.writeJSON(w, r, status, writeResult{Version: res.Version, Changes: changes(res), Created: created})
}

// actor names the caller in the audit trail.
func (s *Server) actor(r *http.Request) string { return callerOf(r).Subject.String() }

// changes is res's changes, never null.
func changes(res service.Result) []gatehouse.Change {
	if res.Changes == nil {
		return []gatehouse.Change{}
	}
	return res.Changes
}
