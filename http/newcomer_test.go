package http_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// GET /api/v1/me/tenants lists what a tenant switcher shows: the caller's
// own tenants, seed 003's default tenants for a user the policy does not
// list, every tenant for a superuser, an agent's tenants.
func TestMyTenants(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	type list struct {
		Tenants []gatehouse.TenantSummary `json:"tenants"`
	}
	ids := func(l list) string {
		var out []string
		for _, t := range l.Tenants {
			out = append(out, t.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ subject, want string }{
		{"user:carl@acme.example", "acme-berlin"},
		{"user:sara@acme.example", "acme,acme-berlin,acme-milan"},
		{"user:nobody@example.org", "general"},
		{"user:admin@example.com", "acme,acme-berlin,acme-milan,general,globex"},
		{"agent:support-bot", "acme-berlin,acme-milan"},
	} {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/me/tenants", token: f.token(tc.subject)})
		if got := ids(decodeInto[list](t, r)); r.status != http.StatusOK || got != tc.want {
			t.Errorf("me/tenants as %s = %d %q, want %q", tc.subject, r.status, got, tc.want)
		}
	}
	r := f.do(call{method: http.MethodGet, path: "/api/v1/me/tenants", token: f.token("user:carl@acme.example")})
	l := decodeInto[list](t, r)
	want := gatehouse.TenantSummary{ID: "acme-berlin", Title: "ACME Berlin store", Parent: "acme", Plan: "pro", PlanFrom: "acme"}
	if len(l.Tenants) != 1 || l.Tenants[0] != want {
		t.Errorf("carl's tenant = %+v, want %+v", l.Tenants, want)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/me/tenants"}); r.status != http.StatusUnauthorized {
		t.Errorf("me/tenants without a token = %d, want 401", r.status)
	}
}

// me/effective says which plan applies and why.
func TestEffectivePlanSource(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	sara := f.token("user:sara@acme.example")
	for _, tc := range []struct{ tenant, plan, source, from string }{
		{"", "free", gatehouse.PlanSourceDefault, ""},
		{"acme", "pro", gatehouse.PlanSourceTenant, ""},
		{"acme-berlin", "pro", gatehouse.PlanSourceInherited, "acme"},
	} {
		r := f.do(call{method: http.MethodGet, path: "/api/v1/me/effective?tenant=" + tc.tenant, token: sara})
		e := lenient[gatehouse.Effective](t, r)
		if r.status != http.StatusOK || e.Plan != tc.plan || e.PlanSource != tc.source || e.PlanFrom != tc.from {
			t.Errorf("effective in %q = %d plan %q source %q from %q, want %q %q %q",
				tc.tenant, r.status, e.Plan, e.PlanSource, e.PlanFrom, tc.plan, tc.source, tc.from)
		}
	}
}

// Messages name permissions and tools by their titles; the answer's
// fields keep the ids.
func TestMessagesUseTitles(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	gina := f.token("user:gina@globex.example")
	r := f.do(call{path: "/api/v1/check", token: gina, body: `{"tool":"detect_fraud","tenant":"globex"}`,
		header: map[string]string{"Accept-Language": "fr"}})
	a := lenient[gatehouse.Answer](t, r)
	if a.Reason != gatehouse.ReasonPlanRequired || a.Tool != "detect_fraud" {
		t.Fatalf("check detect_fraud as gina: %s", r.body)
	}
	if want := f.cat.Reason("fr", gatehouse.Decision{Reason: gatehouse.ReasonPlanRequired, Plan: "pro"},
		localeArgs("", "Fraud detection", "globex")); a.Message != want {
		t.Errorf("message %q, want the one naming the tool's title: %q", a.Message, want)
	}
	carl := f.token("user:carl@acme.example")
	r = f.do(call{path: "/api/v1/check", token: carl, body: `{"permission":"use_ai_loan_tool","tenant":"acme-berlin"}`})
	a = lenient[gatehouse.Answer](t, r)
	if a.Reason != gatehouse.ReasonPermissionMissing || a.DeniedPermission != "use_ai_loan_tool" {
		t.Fatalf("check use_ai_loan_tool as carl: %s", r.body)
	}
	if want := f.cat.Reason("en", gatehouse.Decision{Reason: gatehouse.ReasonPermissionMissing, Permission: "Use AI Loan Analysis"},
		localeArgs("user:carl@acme.example", "", "acme-berlin")); a.Message != want {
		t.Errorf("message %q, want the one naming the permission's title: %q", a.Message, want)
	}
}

// An unknown field of /api/v1/check is named in the error.
func TestCheckUnknownField(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	r := f.do(call{path: "/api/v1/check", token: f.token("user:sara@acme.example"), body: `{"tool":"analyze_loan","tenant_id":"acme"}`})
	e := lenient[errorBody](t, r)
	if r.status != http.StatusBadRequest || e.Error.Code != gatehouse.CodeInvalid || e.Error.Field != "tenant_id" {
		t.Errorf("check with tenant_id: %d %s, want 400 invalid naming the field", r.status, r.body)
	}
}

// The tenant-scoped PDP asked about a tenant outside its subtree answers
// tenant_outside_scope, naming both tenants.
func TestScopedPDPOutsideScope(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	r := f.do(call{path: "/acme/access/v1/evaluation", token: f.pep(),
		body: `{"subject":{"type":"user","id":"gina@globex.example"},"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"globex"}}`})
	d := lenient[decision](t, r)
	if r.status != http.StatusOK || d.Decision || d.Context.Reason != string(gatehouse.ReasonTenantOutsideScope) {
		t.Fatalf("acme's PDP about globex: %d %s", r.status, r.body)
	}
	if !strings.Contains(d.Context.Message, "acme") || !strings.Contains(d.Context.Message, "globex") {
		t.Errorf("the message does not name both tenants: %q", d.Context.Message)
	}
}

// An agent action's invalid_request carries a problem code, and its
// message is that problem's, in the caller's language.
func TestActionProblemLocalized(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	bot := f.token("agent:support-bot")
	body := `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"USD"}}`
	var messages []string
	for _, lang := range []string{"en", "de"} {
		r := f.do(call{path: "/api/v1/actions/simulate", token: bot, body: body,
			header: map[string]string{"X-Tenant-ID": "acme-berlin", "Accept-Language": lang}})
		a := lenient[gatehouse.Answer](t, r)
		if a.Reason != gatehouse.ReasonInvalidRequest || a.ProblemCode != "currency_mismatch" {
			t.Fatalf("refund in USD: %s", r.body)
		}
		if want := f.cat.Text(lang, "problem.currency_mismatch", map[string]string{"Field": "args.currency", "Value": "USD", "Currency": "EUR"}); a.Message != want {
			t.Errorf("%s message %q, want %q", lang, a.Message, want)
		}
		messages = append(messages, a.Message)
	}
	if messages[0] == messages[1] {
		t.Errorf("the problem is not localized: %q", messages)
	}
}

// settings.subject_types names the application's subject types; an
// undeclared type is unknown_subject_type.
func TestSubjectTypes(t *testing.T) {
	src, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	doc := strings.Replace(string(src), "settings:\n", "settings:\n  subject_types: {identity: user, employee: user, service: agent}\n", 1)
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, file, nil)
	pep := f.pep()
	ask := func(typ, id, tenant string) decision {
		t.Helper()
		r := f.do(call{path: "/access/v1/evaluation", token: pep,
			body: `{"subject":{"type":"` + typ + `","id":"` + id + `"},"action":{"name":"analyze_loan"},"resource":{"type":"tenant","id":"` + tenant + `"}}`})
		if r.status != http.StatusOK {
			t.Fatalf("evaluation as %s: %d %s", typ, r.status, r.body)
		}
		return lenient[decision](t, r)
	}
	for _, typ := range []string{"user", "identity", "employee"} {
		if d := ask(typ, "sara@acme.example", "acme"); !d.Decision || d.Context.Reason != string(gatehouse.ReasonGranted) {
			t.Errorf("sara as %s: %+v", typ, d.Context)
		}
	}
	if d := ask("service", "support-bot", "acme-berlin"); d.Decision || d.Context.Reason != string(gatehouse.ReasonPermissionMissing) {
		t.Errorf("the bot as service: %+v", d.Context)
	}
	d := ask("account", "sara@acme.example", "acme")
	if d.Decision || d.Context.Reason != string(gatehouse.ReasonUnknownSubjectType) || !strings.Contains(d.Context.Message, "account") {
		t.Errorf("an undeclared subject type: %+v", d.Context)
	}
}

// A tenant-scoped permission asked about without a tenant is
// tenant_required, not permission_missing.
func TestTenantRequired(t *testing.T) {
	f := newFixture(t, examplePolicy, nil)
	sara := f.token("user:sara@acme.example")
	for _, tc := range []struct {
		body string
		want gatehouse.Reason
	}{
		{`{"tool":"analyze_loan"}`, gatehouse.ReasonTenantRequired},
		{`{"tool":"analyze_loan","tenant":"acme"}`, gatehouse.ReasonGranted},
		{`{"tool":"generate_report"}`, gatehouse.ReasonPermissionMissing},
		{`{"permission":"use_ai_fraud_detection"}`, gatehouse.ReasonTenantRequired},
	} {
		r := f.do(call{path: "/api/v1/check", token: sara, body: tc.body})
		if a := lenient[gatehouse.Answer](t, r); r.status != http.StatusOK || a.Reason != tc.want {
			t.Errorf("check %s = %d %s, want %s", tc.body, r.status, r.body, tc.want)
		}
	}
	bot := f.token("agent:support-bot")
	r := f.do(call{path: "/api/v1/actions/simulate", token: bot,
		body: `{"on_behalf_of":"user:olga@acme.example","tool":"process_refund","args":{"amount":"20.00","currency":"EUR"}}`})
	if a := lenient[gatehouse.Answer](t, r); a.Reason != gatehouse.ReasonTenantRequired {
		t.Errorf("an agent action without a tenant: %s", r.body)
	}
}
