package http_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	gatehttp "github.com/gatehouse/gatehouse/http"
)

type writeResult struct {
	Version int64              `json:"version"`
	Changes []gatehouse.Change `json:"changes"`
	Created bool               `json:"created"`
	DryRun  bool               `json:"dry_run"`
	Diff    string             `json:"diff"`
}

type restError struct {
	Error struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Reason  string   `json:"reason"`
		Details []string `json:"details"`
	} `json:"error"`
}

func decodeLoose[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, r.body, err)
	}
	return v
}

// allows asks the AuthZEN endpoint whether user may use permission in tenant.
func (f *fixture) allows(user, permission, tenant string) bool {
	f.t.Helper()
	r := f.do(call{path: "/access/v1/evaluation", token: f.token("user:admin@example.com"),
		body: `{"subject": {"type": "user", "id": "` + user + `"}, "action": {"name": "` + permission + `"}, "resource": {"type": "tenant", "id": "` + tenant + `"}}`})
	return decodeInto[decision](f.t, r).Decision
}

func TestRESTObjects(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	admin := f.token("user:admin@example.com")
	put := func(path, body string) response {
		return f.do(call{method: http.MethodPut, path: path, token: admin, body: body})
	}
	// Create, read, replace, list, delete a role.
	r := put("/api/v1/roles/Auditor", `{"description": "reads reports", "permissions": ["chat.view"]}`)
	if res := decodeLoose[writeResult](t, r); r.status != http.StatusCreated || !res.Created || len(res.Changes) != 1 || res.Version != 2 {
		t.Fatalf("create role: %d %s", r.status, r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/roles/Auditor", token: admin})
	if role := decodeInto[gatehouse.Role](t, r); role.Name != "Auditor" || !slices.Equal(role.Permissions, []string{"chat.view"}) {
		t.Errorf("get role: %s", r.body)
	}
	r = put("/api/v1/roles/Auditor", `{"name": "Auditor", "permissions": ["chat.view", "fetch_conversation"]}`)
	if res := decodeLoose[writeResult](t, r); r.status != http.StatusOK || res.Created || res.Changes[0].Op() != gatehouse.OpUpdate {
		t.Errorf("replace role: %d %s", r.status, r.body)
	}
	if r := put("/api/v1/roles/Auditor", `{"permissions": ["chat.view", "fetch_conversation"]}`); len(decodeLoose[writeResult](t, r).Changes) != 0 {
		t.Errorf("putting the same role again changed something: %s", r.body)
	}
	list := decodeLoose[struct {
		Version int64            `json:"version"`
		Items   []gatehouse.Role `json:"items"`
	}](t, f.do(call{method: http.MethodGet, path: "/api/v1/roles", token: admin}))
	if !slices.ContainsFunc(list.Items, func(r gatehouse.Role) bool { return r.Name == "Auditor" }) || list.Version != 3 {
		t.Errorf("list roles: %+v", list)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/roles/Auditor", token: admin}); r.status != http.StatusOK {
		t.Errorf("delete role: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/roles/Auditor", token: admin}); r.status != http.StatusNotFound {
		t.Errorf("get deleted role: %d", r.status)
	}

	// A declared resource, a tenant, the settings.
	if r := put("/api/v1/resources/record/r1", `{"tenant": "acme", "attributes": {"status": "open"}}`); r.status != http.StatusCreated {
		t.Errorf("put resource: %d %s", r.status, r.body)
	}
	res := decodeLoose[struct {
		Items []gatehouse.ResourceEntry `json:"items"`
	}](t, f.do(call{method: http.MethodGet, path: "/api/v1/resources?type=record", token: admin}))
	if len(res.Items) != 1 || res.Items[0].Tenant != "acme" || res.Items[0].Attributes["status"] != "open" {
		t.Errorf("list resources: %+v", res)
	}
	if r := put("/api/v1/tenants/acme-hamburg", `{"name": "Hamburg", "parent": "acme"}`); r.status != http.StatusCreated {
		t.Errorf("put tenant: %d %s", r.status, r.body)
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/settings", token: admin})
	var settings gatehouse.Settings
	if err := json.Unmarshal(r.body, &settings); err != nil || settings.AdminPermission != "manage_ai_tools" {
		t.Errorf("get settings: %s", r.body)
	}

	bad := []struct {
		name, method, path, body string
		status                   int
		code                     string
		detail                   string
	}{
		{"id differs from the path", http.MethodPut, "/api/v1/roles/A", `{"name": "B"}`, 400, "invalid", ""},
		{"unknown field", http.MethodPut, "/api/v1/roles/A", `{"permisions": ["chat.view"]}`, 400, "invalid", ""},
		{"unknown reference", http.MethodPut, "/api/v1/roles/A", `{"permissions": ["no.such"]}`, 400, "invalid", `unknown permission "no.such"`},
		{"delete a referenced permission", http.MethodDelete, "/api/v1/rbac/permissions/chat.view", ``, 400, "invalid", `unknown permission "chat.view"`},
		{"not JSON", http.MethodPut, "/api/v1/roles/A", `[1]`, 400, "invalid", ""},
		{"delete the unknown", http.MethodDelete, "/api/v1/roles/Nobody", ``, 404, "not_found", ""},
		{"bad resource type", http.MethodPut, "/api/v1/resources/tool/x", `{}`, 400, "invalid", "Gatehouse's own"},
		{"unbind what is not bound", http.MethodDelete, "/api/v1/users/carl@acme.example/roles/Nobody", ``, 404, "not_found", ""},
		{"demote the last superuser", http.MethodDelete, "/api/v1/users/admin@example.com/superuser", ``, 409, "last_superuser", ""},
		{"bind to an unknown agent", http.MethodPost, "/api/v1/agents/nobot/roles", `{"role": "Store Support"}`, 404, "not_found", ""},
		{"bad audit cursor", http.MethodGet, "/api/v1/audit?after=-1", ``, 400, "invalid", ""},
		{"bad audit time", http.MethodGet, "/api/v1/audit?since=yesterday", ``, 400, "invalid", ""},
	}
	for _, tt := range bad {
		r := f.do(call{method: tt.method, path: tt.path, token: admin, body: tt.body})
		e := decodeLoose[restError](t, r)
		if r.status != tt.status || e.Error.Code != tt.code || e.Error.Message == "" ||
			(tt.detail != "" && !slices.ContainsFunc(e.Error.Details, func(d string) bool { return strings.Contains(d, tt.detail) })) {
			t.Errorf("%s: %d %s, want %d %s with a detail mentioning %q", tt.name, r.status, r.body, tt.status, tt.code, tt.detail)
		}
	}

	// Who may: no token is 401, a user without admin rights 403.
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/roles"}); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d", r.status)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/roles", token: f.token("user:carl@acme.example")}); r.status != http.StatusForbidden {
		t.Errorf("carl lists roles: %d", r.status)
	}
}

func TestRESTBindingsAndSuperusers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	admin := f.token("user:admin@example.com")
	if f.allows("carl@acme.example", "analyze_loan", "acme-berlin") {
		t.Fatal("carl may analyze loans before the binding")
	}
	r := f.do(call{path: "/api/v1/users/carl@acme.example/roles", token: admin, body: `{"role": "Agent Supervisor", "tenant": "acme-berlin"}`})
	if r.status != http.StatusOK || !f.allows("carl@acme.example", "analyze_loan", "acme-berlin") {
		t.Fatalf("bind: %d %s", r.status, r.body)
	}
	// Binding twice changes nothing; unbinding takes the right away again.
	if r := f.do(call{path: "/api/v1/users/Carl@Acme.example/roles", token: admin, body: `{"role": "Agent Supervisor", "tenant": "acme-berlin"}`}); len(decodeLoose[writeResult](t, r).Changes) != 0 {
		t.Errorf("binding twice changed something: %s", r.body)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/users/carl@acme.example/roles/Agent%20Supervisor?tenant=acme-berlin", token: admin}); r.status != http.StatusOK ||
		f.allows("carl@acme.example", "analyze_loan", "acme-berlin") {
		t.Errorf("unbind: %d %s", r.status, r.body)
	}
	// A direct grant, with a condition, and its removal.
	r = f.do(call{path: "/api/v1/users/gus@example.org/grants", token: admin, body: `{"permission": "access_ai_chat", "condition": "context.channel == \"web\""}`})
	if r.status != http.StatusOK {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/users/gus@example.org/grants/access_ai_chat", token: admin}); r.status != http.StatusOK {
		t.Errorf("revoke: %d %s", r.status, r.body)
	}
	// Promote, then the former last superuser may be demoted.
	if r := f.do(call{method: http.MethodPut, path: "/api/v1/users/gina@globex.example/superuser", token: admin}); r.status != http.StatusOK {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodDelete, path: "/api/v1/users/admin@example.com/superuser", token: admin}); r.status != http.StatusOK {
		t.Errorf("demote with another superuser: %d %s", r.status, r.body)
	}
	// Every change is in the audit trail, paged by cursor.
	gina := f.token("user:gina@globex.example")
	var actions []string
	path := "/api/v1/audit?limit=2&actor=user:admin@example.com"
	for range 20 {
		page := decodeLoose[struct {
			Events []gatehouse.AuditEvent `json:"events"`
			Next   int64                  `json:"next"`
		}](t, f.do(call{method: http.MethodGet, path: path, token: gina}))
		for _, e := range page.Events {
			actions = append(actions, e.Action)
		}
		if page.Next == 0 {
			break
		}
		path = "/api/v1/audit?limit=2&actor=user:admin@example.com&after=" + strconv.FormatInt(page.Next, 10)
	}
	want := []string{"binding.add", "binding.remove", "grant.add", "grant.remove", "user.promote", "user.demote"}
	if !slices.Equal(actions, want) {
		t.Errorf("audit actions %v, want %v", actions, want)
	}
}

