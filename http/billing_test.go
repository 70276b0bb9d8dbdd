package http_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/locale"
	"github.com/gatehouse/gatehouse/service"

	gatehttp "github.com/gatehouse/gatehouse/http"
)

const (
	webhookSecret    = "whsec_http_test_0123456789"
	oldWebhookSecret = "whsec_http_test_old_987654"
	exampleBilling   = "../examples/ai-assistant/billing.yaml"
)

// newBillingFixture serves the example policy with the example billing
// configuration and secrets.
func newBillingFixture(t *testing.T, secrets ...string) *fixture {
	t.Helper()
	cfg, err := billing.LoadConfig(exampleBilling)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Secrets = secrets
	return newFixture(t, examplePolicy, func(c *gatehttp.Config) { c.Billing = &cfg })
}

// stripeEvent is a provider event of type typ for customer at created,
// with data.object's other fields in object (JSON members, may be empty).
func stripeEvent(id, typ, customer string, created time.Time, object string) string {
	if object != "" {
		object = "," + object
	}
	return fmt.Sprintf(`{"id":%q,"object":"event","type":%q,"created":%d,"data":{"object":{"customer":%q%s}}}`,
		id, typ, created.Unix(), customer, object)
}

// webhook posts body signed with secret at time at.
func (f *fixture) webhook(body, secret string, at time.Time) response {
	f.t.Helper()
	return f.do(call{path: "/api/v1/billing/webhook", body: body,
		header: map[string]string{billing.SignatureHeader: billing.Sign([]byte(body), secret, at)}})
}

type webhookAnswer struct {
	Received bool            `json:"received"`
	Event    string          `json:"event"`
	Type     string          `json:"type"`
	Outcome  billing.Outcome `json:"outcome"`
	Subject  string          `json:"subject"`
	Plan     string          `json:"plan"`
	Version  int64           `json:"version"`
}

func (f *fixture) wantOutcome(r response, want billing.Outcome) webhookAnswer {
	f.t.Helper()
	if r.status != http.StatusOK {
		f.t.Fatalf("webhook = %d %s, want 200", r.status, r.body)
	}
	a := decodeInto[webhookAnswer](f.t, r)
	if !a.Received || a.Outcome != want {
		f.t.Errorf("webhook answered %+v, want outcome %s", a, want)
	}
	return a
}

// checkTool asks /api/v1/check whether subject may call tool in tenant.
func (f *fixture) checkTool(subject, tool, tenant, lang string) gatehouse.Answer {
	f.t.Helper()
	r := f.do(call{path: "/api/v1/check", token: f.token("user:" + subject),
		body:   fmt.Sprintf(`{"tool":%q,"tenant":%q}`, tool, tenant),
		header: map[string]string{"Accept-Language": lang}})
	if r.status != http.StatusOK {
		f.t.Fatalf("check = %d %s", r.status, r.body)
	}
	return decodeInto[gatehouse.Answer](f.t, r)
}

