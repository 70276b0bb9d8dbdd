package http_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

type checkResponse struct {
	gatehouse.Answer
	Allowed    bool                    `json:"allowed"`
	Reason     string                  `json:"reason"`
	Message    string                  `json:"message"`
	Subject    string                  `json:"subject"`
	OnBehalfOf string                  `json:"on_behalf_of"`
	Permission string                  `json:"permission"`
	Tool       string                  `json:"tool"`
	Tenant     string                  `json:"tenant"`
	Denied     string                  `json:"denied_subject"`
	DeniedPerm string                  `json:"denied_permission"`
	Feature    string                  `json:"feature"`
	Plan       string                  `json:"plan"`
	Version    int64                   `json:"version"`
	Steps      []gatehouse.ExplainStep `json:"steps"`
}

func TestCheckAndExplain(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	sara, carl := f.token("user:sara@acme.example"), f.token("user:carl@acme.example")
	admin, bot := f.token("user:admin@example.com"), f.token("agent:support-bot")
	olga := f.token("user:olga@acme.example")
	tests := []struct {
		name    string
		token   string
		body    string
		allowed bool
		reason  string
		subject string
	}{
		{"caller by default", sara, `{"tool": "analyze_loan", "tenant": "acme"}`, true, "granted", "user:sara@acme.example"},
		{"caller named", sara, `{"subject": "user:SARA@acme.example", "tool": "analyze_loan", "tenant": "acme"}`, true, "granted", "user:sara@acme.example"},
		{"caller as a bare email", carl, `{"subject": "carl@acme.example", "tool": "analyze_loan", "tenant": "acme-berlin"}`, false, "permission_missing", "user:carl@acme.example"},
		{"permission", carl, `{"permission": "chat.write"}`, true, "granted", "user:carl@acme.example"},
		{"context reaches conditions", carl, `{"tool": "generate_report", "tenant": "acme-berlin", "context": {"report_kind": "weekly"}}`, false, "condition_failed", "user:carl@acme.example"},
		{"plan", f.token("gina@globex.example"), `{"tool": "detect_fraud", "tenant": "globex"}`, false, "plan_required", "user:gina@globex.example"},
		{"agent for a user", bot, `{"on_behalf_of": "user:carl@acme.example", "tool": "process_refund", "tenant": "acme-berlin"}`, false, "permission_missing", "agent:support-bot"},
		{"admin about another user", admin, `{"subject": "user:carl@acme.example", "tool": "customer_insights", "tenant": "acme-berlin"}`, true, "granted", "user:carl@acme.example"},
		{"resource properties", admin, `{"subject": "user:carl@acme.example", "permission": "chat.view", "resource": {"type": "chat", "id": "1", "properties": {"ownerID": "x"}}}`, true, "granted", "user:carl@acme.example"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/v1/check", "/api/v1/explain"} {
			r := f.do(call{path: path, token: tt.token, body: tt.body})
			if r.status != http.StatusOK {
				t.Errorf("%s: %s status %d: %s", tt.name, path, r.status, r.body)
				continue
			}
			c := decodeInto[checkResponse](t, r)
			if c.Allowed != tt.allowed || c.Reason != tt.reason || c.Subject != tt.subject || c.Message == "" || c.Version != 1 {
				t.Errorf("%s: %s = %+v, want allowed %t reason %s subject %s", tt.name, path, c, tt.allowed, tt.reason, tt.subject)
			}
			if explained := len(c.Steps) > 0; explained != (path == "/api/v1/explain") {
				t.Errorf("%s: %s returned %d steps", tt.name, path, len(c.Steps))
			}
		}
	}
	if c := decodeInto[checkResponse](t, f.do(call{path: "/api/v1/check", token: carl, body: `{"tool": "analyze_loan", "tenant": "acme-berlin"}`})); c.DeniedPerm != "use_ai_loan_tool" {
		t.Errorf("carl analyze_loan denied_permission = %q, want use_ai_loan_tool", c.DeniedPerm)
	}
	if c := decodeInto[checkResponse](t, f.do(call{path: "/api/v1/check", token: f.token("gina@globex.example"), body: `{"tool": "detect_fraud", "tenant": "globex"}`})); c.Plan != "pro" || c.Feature == "" {
		t.Errorf("plan_required check = %+v, want plan pro and its feature", c)
	}

	// Who may ask about whom (service.MayAsk): not a decision, a 403.
	forbidden := []struct {
		name, token, body string
	}{
		{"user about another user", sara, `{"subject": "user:carl@acme.example", "permission": "chat.view"}`},
		{"agent about a user", bot, `{"subject": "user:carl@acme.example", "permission": "chat.view"}`},
		{"user about an agent acting for another", carl, `{"subject": "agent:support-bot", "on_behalf_of": "user:sara@acme.example", "permission": "chat.view"}`},
		{"tenant-scoped admin permission is not enough", olga, `{"subject": "user:carl@acme.example", "permission": "chat.view"}`},
		{"unknown caller", f.token("user:nobody@example.com"), `{"subject": "user:carl@acme.example", "permission": "chat.view"}`},
	}
	for _, tt := range forbidden {
		for _, path := range []string{"/api/v1/check", "/api/v1/explain"} {
			r := f.do(call{path: path, token: tt.token, body: tt.body})
			e := decodeInto[errorBody](t, r)
			if r.status != http.StatusForbidden || e.Error.Code != gatehouse.CodeAskForbidden || e.Error.Message == "" {
				t.Errorf("%s: %s = %d %s, want 403 ask_forbidden", tt.name, path, r.status, r.body)
			}
		}
	}
	// An agent acting for the caller is the caller's question.
	if c := decodeInto[checkResponse](t, f.do(call{path: "/api/v1/check", token: carl,
		body: `{"subject": "agent:support-bot", "on_behalf_of": "user:carl@acme.example", "tool": "customer_insights", "tenant": "acme-berlin"}`})); c.Reason == "" {
		t.Errorf("carl about the bot acting for carl = %+v, want a decision", c)
	}

	bad := []struct{ name, body, message, field string }{
		{"unknown field", `{"permission": "chat.view", "tennant": "acme"}`, "error.unknown_key", "tennant"},
		{"a case variant of a field", `{"TOOL": "analyze_loan", "tenant": "acme"}`, "error.unknown_key", "TOOL"},
		{"a repeated tool", `{"tool": "analyze_loan", "tool": "detect_fraud", "tenant": "acme"}`, "error.duplicate_key", "tool"},
		{"a tool and its case variant", `{"tool": "analyze_loan", "Tool": "detect_fraud", "tenant": "acme"}`, "error.case_variant_key", "Tool"},
		{"a repeated argument", `{"tool": "process_refund", "tenant": "acme", "args": {"amount": "500.00", "amount": "1.00"}}`, "error.duplicate_key", "amount"},
		{"a nested unknown key", `{"tool": "analyze_loan", "tenant": "acme", "context": {"a": 1, "A": 2}}`, "error.case_variant_key", "A"},
		{"both", `{"permission": "chat.view", "tool": "analyze_loan"}`, "error.permission_or_tool", ""},
		{"neither", `{"tenant": "acme"}`, "error.permission_or_tool", ""},
		{"bad subject", `{"subject": "robot:r2", "permission": "chat.view"}`, "error.bad_subject", "subject"},
		{"bad on_behalf_of", `{"on_behalf_of": "user:", "permission": "chat.view"}`, "error.bad_subject", "on_behalf_of"},
		{"context not an object", `{"permission": "chat.view", "context": [1]}`, "error.wrong_type", "context"},
		{"tenant not a string", `{"permission": "chat.view", "tenant": 1}`, "error.wrong_type", "tenant"},
		{"array body", `[]`, "error.bad_json", ""},
		{"trailing data", `{"permission": "chat.view"} {}`, "error.bad_json", ""},
		{"empty body", ``, "error.bad_json", ""},
	}
	for _, tt := range bad {
		r := f.do(call{path: "/api/v1/check", token: sara, body: tt.body})
		e := decodeInto[errorBody](t, r)
		if want := f.cat.Text("en", tt.message, map[string]any{"Field": tt.field, "Key": tt.field}); r.status != http.StatusBadRequest || e.Error.Code != "invalid" || e.Error.Message != want {
			t.Errorf("%s: %d %+v, want 400 with %q", tt.name, r.status, e.Error, want)
		}
	}
}