func TestRESTPolicyApply(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	admin := f.token("user:admin@example.com")
	doc := "categories:\n  - {name: Only, bundles: [Access AI Chat]}\n"
	apply := func(query, contentType, body string) response {
		return f.do(call{path: "/api/v1/policy:apply" + query, token: admin, body: body, header: map[string]string{"Content-Type": contentType}})
	}
	r := apply("?dry_run=true", "application/yaml", doc)
	res := decodeLoose[writeResult](t, r)
	if r.status != http.StatusOK || !res.DryRun || len(res.Changes) == 0 || res.Version != 1 || !strings.Contains(res.Diff, "Only") {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/categories/Only", token: admin}); r.status != http.StatusNotFound {
		t.Errorf("a dry run applied the role: %d", r.status)
	}
	if r := apply("", "application/yaml; charset=utf-8", doc); decodeLoose[writeResult](t, r).Version != 2 {
		t.Errorf("apply: %d %s", r.status, r.body)
	}
	if r := apply("", "application/json", `{"categories": [{"name": "Only", "bundles": ["Access AI Chat"]}]}`); r.status != http.StatusOK || len(decodeLoose[writeResult](t, r).Changes) != 0 {
		t.Errorf("the same policy as JSON: %d %s", r.status, r.body)
	}
	r = apply("", "application/yaml", "categories:\n  - {name: Bad, bundles: [No Such]}\n")
	if e := decodeLoose[restError](t, r); r.status != http.StatusBadRequest || len(e.Error.Details) != 1 || !strings.Contains(e.Error.Details[0], "policy:2:") {
		t.Errorf("invalid policy: %d %s, want a 400 naming line 2", r.status, r.body)
	}
	if r := apply("", "text/plain", doc); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d", r.status)
	}
	// JSON lines, recognized by the content type whatever key comes first.
	lines := `{"name":"Only","bundles":["Access AI Chat"],"kind":"category"}` + "\n" + `{"kind":"category","name":"Lines"}` + "\n"
	for _, ct := range []string{"application/jsonl", "application/x-ndjson"} {
		r := apply("?dry_run=true", ct, lines)
		if res := decodeLoose[writeResult](t, r); r.status != http.StatusOK || len(res.Changes) != 1 || res.Changes[0].ID != "Lines" {
			t.Errorf("JSON lines as %s: %d %s, want one new category", ct, r.status, r.body)
		}
	}
	r = apply("", "application/jsonl", `{"kind":"category","name":"Only"}`+"\n"+`{"kind":"category","name":"Bad","bundles":["No Such"]}`+"\n")
	if e := decodeLoose[restError](t, r); r.status != http.StatusBadRequest || len(e.Error.Details) != 1 || !strings.Contains(e.Error.Details[0], "policy:2:") {
		t.Errorf("invalid JSON lines: %d %s, want a 400 naming line 2", r.status, r.body)
	}
	if r := f.do(call{path: "/api/v1/policy:apply", token: f.token("user:olga@acme.example"), body: doc}); r.status != http.StatusForbidden {
		t.Errorf("a tenant admin applies a whole policy: %d", r.status)
	}
}

