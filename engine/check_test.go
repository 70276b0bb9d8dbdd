package engine_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// reqString names a request in failure messages.
func reqString(r *gatehouse.Request) string {
	if r == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%s %q", r.Subject, r.Permission)
	if !r.OnBehalfOf.IsZero() {
		s += " for " + r.OnBehalfOf.String()
	}
	if r.Tenant != "" {
		s += " in " + r.Tenant
	}
	if r.Context != nil {
		s += fmt.Sprintf(" context=%v", r.Context)
	}
	if r.Resource.Properties != nil {
		s += fmt.Sprintf(" resource=%v", r.Resource.Properties)
	}
	if r.SubjectProperties != nil {
		s += fmt.Sprintf(" subject=%v", r.SubjectProperties)
	}
	return s
}

// want is the expected decision; Allowed follows from the reason.
type want struct {
	reason  gatehouse.Reason
	subject gatehouse.SubjectRef
	// perm is the permission a denial names; TestCheck fills it in from
	// the request.
	perm    string
	feature string
	plan    string
}

func (w want) decision() gatehouse.Decision {
	return gatehouse.Decision{
		Allowed: w.reason == gatehouse.ReasonGranted || w.reason == gatehouse.ReasonSuperuser,
		Reason:  w.reason, Subject: w.subject, Permission: w.perm, Feature: w.feature, Plan: w.plan, Version: testVersion,
	}
}

const (
	granted    = gatehouse.ReasonGranted
	superuser  = gatehouse.ReasonSuperuser
	invalid    = gatehouse.ReasonInvalidRequest
	unknownSub = gatehouse.ReasonUnknownSubject
	unknownTen = gatehouse.ReasonUnknownTenant
	unknownPer = gatehouse.ReasonUnknownPermission
	notVisible = gatehouse.ReasonTenantNotVisible
	missing    = gatehouse.ReasonPermissionMissing
	condFailed = gatehouse.ReasonConditionFailed
	planReq    = gatehouse.ReasonPlanRequired
)

type checkCase struct {
	name string
	req  *gatehouse.Request
	want want
}