func TestEffective(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	sara := f.token("user:sara@acme.example")
	r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective?tenant=acme", token: sara})
	eff := decodeInto[gatehouse.Effective](t, r)
	if r.status != http.StatusOK || eff.Subject != gatehouse.User("sara@acme.example") || eff.Tenant != "acme" ||
		!slices.Contains(eff.Permissions, "use_ai_loan_tool") || !eff.Flags["canUseLoanTool"] || eff.Flags["canUseReports"] {
		t.Errorf("effective = %d %+v", r.status, eff)
	}
	if eff := decodeInto[gatehouse.Effective](t, f.do(call{method: http.MethodGet, path: "/api/v1/me/effective", token: sara})); eff.Flags["canUseLoanTool"] {
		t.Errorf("tenant-less effective = %+v, want the tenant-scoped role not to apply", eff)
	}
	for _, tt := range []struct {
		name, path, token string
		status            int
		code              string
	}{
		{"unknown tenant", "/api/v1/me/effective?tenant=atlantis", sara, 404, gatehouse.CodeNotFound},
		{"unknown caller", "/api/v1/me/effective", f.token("user:nobody@example.com"), 404, gatehouse.CodeNotFound},
		{"no token", "/api/v1/me/effective", "", 401, gatehttp.CodeUnauthorized},
	} {
		r := f.do(call{method: http.MethodGet, path: tt.path, token: tt.token})
		if e := decodeInto[errorBody](t, r); r.status != tt.status || e.Error.Code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
}

func TestPolicyExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	r := f.do(call{method: http.MethodGet, path: "/api/v1/policy", token: f.token("user:Admin@Example.com")})
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/yaml") {
		t.Fatalf("policy export = %d %q", r.status, r.header.Get("Content-Type"))
	}
	doc, err := policy.Parse("export.yaml", r.body)
	if err != nil {
		t.Fatalf("the export does not parse: %v", err)
	}
	if doc.Policy.User("sara@acme.example") == nil || len(doc.Policy.Tools) != 12 {
		t.Errorf("the export lacks the example's users or tools: %d tools", len(doc.Policy.Tools))
	}
	r = f.do(call{method: http.MethodGet, path: "/api/v1/policy", token: f.token("user:sara@acme.example")})
	if e := decodeInto[errorBody](t, r); r.status != http.StatusForbidden || e.Error.Reason != "permission_missing" {
		t.Errorf("policy export by a non-admin = %d %s, want 403", r.status, r.body)
	}
}

// A policy without an admin permission leaves administration to superusers.
func TestAdminWithoutAdminPermission(t *testing.T) {
	t.Parallel()
	f := newFixture(t, specPolicy, nil)
	r := f.do(call{method: http.MethodGet, path: "/api/v1/policy", token: f.token("alice@example.com")})
	if e := decodeInto[errorBody](t, r); r.status != http.StatusForbidden || e.Error.Reason != "permission_missing" {
		t.Errorf("policy export by a user = %d %s, want 403 with permission_missing", r.status, r.body)
	}
}