// policy:apply has its own size limit, Config.MaxApplyBytes, above the
// other bodies' MaxBodyBytes; beyond it the answer is 413
// payload_too_large naming the limit.
func TestRESTPolicyApplyLimit(t *testing.T) {
	doc := "categories:\n  - {name: Only, bundles: [Access AI Chat]}\n"
	f := newFixture(t, examplePolicy, func(c *gatehttp.Config) { c.MaxBodyBytes, c.MaxApplyBytes = 16, int64(len(doc)) })
	admin := f.token("user:admin@example.com")
	yamlType := map[string]string{"Content-Type": "application/yaml"}
	if r := f.do(call{path: "/api/v1/policy:apply", token: admin, body: doc, header: yamlType}); r.status != http.StatusOK {
		t.Errorf("a document within MaxApplyBytes but above MaxBodyBytes: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ ct, body string }{
		{"application/yaml", doc + "# one byte too many\n"},
		{"application/jsonl", strings.Repeat(`{"kind":"category","name":"Only"}`+"\n", 2)},
	} {
		r := f.do(call{path: "/api/v1/policy:apply", token: admin, body: c.body, header: map[string]string{"Content-Type": c.ct}})
		e := decodeLoose[restError](t, r)
		if r.status != http.StatusRequestEntityTooLarge || e.Error.Code != gatehttp.CodePayloadTooLarge || !strings.Contains(e.Error.Message, strconv.Itoa(len(doc))) {
			t.Errorf("a %s document above MaxApplyBytes: %d %s, want 413 %s naming %d", c.ct, r.status, r.body, gatehttp.CodePayloadTooLarge, len(doc))
		}
	}
	if err := (func() gatehttp.Config { c := testConfig(t); c.MaxApplyBytes = 0; return c })().Validate(); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Validate(MaxApplyBytes 0) = %v, want ErrInvalid", err)
	}
}