func checkCases() []checkCase {
	r := func(sub gatehouse.SubjectRef, perm, tenant string) *gatehouse.Request {
		return &gatehouse.Request{Subject: sub, Permission: perm, Tenant: tenant}
	}
	obo := func(ag, u gatehouse.SubjectRef, perm, tenant string) *gatehouse.Request {
		return &gatehouse.Request{Subject: ag, OnBehalfOf: u, Permission: perm, Tenant: tenant}
	}
	withCtx := func(req *gatehouse.Request, c map[string]any) *gatehouse.Request { req.Context = c; return req }
	withRes := func(req *gatehouse.Request, p map[string]any) *gatehouse.Request {
		req.Resource = gatehouse.Resource{Type: "loan", ID: "L1", Properties: p}
		return req
	}
	withSubProps := func(req *gatehouse.Request, p map[string]any) *gatehouse.Request {
		req.SubjectProperties = p
		return req
	}
	sara, carl, ursula := user("sara@acme.example"), user("carl@acme.example"), user("ursula@example.org")
	return []checkCase{
		// Global role through a bundle, direct grants.
		{"global role via bundle", r(user("gus@example.org"), "use_ai_loan_tool", "general"), want{reason: granted}},
		{"global role via bundle, no tenant", r(user("gus@example.org"), "fetch_loan", ""), want{reason: granted}},
		{"global role direct permission", r(sara, "chat.view", ""), want{reason: granted}},
		{"direct grant with user plan", r(ursula, "use_ai_fraud_detection", ""), want{reason: granted}},
		{"agent global role", r(agent("loan-bot"), "use_ai_loan_tool", "general"), want{reason: granted}},
		{"not held", r(ursula, "orders.refund", ""), want{reason: missing}},

		// Scoped roles apply to the subtree only.
		{"scoped role at tenant", r(sara, "use_ai_loan_tool", "acme"), want{reason: granted}},
		{"scoped role in subtree", r(sara, "use_ai_loan_tool", "acme-berlin"), want{reason: granted}},
		{"scoped role at store", r(sara, "orders.refund", "acme-berlin"), want{reason: granted}},
		{"scoped role not at parent", r(sara, "orders.refund", "acme"), want{reason: missing}},
		{"scoped role not at sibling", r(sara, "orders.refund", "acme-milan"), want{reason: missing}},
		{"scoped role not elsewhere", r(sara, "orders.refund", "globex"), want{reason: missing}},
		{"scoped role not tenant-less", r(sara, "orders.refund", ""), want{reason: missing}},
		{"scoped role not tenant-less via bundle", r(sara, "use_ai_loan_tool", ""), want{reason: missing}},

		// Visibility: exact sets, defaults, explicit empty lists.
		{"org visible, store not", r(user("olga@acme.example"), "orders.refund", "acme-berlin"), want{reason: notVisible}},
		{"org visible and held", r(user("olga@acme.example"), "orders.refund", "acme"), want{reason: granted}},
		{"visibility before permission", r(carl, "orders.refund", "acme"), want{reason: notVisible}},
		{"default tenants", r(ursula, "chat.view", "general"), want{reason: granted}},
		{"outside default tenants", r(ursula, "chat.view", "acme"), want{reason: notVisible}},
		{"explicit empty list", r(user("nobody@example.org"), "chat.view", "general"), want{reason: notVisible}},
		{"explicit empty list, no tenant", r(user("nobody@example.org"), "chat.view", ""), want{reason: granted}},
		{"agent own tenants", r(agent("support-bot"), "orders.refund", "acme-berlin"), want{reason: granted}},
		{"agent scope without visibility", r(agent("support-bot"), "orders.refund", "acme"), want{reason: notVisible}},
		{"agent default tenants", r(agent("loan-bot"), "use_ai_loan_tool", "acme"), want{reason: notVisible}},

		// Superusers bypass visibility, roles and plans.
		{"superuser", r(user("admin@example.com"), "orders.refund", "acme-milan"), want{reason: superuser}},
		{"superuser bypasses plan", r(user("admin@example.com"), "audit.read", "globex"), want{reason: superuser}},
		{"superuser mixed case", r(user(" ADMIN@example.com "), "chat.view", ""), want{reason: superuser}},
		{"superuser unknown tenant", r(user("admin@example.com"), "chat.view", "nowhere"), want{reason: unknownTen}},
		{"superuser unknown permission", r(user("admin@example.com"), "no.such", ""), want{reason: unknownPer}},

		// Unknown things and malformed requests.
		{"unknown user", r(user("ghost@example.com"), "chat.view", ""), want{reason: unknownSub}},
		{"unknown agent", r(agent("ghost-bot"), "chat.view", ""), want{reason: unknownSub}},
		{"agent id is not an email", r(agent("sara@acme.example"), "chat.view", ""), want{reason: unknownSub}},
		{"unknown permission", r(sara, "no.such", ""), want{reason: unknownPer}},
		{"permission is case-sensitive", r(sara, "Chat.View", ""), want{reason: unknownPer}},
		{"unknown tenant", r(sara, "chat.view", "nowhere"), want{reason: unknownTen}},
		{"unknown subject before permission", r(user("ghost@example.com"), "no.such", "nowhere"), want{reason: unknownSub}},
		{"unknown permission before tenant", r(sara, "no.such", "nowhere"), want{reason: unknownPer}},
		{"nil request", nil, want{reason: invalid}},
		{"empty subject id", r(user(""), "chat.view", ""), want{reason: invalid}},
		{"blank subject id", r(user(" \t"), "chat.view", ""), want{reason: invalid}},
		{"bad subject type", r(gatehouse.SubjectRef{Type: "robot", ID: "r2"}, "chat.view", ""), want{reason: invalid}},
		{"zero subject", r(gatehouse.SubjectRef{}, "chat.view", ""), want{reason: invalid}},
		{"empty permission", r(sara, "", ""), want{reason: invalid}},
		{"blank permission", r(sara, "  ", ""), want{reason: invalid}},
		{"blank tenant", r(sara, "chat.view", " "), want{reason: invalid}},
		{"on behalf of an agent", obo(agent("loan-bot"), agent("support-bot"), "chat.view", ""), want{reason: invalid}},
		{"on behalf of empty email", obo(agent("loan-bot"), user(" "), "chat.view", ""), want{reason: invalid}},
		{"user on behalf of user", obo(sara, ursula, "chat.view", ""), want{reason: invalid}},
		{"trimmed permission and tenant", r(sara, " use_ai_loan_tool ", " acme "), want{reason: granted}},

		// Plans: tenant plan inherited, user plan fallback, lowest plan.
		{"tenant plan inherited", r(sara, "use_ai_fraud_detection", "acme-berlin"), want{reason: granted}},
		{"inherited free plan", r(user("gina@globex.example"), "use_ai_fraud_detection", "globex-rome"), want{reason: planReq, feature: "advanced_analytics", plan: "pro"}},
		{"minimum plan above two tiers", r(user("gina@globex.example"), "use_ai_report_generation", "globex"), want{reason: planReq, feature: "advanced_reporting", plan: "enterprise"}},
		{"lowest plan fallback", r(user("freeuser@example.org"), "use_ai_fraud_detection", ""), want{reason: planReq, feature: "advanced_analytics", plan: "pro"}},
		{"lowest plan fallback in plan-less tenant", r(user("freeuser@example.org"), "use_ai_fraud_detection", "general"), want{reason: planReq, feature: "advanced_analytics", plan: "pro"}},
		{"user plan in plan-less tenant", r(user("ed@example.org"), "use_ai_report_generation", "solo"), want{reason: granted}},
		{"user plan without tenant", r(user("ed@example.org"), "use_ai_report_generation", ""), want{reason: granted}},
		{"tenant plan beats user plan", r(user("ed@example.org"), "use_ai_report_generation", "globex"), want{reason: planReq, feature: "advanced_reporting", plan: "enterprise"}},
		{"cumulative plans", r(ursula, "use_ai_fraud_detection", "general"), want{reason: granted}},

		// Conditions.
		{"condition true", withCtx(r(carl, "export_report", "acme-berlin"), ctx("report_kind", "daily")), want{reason: granted}},
		{"condition false", withCtx(r(carl, "export_report", "acme-berlin"), ctx("report_kind", "weekly")), want{reason: condFailed}},
		{"condition missing key", r(carl, "export_report", "acme-berlin"), want{reason: condFailed}},
		{"condition wrong type", withCtx(r(carl, "export_report", "acme-berlin"), ctx("report_kind", 3)), want{reason: condFailed}},
		{"condition then plan", withCtx(r(carl, "use_ai_report_generation", "acme-berlin"), ctx("report_kind", "daily")), want{reason: planReq, feature: "advanced_reporting", plan: "enterprise"}},
		{"scoped condition not tenant-less", withCtx(r(carl, "export_report", ""), ctx("report_kind", "daily")), want{reason: missing}},
		{"owner condition true", withRes(r(carl, "use_ai_loan_tool", ""), props("ownerID", "carl@acme.example")), want{reason: granted}},
		{"owner condition false", withRes(r(carl, "use_ai_loan_tool", ""), props("ownerID", "sara@acme.example")), want{reason: condFailed}},
		{"amount int", withCtx(r(carl, "fetch_loan", ""), ctx("amount", 50)), want{reason: granted}},
		{"amount float", withCtx(r(carl, "fetch_loan", ""), ctx("amount", 99.5)), want{reason: granted}},
		{"amount too high", withCtx(r(carl, "fetch_loan", ""), ctx("amount", 150.0)), want{reason: condFailed}},
		{"tenant attribute condition", r(sara, "eu.only", "acme"), want{reason: granted}},
		{"tenant attribute condition false", r(sara, "eu.only", "globex"), want{reason: condFailed}},
		{"tenant attribute without tenant", r(sara, "eu.only", ""), want{reason: condFailed}},
		{"conditional role", r(user("vip@example.org"), "chat.view", ""), want{reason: granted}},
		{"stored attribute wins", withSubProps(r(user("vip@example.org"), "chat.view", ""), props("tier", "tin")), want{reason: granted}},
		{"request subject property", withSubProps(r(user("req@example.org"), "chat.view", ""), props("tier", "gold")), want{reason: granted}},
		{"request subject property false", withSubProps(r(user("req@example.org"), "chat.view", ""), props("tier", "tin")), want{reason: condFailed}},
		{"email variable", r(user("VIP@example.org"), "export_report", ""), want{reason: granted}},
		{"non-bool result", r(user("bad@example.org"), "export_report", ""), want{reason: condFailed}},
		{"agent subject properties", withSubProps(r(agent("team-bot"), "chat.view", ""), props("team", "support")), want{reason: granted}},

		// An agent acting for a user: both must hold.
		{"agent for user, both hold", obo(agent("support-bot"), carl, "orders.refund", "acme-berlin"), want{reason: granted}},
		{"agent for user, user not visible", obo(agent("support-bot"), ursula, "orders.refund", "acme-berlin"), want{reason: notVisible, subject: ursula}},
		{"agent for user, user lacks permission", obo(agent("support-bot"), sara, "orders.refund", "acme-milan"), want{reason: missing, subject: sara}},
		{"agent for user, agent lacks permission", obo(agent("support-bot"), sara, "use_ai_loan_tool", "acme-berlin"), want{reason: missing, subject: agent("support-bot")}},
		{"agent for user, agent not visible", obo(agent("support-bot"), sara, "access_ai_chat", "acme"), want{reason: notVisible, subject: agent("support-bot")}},
		{"agent for superuser", obo(agent("loan-bot"), user("admin@example.com"), "use_ai_loan_tool", "general"), want{reason: granted}},
		{"agent for superuser, agent denied", obo(agent("loan-bot"), user("admin@example.com"), "use_ai_loan_tool", "acme"), want{reason: notVisible, subject: agent("loan-bot")}},
		{"agent for superuser, agent lacks permission", obo(agent("loan-bot"), user("admin@example.com"), "orders.refund", ""), want{reason: missing, subject: agent("loan-bot")}},
		{"agent for unknown user", obo(agent("loan-bot"), user("ghost@example.com"), "chat.view", ""), want{reason: unknownSub, subject: user("ghost@example.com")}},
		{"unknown agent for user", obo(agent("ghost-bot"), sara, "chat.view", ""), want{reason: unknownSub, subject: agent("ghost-bot")}},
		{"agent plan from user", obo(agent("loan-bot"), ursula, "use_ai_fraud_detection", ""), want{reason: granted}},
		{"agent plan lowest without user", r(agent("loan-bot"), "use_ai_fraud_detection", ""), want{reason: planReq, feature: "advanced_analytics", plan: "pro"}},
		{"user's request properties stay with the agent", withSubProps(obo(agent("team-bot"), user("req@example.org"), "chat.view", ""), props("tier", "gold", "team", "support")), want{reason: condFailed, subject: user("req@example.org")}},

		// Emails are case-insensitive and trimmed.
		{"mixed-case request", r(user("  Sara@ACME.example\n"), "use_ai_loan_tool", "acme"), want{reason: granted}},
		{"mixed-case stored", r(user("mixed.case@example.com"), "chat.view", ""), want{reason: granted}},
		{"mixed-case both", r(user("MIXED.CASE@EXAMPLE.COM"), "chat.view", ""), want{reason: granted}},
	}
}