// A signed event sent over a real listener upgrades a tenant, and the next
// check allows the tool the new plan unlocks; a cancellation takes it
// away again, and the denial names the plan to buy in every language.
func TestBillingWebhookUpgradesTenant(t *testing.T) {
	t.Parallel()
	f := newBillingFixture(t, webhookSecret)
	now := time.Now()
	if a := f.checkTool("gina@globex.example", "detect_fraud", "globex", "en"); a.Reason != gatehouse.ReasonPlanRequired || a.Plan != "pro" {
		t.Fatalf("before the upgrade: check = %s (plan %q), want plan_required pro", a.Reason, a.Plan)
	}
	eff := decodeInto[gatehouse.Effective](t, f.do(call{method: http.MethodGet, path: "/api/v1/me/effective?tenant=globex", token: f.token("user:gina@globex.example")}))
	if eff.Plan != "free" || len(eff.Locked) != 1 || eff.Locked[0].Permission != "use_ai_fraud_detection" || eff.Locked[0].Plan != "pro" {
		t.Errorf("effective on free = plan %q, locked %+v; want free with use_ai_fraud_detection locked until pro", eff.Plan, eff.Locked)
	}

	a := f.wantOutcome(f.webhook(stripeEvent("evt_up", billing.TypeCheckoutCompleted, "cus_globex", now,
		`"mode":"payment","payment_status":"paid","metadata":{"price_id":"price_pro_once"}`), webhookSecret, now), billing.OutcomeApplied)
	if a.Subject != "tenant:globex" || a.Plan != "pro" || a.Version == 0 {
		t.Errorf("upgrade answered %+v, want tenant:globex on pro", a)
	}
	if a := f.checkTool("gina@globex.example", "detect_fraud", "globex", "en"); !a.Allowed || a.Version != a.Version {
		t.Errorf("after the upgrade: check = %s, want allowed", a.Reason)
	}
	eff = decodeInto[gatehouse.Effective](t, f.do(call{method: http.MethodGet, path: "/api/v1/me/effective?tenant=globex", token: f.token("user:gina@globex.example")}))
	if eff.Plan != "pro" || len(eff.Locked) != 0 || !eff.Flags["canUseFraudDetection"] || !strings.Contains(strings.Join(eff.Features, ","), "advanced_analytics") {
		t.Errorf("effective on pro = %+v, want pro with advanced_analytics and fraud detection unlocked", eff)
	}

	f.wantOutcome(f.webhook(stripeEvent("evt_down", billing.TypeSubscriptionDeleted, "cus_globex", now.Add(time.Second), `"status":"canceled"`),
		webhookSecret, now), billing.OutcomeApplied)
	for _, lang := range locale.Languages {
		a := f.checkTool("gina@globex.example", "detect_fraud", "globex", lang)
		if a.Allowed || a.Reason != gatehouse.ReasonPlanRequired || a.Plan != "pro" || a.Feature != "advanced_analytics" {
			t.Errorf("after the downgrade, %s: check = %+v, want plan_required, plan pro", lang, a)
		}
		if !regexp.MustCompile(`\bpro\b`).MatchString(a.Message) {
			t.Errorf("after the downgrade, %s: message %q, want it to name plan pro", lang, a.Message)
		}
	}
}