// POST /api/v1/users:batch sets many users in one change, audited per
// user; a bad record refuses the whole batch naming its index.
func TestRESTUserBatch(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	admin := f.token("user:admin@example.com")
	batch := `{"users": [{"email": "new1@x.io", "roles": ["Store Support"], "tenants": ["acme"]}, {"email": "new2@x.io"}]}`
	r := f.do(call{path: "/api/v1/users:batch?dry_run=true", token: admin, body: batch})
	if res := decodeLoose[writeResult](t, r); r.status != http.StatusOK || !res.DryRun || len(res.Changes) != 2 {
		t.Fatalf("dry run: %d %s", r.status, r.body)
	}
	r = f.do(call{path: "/api/v1/users:batch", token: admin, body: batch})
	res := decodeLoose[writeResult](t, r)
	if r.status != http.StatusOK || len(res.Changes) != 2 || res.Version != 2 {
		t.Fatalf("batch: %d %s, want 2 changes at version 2", r.status, r.body)
	}
	events, err := f.store.ListAudit(t.Context(), gatehouse.AuditFilter{Action: "user.import"})
	if err != nil || len(events) != 2 {
		t.Errorf("audit events of the batch: %d, %v; want one per user", len(events), err)
	}
	r = f.do(call{path: "/api/v1/users:batch", token: admin, body: `{"users": [{"email": "ok@x.io"}, {"email": "b@x.io", "roles": ["Store Suport"]}]}`})
	e := decodeLoose[restError](t, r)
	if r.status != http.StatusBadRequest || e.Error.Code != gatehouse.CodeInvalid || len(e.Error.Details) != 1 ||
		!strings.Contains(e.Error.Details[0], `users[1]: unknown role "Store Suport" (did you mean "Store Support"?)`) {
		t.Errorf("a bad record: %d %s", r.status, r.body)
	}
	if r := f.do(call{path: "/api/v1/users:batch", token: admin, body: `{"users": [{"email": "a@x.io", "name": "A"}]}`}); r.status != http.StatusBadRequest {
		t.Errorf("an unknown key: %d %s", r.status, r.body)
	}
	// olga administers acme only: a batch touching globex is forbidden.
	olga := f.token("user:olga@acme.example")
	if r := f.do(call{path: "/api/v1/users:batch", token: olga, body: `{"users": [{"email": "gina@globex.example", "tenants": ["acme"]}]}`}); r.status != http.StatusForbidden {
		t.Errorf("a tenant admin's batch outside its tenants: %d %s", r.status, r.body)
	}
}