func TestCheck(t *testing.T) {
	s := compileTest(t)
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Check(tc.req)
			want := tc.want.decision()
			if want.Reason == missing || want.Reason == condFailed || want.Reason == planReq {
				// A permission denial names the permission it is about.
				want.Permission = tc.req.Permission
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Check(%s) mismatch (-want +got):\n%s", reqString(tc.req), diff)
			}
			if e := s.Explain(tc.req); e.Decision != got {
				t.Errorf("Explain(%s).Decision = %+v, Check = %+v", reqString(tc.req), e.Decision, got)
			}
		})
	}
}

func TestCheckNilSnapshot(t *testing.T) {
	var s *engine.Snapshot
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}
	if d := s.Check(req); d.Allowed || d.Reason != gatehouse.ReasonInternalError {
		t.Errorf("nil Snapshot.Check = %+v, want deny internal_error", d)
	}
	if d := s.CheckTool(req, "chat"); d.Allowed || d.Reason != gatehouse.ReasonInternalError {
		t.Errorf("nil Snapshot.CheckTool = %+v, want deny internal_error", d)
	}
	if e := s.Explain(req); e.Allowed || e.Reason != gatehouse.ReasonInternalError || len(e.Steps) == 0 {
		t.Errorf("nil Snapshot.Explain = %+v, want deny internal_error with a step", e)
	}
	if _, err := s.Effective(req.Subject, ""); err == nil {
		t.Errorf("nil Snapshot.Effective: no error")
	}
	if v := s.Version(); v != 0 {
		t.Errorf("nil Snapshot.Version = %d", v)
	}
	if got := s.VisibleTenants("sara@acme.example"); got != nil {
		t.Errorf("nil Snapshot.VisibleTenants = %v", got)
	}
	if s.IsSuperuser("admin@example.com") {
		t.Errorf("nil Snapshot.IsSuperuser = true")
	}
}