func TestBillingWebhookRefuses(t *testing.T) {
	t.Parallel()
	f := newBillingFixture(t, webhookSecret)
	now := time.Now()
	body := stripeEvent("evt_1", billing.TypeCheckoutCompleted, "cus_globex", now, `"metadata":{"price_id":"price_enterprise_monthly"}`)
	signed := billing.Sign([]byte(body), webhookSecret, now)
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"no signature", body, nil, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"wrong secret", body, map[string]string{billing.SignatureHeader: billing.Sign([]byte(body), "whsec_someone_else_1234", now)}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"tampered body", strings.Replace(body, "cus_globex", "cus_acme", 1), map[string]string{billing.SignatureHeader: signed}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"old timestamp", body, map[string]string{billing.SignatureHeader: billing.Sign([]byte(body), webhookSecret, now.Add(-6*time.Minute))}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"malformed header", body, map[string]string{billing.SignatureHeader: "v1=abc"}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"signed but not JSON", "not json", map[string]string{billing.SignatureHeader: billing.Sign([]byte("not json"), webhookSecret, now)}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"signed but not an event", `{"id":"evt_1"}`, map[string]string{billing.SignatureHeader: billing.Sign([]byte(`{"id":"evt_1"}`), webhookSecret, now)}, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"not declared JSON", body, map[string]string{billing.SignatureHeader: signed, "Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, gatehttp.CodeUnsupportedMediaType},
	}
	for _, tt := range tests {
		r := f.do(call{path: "/api/v1/billing/webhook", body: tt.body, header: tt.header})
		if r.status != tt.status || errorCode(t, r) != tt.code {
			t.Errorf("%s: webhook = %d %s, want %d %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	huge := strings.Repeat(" ", int(gatehttp.DefaultConfig().MaxBodyBytes)) + body
	if r := f.do(call{path: "/api/v1/billing/webhook", body: huge, header: map[string]string{billing.SignatureHeader: billing.Sign([]byte(huge), webhookSecret, now)}}); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized webhook = %d %s, want 413", r.status, r.body)
	}
	// Nothing reached the policy: globex is still on free.
	if a := f.checkTool("gina@globex.example", "detect_fraud", "globex", "en"); a.Allowed {
		t.Errorf("after refused webhooks: check = %s, want still denied", a.Reason)
	}
	if m := f.do(call{method: http.MethodGet, path: "/metrics"}); !strings.Contains(string(m.body), `gatehouse_billing_events_total{outcome="rejected"} 9`) {
		t.Errorf("metrics lack 9 rejected billing events:\n%s", grepLines(m.body, "billing"))
	}
}

// Verified events that change nothing are acknowledged with 200, so the
// provider stops sending them, and counted by outcome.
func TestBillingWebhookNoChange(t *testing.T) {
	t.Parallel()
	f := newBillingFixture(t, webhookSecret, oldWebhookSecret)
	now := time.Now()
	paid := `"metadata":{"price_id":"price_pro_once"}`
	f.wantOutcome(f.webhook(stripeEvent("evt_1", "charge.refunded", "cus_globex", now, ""), webhookSecret, now), billing.OutcomeIgnored)
	f.wantOutcome(f.webhook(stripeEvent("evt_2", billing.TypeCheckoutCompleted, "cus_nobody", now, paid), webhookSecret, now), billing.OutcomeUnknownCustomer)
	f.wantOutcome(f.webhook(stripeEvent("evt_3", billing.TypeCheckoutCompleted, "cus_globex", now, `"metadata":{"price_id":"price_gold"}`), webhookSecret, now), billing.OutcomeUnknownPrice)
	// Signed with the secret being rotated out: still accepted.
	f.wantOutcome(f.webhook(stripeEvent("evt_4", billing.TypeCheckoutCompleted, "cus_globex", now, paid), oldWebhookSecret, now), billing.OutcomeApplied)
	f.wantOutcome(f.webhook(stripeEvent("evt_4", billing.TypeCheckoutCompleted, "cus_globex", now, paid), webhookSecret, now), billing.OutcomeDuplicate)
	f.wantOutcome(f.webhook(stripeEvent("evt_0", billing.TypeSubscriptionDeleted, "cus_globex", now.Add(-time.Hour), ""), webhookSecret, now), billing.OutcomeStale)
	m := f.do(call{method: http.MethodGet, path: "/metrics"})
	for _, o := range []billing.Outcome{billing.OutcomeIgnored, billing.OutcomeUnknownCustomer, billing.OutcomeUnknownPrice,
		billing.OutcomeApplied, billing.OutcomeDuplicate, billing.OutcomeStale} {
		if line := fmt.Sprintf(`gatehouse_billing_events_total{outcome=%q} 1`, o); !strings.Contains(string(m.body), line) {
			t.Errorf("metrics lack %s:\n%s", line, grepLines(m.body, "billing"))
		}
	}
}

func TestBillingWebhookDisabled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, examplePolicy, nil)
	body := stripeEvent("evt_1", billing.TypeCheckoutCompleted, "cus_globex", time.Now(), "")
	r := f.webhook(body, webhookSecret, time.Now())
	if r.status != http.StatusNotFound || errorCode(t, r) != gatehouse.CodeNotFound {
		t.Errorf("webhook without billing = %d %s, want 404 not_found", r.status, r.body)
	}
	bad := billing.DefaultConfig()
	cfg := testConfig(t)
	cfg.Billing = &bad
	if err := cfg.Validate(); gatehouse.ErrorCode(err) != gatehouse.CodeInvalid {
		t.Errorf("Validate(billing without secrets) = %v, want invalid", err)
	}
}

