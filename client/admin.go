package client

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
)

// The administration endpoints need an administrator's token: a superuser
// or a holder of the policy's admin permission (a tenant admin may manage
// only tenants, bindings and grants within its tenants). Others get an
// *Error with code forbidden and the decision's Reason.

// WriteResult answers every write: the policy version after it and what
// changed (nothing, when the write changed nothing).
type WriteResult struct {
	Version int64              `json:"version"`
	Changes []gatehouse.Change `json:"changes"`
	// Created is set when a PUT created the object.
	Created bool `json:"created,omitempty"`
	DryRun  bool `json:"dry_run,omitempty"`
	// Diff is the changes as `gatehouse apply --dry-run` prints them.
	Diff string `json:"diff,omitempty"`
}

// Policy returns the stored policy as the YAML document `gatehouse apply`
// accepts (GET /api/v1/policy).
func (c *Client) Policy(ctx context.Context) ([]byte, error) {
	var doc []byte
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/policy"}, &doc)
	return doc, err
}

// ApplyPolicy syncs a YAML or JSON policy document, like `gatehouse apply`:
// sections it omits stay as they are (POST /api/v1/policy:apply). With
// dryRun it reports the changes and their Diff without applying them. An
// invalid document is an *Error with code invalid and Details naming each
// problem's line.
func (c *Client) ApplyPolicy(ctx context.Context, doc []byte, dryRun bool) (WriteResult, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	var res WriteResult
	// JSON is a subset of YAML: the server reads both with one parser.
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/policy:apply", query: q,
		rawBody: doc, contentType: "application/yaml"}, &res)
	return res, err
}

// UserRecord is one user of BatchUsers: exactly the roles it holds (each
// assigned without a tenant scope, replacing its other assignments) and
// the tenants it may see (empty: the policy's default tenants).
type UserRecord struct {
	Email   string   `json:"email"`
	Roles   []string `json:"roles,omitempty"`
	Tenants []string `json:"tenants,omitempty"`
}

// BatchUsers sets many users in one change, audited per user, like
// `gatehouse user import` (POST /api/v1/users:batch). A bad record refuses
// the whole batch: an *Error with code invalid whose Details name each
// record by its index (users[3]).
func (c *Client) BatchUsers(ctx context.Context, users []UserRecord, dryRun bool) (WriteResult, error) {
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	var res WriteResult
	err := c.call(ctx, request{method: http.MethodPost, path: "/api/v1/users:batch", query: q,
		body: struct {
			Users []UserRecord `json:"users"`
		}{users}}, &res)
	return res, err
}

// objectPath is the REST path of kind's collection or, with id, of one
// object; a resource's id is "type/id", the settings have no id.
func objectPath(kind gatehouse.Kind, id string) string {
	switch kind {
	case gatehouse.KindSettings:
		return "/api/v1/settings"
	case gatehouse.KindResource:
		if typ, rid, ok := strings.Cut(id, "/"); ok {
			return "/api/v1/resources" + pathEscape(typ, rid)
		}
	}
	section := kind.Section()
	switch kind {
	case gatehouse.KindAction:
		// /api/v1/actions serves the agent actions themselves.
		section = "action-types"
	case gatehouse.KindPermission:
		// /api/v1/permissions serves seed 004's action permissions.
		section = "rbac/permissions"
	}
	if id == "" {
		return "/api/v1/" + section
	}
	return "/api/v1/" + section + pathEscape(id)
}

// Object reads one policy object into v, a pointer to its type in package
// gatehouse (*gatehouse.Role for KindRole, *gatehouse.UserEntry for
// KindUser, …). id is a name, id or email; a resource's is "type/id".
// A missing object is not_found.
func (c *Client) Object(ctx context.Context, kind gatehouse.Kind, id string, v any) error {
	return c.call(ctx, request{method: http.MethodGet, path: objectPath(kind, id)}, v)
}