func TestCheckTool(t *testing.T) {
	s := compileTest(t)
	tests := []struct {
		req  *gatehouse.Request
		tool string
		want want
	}{
		{&gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme"}, "analyze_loan", want{reason: granted}},
		{&gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme", Permission: "no.such"}, "analyze_loan", want{reason: granted}},
		{&gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme"}, "detect_fraud", want{reason: granted}},
		{&gatehouse.Request{Subject: user("gina@globex.example"), Tenant: "globex"}, "detect_fraud", want{reason: planReq, perm: "use_ai_fraud_detection", feature: "advanced_analytics", plan: "pro"}},
		{&gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme"}, "refund", want{reason: missing, perm: "orders.refund"}},
		{&gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme-berlin"}, "refund", want{reason: granted}},
		// Holding the tool's permission is not enough without access_ai_chat.
		{&gatehouse.Request{Subject: user("noaccess@example.org")}, "analyze_loan", want{reason: missing, perm: "access_ai_chat"}},
		{&gatehouse.Request{Subject: user("noaccess@example.org")}, "chat", want{reason: missing, perm: "access_ai_chat"}},
		{&gatehouse.Request{Subject: user("gus@example.org")}, "chat", want{reason: granted}},
		{&gatehouse.Request{Subject: user("admin@example.com"), Tenant: "globex"}, "generate_report", want{reason: superuser}},
		{&gatehouse.Request{Subject: agent("support-bot"), OnBehalfOf: user("carl@acme.example"), Tenant: "acme-berlin"}, "refund", want{reason: granted}},
		{&gatehouse.Request{Subject: agent("support-bot"), OnBehalfOf: user("ursula@example.org"), Tenant: "acme-berlin"}, "refund", want{reason: notVisible, subject: user("ursula@example.org")}},
		{&gatehouse.Request{Subject: user("sara@acme.example")}, "no_such_tool", want{reason: unknownPer}},
		{&gatehouse.Request{Subject: user("sara@acme.example")}, " ", want{reason: invalid}},
		{&gatehouse.Request{Subject: user("ghost@example.com")}, "no_such_tool", want{reason: unknownSub}},
		{nil, "chat", want{reason: invalid}},
	}
	for _, tc := range tests {
		got := s.CheckTool(tc.req, tc.tool)
		if diff := cmp.Diff(tc.want.decision(), got); diff != "" {
			t.Errorf("CheckTool(%s, %q) mismatch (-want +got):\n%s", reqString(tc.req), tc.tool, diff)
		}
		if e := s.ExplainTool(tc.req, tc.tool); e.Decision != got {
			t.Errorf("ExplainTool(%s, %q).Decision = %+v, CheckTool = %+v", reqString(tc.req), tc.tool, e.Decision, got)
		}
	}
}

// TestCheckDoesNotKeepPolicy: changing the policy after Compile changes nothing.
func TestCheckDoesNotKeepPolicy(t *testing.T) {
	p := testPolicy()
	s, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	p.Tenants[1].Attributes["region"] = "us"
	p.Users[1].Roles[0].Role = "Chat User"
	req := &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "eu.only", Tenant: "acme"}
	if d := s.Check(req); d.Reason != granted {
		t.Errorf("after changing the policy, Check(%s) = %s, want granted", reqString(req), d.Reason)
	}
}