func TestPlanAdmin(t *testing.T) {
	t.Parallel()
	f := newBillingFixture(t, webhookSecret)
	admin, gina := f.token("user:admin@example.com"), f.token("user:gina@globex.example")
	put := func(path, token, body string) response {
		return f.do(call{method: http.MethodPut, path: path, token: token, body: body})
	}
	tests := []struct {
		name, path, token, body string
		status                  int
		code                    string
	}{
		{"not an admin", "/api/v1/tenants/globex/plan", gina, `{"plan":"enterprise"}`, http.StatusForbidden, gatehttp.CodeForbidden},
		{"unknown plan", "/api/v1/tenants/globex/plan", admin, `{"plan":"platinum"}`, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"unknown tenant", "/api/v1/tenants/atlantis/plan", admin, `{"plan":"pro"}`, http.StatusNotFound, gatehouse.CodeNotFound},
		{"no plan field", "/api/v1/tenants/globex/plan", admin, `{}`, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"unknown field", "/api/v1/tenants/globex/plan", admin, `{"plan":"pro","tier":1}`, http.StatusBadRequest, gatehouse.CodeInvalid},
		{"bad email", "/api/v1/users/not-an-email/plan", admin, `{"plan":"pro"}`, http.StatusBadRequest, gatehouse.CodeInvalid},
	}
	for _, tt := range tests {
		r := put(tt.path, tt.token, tt.body)
		if r.status != tt.status || errorCode(t, r) != tt.code {
			t.Errorf("%s: PUT %s = %d %s, want %d %s", tt.name, tt.path, r.status, r.body, tt.status, tt.code)
		}
	}
	if r := put("/api/v1/tenants/globex/plan", admin, `{"plan":"pro"}`); r.status != http.StatusOK {
		t.Fatalf("PUT tenant plan = %d %s", r.status, r.body)
	}
	if a := f.checkTool("gina@globex.example", "detect_fraud", "globex", "en"); !a.Allowed {
		t.Errorf("after PUT plan pro: check = %s, want allowed", a.Reason)
	}
	if r := put("/api/v1/users/Ursula@Example.org/plan", admin, `{"plan":"premium"}`); r.status != http.StatusOK {
		t.Fatalf("PUT user plan = %d %s", r.status, r.body)
	}
	v := decodeInto[service.PlanView](t, f.do(call{method: http.MethodGet, path: "/api/v1/users/ursula@example.org/plan", token: admin}))
	if v.Plan != "premium" || v.Effective != "premium" {
		t.Errorf("GET user plan = %+v, want premium", v)
	}
	v = decodeInto[service.PlanView](t, f.do(call{method: http.MethodGet, path: "/api/v1/tenants/acme-berlin/plan", token: admin}))
	if v.Plan != "" || v.Effective != "pro" || v.From != "acme" {
		t.Errorf("GET tenant plan = %+v, want pro inherited from acme", v)
	}
	if r := f.do(call{method: http.MethodGet, path: "/api/v1/tenants/acme/plan", token: gina}); r.status != http.StatusForbidden {
		t.Errorf("GET tenant plan as gina = %d, want 403", r.status)
	}
	events, err := f.store.ListAudit(t.Context(), gatehouse.AuditFilter{Actor: "user:admin@example.com"})
	if err != nil || len(events) != 2 || events[0].Action != "tenant.set_plan" || events[1].Action != "user.set_plan" {
		t.Errorf("audit = %d events (%v), want tenant.set_plan and user.set_plan by the admin", len(events), err)
	}
}

// errorCode is the code of an error response.
func errorCode(t *testing.T, r response) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("decode error from %s: %v", r.body, err)
	}
	return e.Error.Code
}

// grepLines returns the lines of b that contain s, for failure messages.
func grepLines(b []byte, s string) string {
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