// Objects reads every object of kind into v, a pointer to a slice of its
// type (*[]gatehouse.Role, …), and returns the policy version.
func (c *Client) Objects(ctx context.Context, kind gatehouse.Kind, v any) (int64, error) {
	var out struct {
		Version int64           `json:"version"`
		Items   json.RawMessage `json:"items"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: objectPath(kind, "")}, &out); err != nil {
		return 0, err
	}
	if err := json.Unmarshal(out.Items, v); err != nil {
		return 0, gatehouse.Invalidf("client: decode %s list into %T: %v", kind, v, err)
	}
	return out.Version, nil
}

// PutObject creates or replaces one policy object, v being its type in
// package gatehouse; WriteResult.Created says which. The change is
// validated like `gatehouse apply`: an unknown reference is invalid with
// Details.
func (c *Client) PutObject(ctx context.Context, kind gatehouse.Kind, id string, v any) (WriteResult, error) {
	var res WriteResult
	err := c.call(ctx, request{method: http.MethodPut, path: objectPath(kind, id), body: v}, &res)
	return res, err
}

// DeleteObject deletes one policy object. Deleting an object others still
// reference is invalid; the last superuser is last_superuser.
func (c *Client) DeleteObject(ctx context.Context, kind gatehouse.Kind, id string) (WriteResult, error) {
	var res WriteResult
	err := c.call(ctx, request{method: http.MethodDelete, path: objectPath(kind, id)}, &res)
	return res, err
}

// subjectPath is the REST path of a user or agent.
func subjectPath(s gatehouse.SubjectRef) (string, error) {
	switch s.Type {
	case gatehouse.SubjectUser:
		return "/api/v1/users" + pathEscape(s.ID), nil
	case gatehouse.SubjectAgent:
		return "/api/v1/agents" + pathEscape(s.ID), nil
	}
	return "", gatehouse.Invalidf("client: subject %q: want a user or an agent", s)
}

// bindingQuery is the ?tenant= of an unbind or revoke.
func bindingQuery(tenant string) url.Values {
	if tenant == "" {
		return nil
	}
	return url.Values{"tenant": {tenant}}
}

// Bind assigns a role to a user or agent, globally or in a.Tenant's subtree
// (POST …/roles). Binding twice changes nothing.
func (c *Client) Bind(ctx context.Context, subject gatehouse.SubjectRef, a gatehouse.Assignment) (WriteResult, error) {
	return c.subjectWrite(ctx, http.MethodPost, subject, "/roles", nil, a)
}

// Unbind removes the assignment of role in tenant ("" for a global one);
// not_found if there is none.
func (c *Client) Unbind(ctx context.Context, subject gatehouse.SubjectRef, role, tenant string) (WriteResult, error) {
	return c.subjectWrite(ctx, http.MethodDelete, subject, "/roles"+pathEscape(role), bindingQuery(tenant), nil)
}

// Grant gives a permission directly (POST …/grants).
func (c *Client) Grant(ctx context.Context, subject gatehouse.SubjectRef, g gatehouse.Grant) (WriteResult, error) {
	return c.subjectWrite(ctx, http.MethodPost, subject, "/grants", nil, g)
}

// Revoke removes the direct grant of permission in tenant ("" for a
// global one); not_found if there is none.
func (c *Client) Revoke(ctx context.Context, subject gatehouse.SubjectRef, permission, tenant string) (WriteResult, error) {
	return c.subjectWrite(ctx, http.MethodDelete, subject, "/grants"+pathEscape(permission), bindingQuery(tenant), nil)
}

func (c *Client) subjectWrite(ctx context.Context, method string, subject gatehouse.SubjectRef, sub string, q url.Values, body any) (WriteResult, error) {
	base, err := subjectPath(subject)
	if err != nil {
		return WriteResult{}, err
	}
	var res WriteResult
	err = c.call(ctx, request{method: method, path: base + sub, query: q, body: body}, &res)
	return res, err
}

// Promote makes the user with email a superuser (PUT …/superuser).
func (c *Client) Promote(ctx context.Context, email string) (WriteResult, error) {
	var res WriteResult
	err := c.call(ctx, request{method: http.MethodPut, path: "/api/v1/users" + pathEscape(email, "superuser")}, &res)
	return res, err
}

// Demote takes superuser away from the user with email; never from the
// last superuser (an *Error with code last_superuser, errors.Is
// gatehouse.ErrLastSuperuser).
func (c *Client) Demote(ctx context.Context, email string) (WriteResult, error) {
	var res WriteResult
	err := c.call(ctx, request{method: http.MethodDelete, path: "/api/v1/users" + pathEscape(email, "superuser")}, &res)
	return res, err
}

// AuditPage is one page of the audit trail.
type AuditPage struct {
	Events []gatehouse.AuditEvent `json:"events"`
	// Next is the cursor of the following page (AuditFilter.AfterSeq), 0 at the end.
	Next int64 `json:"next"`
}

// Audit lists audit events oldest first, selected by f (GET /api/v1/audit):
// f.AfterSeq is the cursor, f.Limit the page size (0: 100, at most 10000).
func (c *Client) Audit(ctx context.Context, f gatehouse.AuditFilter) (AuditPage, error) {
	if f.Limit < 0 || f.AfterSeq < 0 {
		return AuditPage{}, gatehouse.Invalidf("client: audit limit %d and cursor %d must not be negative", f.Limit, f.AfterSeq)
	}
	q := url.Values{}
	set := func(key, v string) {
		if v != "" {
			q.Set(key, v)
		}
	}
	set("actor", f.Actor)
	set("action", f.Action)
	set("target", f.TargetPrefix)
	set("kind", f.Kind)
	set("reason", f.Reason)
	if !f.Since.IsZero() {
		set("since", f.Since.Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		set("until", f.Until.Format(time.RFC3339Nano))
	}
	if f.AfterSeq > 0 {
		set("after", strconv.FormatInt(f.AfterSeq, 10))
	}
	if f.Limit > 0 {
		set("limit", strconv.Itoa(f.Limit))
	}
	var page AuditPage
	err := c.call(ctx, request{method: http.MethodGet, path: "/api/v1/audit", query: q}, &page)
	return page, err
}

// AuditEvents yields every audit event f selects after f.AfterSeq, oldest
// first, fetching pages of f.Limit events as the loop asks for more. An
// error ends the sequence after yielding it.
func (c *Client) AuditEvents(ctx context.Context, f gatehouse.AuditFilter) iter.Seq2[gatehouse.AuditEvent, error] {
	return func(yield func(gatehouse.AuditEvent, error) bool) {
		for {
			page, err := c.Audit(ctx, f)
			if err != nil {
				yield(gatehouse.AuditEvent{}, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			if page.Next == 0 {
				return
			}
			f.AfterSeq = page.Next
		}
	}
}