// A tenant admin (olga holds manage_ai_tools in acme) administers acme's
// subtree only.
func TestRESTTenantAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	olga := f.token("user:olga@acme.example")
	tests := []struct {
		name, method, path, body string
		status                   int
	}{
		{"list tenants", http.MethodGet, "/api/v1/tenants", ``, 200},
		{"read a store", http.MethodGet, "/api/v1/tenants/acme-berlin", ``, 200},
		{"read another organization", http.MethodGet, "/api/v1/tenants/globex", ``, 403},
		{"create a store", http.MethodPut, "/api/v1/tenants/acme-hamburg", `{"parent": "acme"}`, 201},
		{"create elsewhere", http.MethodPut, "/api/v1/tenants/globex-paris", `{"parent": "globex"}`, 403},
		{"create a root", http.MethodPut, "/api/v1/tenants/olgaco", `{}`, 403},
		{"rename the organization", http.MethodPut, "/api/v1/tenants/acme", `{"name": "ACME", "plan": "pro"}`, 200},
		{"change the plan", http.MethodPut, "/api/v1/tenants/acme", `{"name": "ACME", "plan": "free"}`, 403},
		{"move the organization", http.MethodPut, "/api/v1/tenants/acme", `{"name": "ACME", "plan": "pro", "parent": "globex"}`, 403},
		{"move a store out", http.MethodPut, "/api/v1/tenants/acme-milan", `{"parent": "globex"}`, 403},
		{"bind in a store", http.MethodPost, "/api/v1/users/carl@acme.example/roles", `{"role": "Agent Supervisor", "tenant": "acme-berlin"}`, 200},
		{"bind globally", http.MethodPost, "/api/v1/users/carl@acme.example/roles", `{"role": "Agent Supervisor"}`, 403},
		{"bind elsewhere", http.MethodPost, "/api/v1/users/carl@acme.example/grants", `{"permission": "chat.view", "tenant": "globex"}`, 403},
		{"unbind in a store", http.MethodDelete, "/api/v1/users/carl@acme.example/roles/Agent%20Supervisor?tenant=acme-berlin", ``, 200},
		{"delete a store", http.MethodDelete, "/api/v1/tenants/acme-hamburg", ``, 200},
		{"delete the organization", http.MethodDelete, "/api/v1/tenants/acme", ``, 403},
		{"roles are global", http.MethodGet, "/api/v1/roles", ``, 403},
		{"promote", http.MethodPut, "/api/v1/users/olga@acme.example/superuser", ``, 403},
		{"audit", http.MethodGet, "/api/v1/audit", ``, 403},
	}
	for _, tt := range tests {
		r := f.do(call{method: tt.method, path: tt.path, token: olga, body: tt.body})
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
		}
	}
	list := decodeLoose[struct {
		Items []gatehouse.Tenant `json:"items"`
	}](t, f.do(call{method: http.MethodGet, path: "/api/v1/tenants", token: olga}))
	var ids []string
	for _, t := range list.Items {
		ids = append(ids, t.ID)
	}
	if !slices.Equal(ids, []string{"acme", "acme-berlin", "acme-milan"}) {
		t.Errorf("olga's tenants: %v", ids)
	}
}

// GET /api/v1/audit/verify reports the chain as `gatehouse audit verify`
// does, to administrators only.
func TestVerifyAudit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	r := f.do(call{method: http.MethodGet, path: "/api/v1/audit/verify", token: f.token("user:admin@example.com")})
	var rep struct {
		Events int64 `json:"events"`
		Head   struct {
			Seq int64 `json:"seq"`
		} `json:"head"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK || rep.Events == 0 || rep.Head.Seq != rep.Events {
		t.Fatalf("verify = %d %s (%v), want 200 with the events verified up to the head", r.status, r.body, err)
	}
	for _, who := range []string{"user:carl@acme.example", "user:gus@example.org"} {
		if r := f.do(call{method: http.MethodGet, path: "/api/v1/audit/verify", token: f.token(who)}); r.status != http.StatusForbidden {
			t.Errorf("verify as %s = %d, want 403", who, r.status)
		}
	}
}
