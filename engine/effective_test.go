package engine_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

func TestEffective(t *testing.T) {
	s := compileTest(t)
	tests := []struct {
		subject gatehouse.SubjectRef
		tenant  string
		want    gatehouse.Effective
	}{
		{
			subject: user("Sara@Acme.Example"), tenant: "acme",
			want: gatehouse.Effective{
				Subject: user("sara@acme.example"), Tenant: "acme", Plan: "pro", PlanSource: gatehouse.PlanSourceTenant,
				Features:    []string{"advanced_analytics"},
				Permissions: []string{"access_ai_chat", "chat.view", "eu.only", "fetch_loan", "use_ai_fraud_detection", "use_ai_loan_tool"},
				Tools: []gatehouse.ToolAccess{
					{Tool: "analyze_loan", Flag: "canUseLoanTool", Allowed: true, Reason: granted},
					{Tool: "chat", Allowed: true, Reason: granted},
					{Tool: "detect_fraud", Flag: "canUseFraudDetection", Allowed: true, Reason: granted},
					{Tool: "generate_report", Flag: "canUseReports", Reason: missing},
					{Tool: "refund", Flag: "canRefund", Reason: missing},
				},
				Flags:   map[string]bool{"canUseLoanTool": true, "canUseFraudDetection": true, "canUseReports": false, "canRefund": false},
				Version: testVersion,
			},
		},
		{
			subject: user("gina@globex.example"), tenant: "globex-rome",
			want: gatehouse.Effective{
				Subject: user("gina@globex.example"), Tenant: "globex-rome", Plan: "free", PlanSource: gatehouse.PlanSourceInherited, PlanFrom: "globex",
				Permissions: []string{"access_ai_chat", "fetch_loan", "use_ai_loan_tool"},
				Locked: []gatehouse.LockedPermission{
					{Permission: "use_ai_fraud_detection", Feature: "advanced_analytics", Plan: "pro"},
					{Permission: "use_ai_report_generation", Feature: "advanced_reporting", Plan: "enterprise"},
				},
				Tools: []gatehouse.ToolAccess{
					{Tool: "analyze_loan", Flag: "canUseLoanTool", Allowed: true, Reason: granted},
					{Tool: "chat", Allowed: true, Reason: granted},
					{Tool: "detect_fraud", Flag: "canUseFraudDetection", Reason: planReq, Plan: "pro"},
					{Tool: "generate_report", Flag: "canUseReports", Reason: planReq, Plan: "enterprise"},
					{Tool: "refund", Flag: "canRefund", Reason: missing},
				},
				Flags:   map[string]bool{"canUseLoanTool": true, "canUseFraudDetection": false, "canUseReports": false, "canRefund": false},
				Version: testVersion,
			},
		},
		{
			// A user plan applies without a tenant.
			subject: user("ed@example.org"),
			want: gatehouse.Effective{
				Subject: user("ed@example.org"), Plan: "enterprise", PlanSource: gatehouse.PlanSourceUser,
				Features:    []string{"advanced_analytics", "advanced_reporting", "audit_logs"},
				Permissions: []string{"use_ai_report_generation"},
				Tools: []gatehouse.ToolAccess{
					{Tool: "analyze_loan", Flag: "canUseLoanTool", Reason: missing},
					{Tool: "chat", Reason: missing},
					{Tool: "detect_fraud", Flag: "canUseFraudDetection", Reason: missing},
					{Tool: "generate_report", Flag: "canUseReports", Reason: missing},
					{Tool: "refund", Flag: "canRefund", Reason: missing},
				},
				Flags:   map[string]bool{"canUseLoanTool": false, "canUseFraudDetection": false, "canUseReports": false, "canRefund": false},
				Version: testVersion,
			},
		},
		{
			// An invisible tenant yields nothing.
			subject: user("ursula@example.org"), tenant: "acme",
			want: gatehouse.Effective{
				Subject: user("ursula@example.org"), Tenant: "acme", Plan: "pro", PlanSource: gatehouse.PlanSourceTenant,
				Features:    []string{"advanced_analytics"},
				Permissions: []string{},
				Tools: []gatehouse.ToolAccess{
					{Tool: "analyze_loan", Flag: "canUseLoanTool", Reason: notVisible},
					{Tool: "chat", Reason: notVisible},
					{Tool: "detect_fraud", Flag: "canUseFraudDetection", Reason: notVisible},
					{Tool: "generate_report", Flag: "canUseReports", Reason: notVisible},
					{Tool: "refund", Flag: "canRefund", Reason: notVisible},
				},
				Flags:   map[string]bool{"canUseLoanTool": false, "canUseFraudDetection": false, "canUseReports": false, "canRefund": false},
				Version: testVersion,
			},
		},
		{
			subject: agent("support-bot"), tenant: "acme-milan",
			want: gatehouse.Effective{
				Subject: agent("support-bot"), Tenant: "acme-milan", Plan: "pro", PlanSource: gatehouse.PlanSourceInherited, PlanFrom: "acme",
				Features:    []string{"advanced_analytics"},
				Permissions: []string{"access_ai_chat", "orders.refund"},
				Tools: []gatehouse.ToolAccess{
					{Tool: "analyze_loan", Flag: "canUseLoanTool", Reason: missing},
					{Tool: "chat", Allowed: true, Reason: granted},
					{Tool: "detect_fraud", Flag: "canUseFraudDetection", Reason: missing},
					{Tool: "generate_report", Flag: "canUseReports", Reason: missing},
					{Tool: "refund", Flag: "canRefund", Allowed: true, Reason: granted},
				},
				Flags:   map[string]bool{"canUseLoanTool": false, "canUseFraudDetection": false, "canUseReports": false, "canRefund": true},
				Version: testVersion,
			},
		},
	}
	for _, tc := range tests {
		got, err := s.Effective(tc.subject, tc.tenant)
		if err != nil {
			t.Errorf("Effective(%s, %q) = %v", tc.subject, tc.tenant, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Effective(%s, %q) mismatch (-want +got):\n%s", tc.subject, tc.tenant, diff)
		}
	}
}

func TestEffectiveSuperuser(t *testing.T) {
	s := compileTest(t)
	got, err := s.Effective(user("admin@example.com"), "globex")
	if err != nil {
		t.Fatalf("Effective(admin, globex) = %v", err)
	}
	if !got.Superuser || got.Plan != "free" || len(got.Locked) != 0 {
		t.Errorf("Effective(admin, globex) = superuser %v, plan %q, locked %v; want true, free, none", got.Superuser, got.Plan, got.Locked)
	}
	all := []string{"access_ai_chat", "audit.read", "chat.view", "eu.only", "export_report", "fetch_loan", "manage_ai_tools",
		"orders.refund", "use_ai_fraud_detection", "use_ai_loan_tool", "use_ai_report_generation"}
	if diff := cmp.Diff(all, got.Permissions); diff != "" {
		t.Errorf("Effective(admin, globex).Permissions mismatch (-want +got):\n%s", diff)
	}
	for _, ta := range got.Tools {
		if !ta.Allowed || ta.Reason != superuser {
			t.Errorf("Effective(admin, globex) tool %s = %v %s, want allowed superuser", ta.Tool, ta.Allowed, ta.Reason)
		}
	}
}

// TestEffectiveMatchesCheck: every tool and permission in Effective agrees
// with CheckTool and Check for a request without resource or context.
func TestEffectiveMatchesCheck(t *testing.T) {
	s := compileTest(t)
	p := testPolicy()
	var subjects []gatehouse.SubjectRef
	for _, u := range p.Users {
		subjects = append(subjects, user(u.Email))
	}
	for _, a := range p.Agents {
		subjects = append(subjects, agent(a.ID))
	}
	tenants := []string{""}
	for _, tn := range p.Tenants {
		tenants = append(tenants, tn.ID)
	}
	for _, sub := range subjects {
		for _, tn := range tenants {
			e, err := s.Effective(sub, tn)
			if err != nil {
				t.Fatalf("Effective(%s, %q) = %v", sub, tn, err)
			}
			for _, ta := range e.Tools {
				d := s.CheckTool(&gatehouse.Request{Subject: sub, Tenant: tn}, ta.Tool)
				if d.Allowed != ta.Allowed || d.Reason != ta.Reason || d.Plan != ta.Plan {
					t.Errorf("Effective(%s, %q) tool %s = %+v, CheckTool = %+v", sub, tn, ta.Tool, ta, d)
				}
			}
			for _, pm := range p.Permissions {
				d := s.Check(&gatehouse.Request{Subject: sub, Tenant: tn, Permission: pm.Name})
				held := slices.Contains(e.Permissions, pm.Name)
				locked := slices.ContainsFunc(e.Locked, func(l gatehouse.LockedPermission) bool { return l.Permission == pm.Name })
				if held != d.Allowed || locked != (d.Reason == planReq) {
					t.Errorf("Effective(%s, %q) has %s: held %v locked %v; Check = %s", sub, tn, pm.Name, held, locked, d.Reason)
				}
			}
		}
	}
}

func TestEffectiveErrors(t *testing.T) {
	s := compileTest(t)
	tests := []struct {
		subject gatehouse.SubjectRef
		tenant  string
		want    error
	}{
		{user("ghost@example.com"), "", gatehouse.ErrNotFound},
		{agent("ghost-bot"), "", gatehouse.ErrNotFound},
		{user("sara@acme.example"), "nowhere", gatehouse.ErrNotFound},
		{user(""), "", gatehouse.ErrInvalid},
		{gatehouse.SubjectRef{Type: "robot", ID: "r2"}, "", gatehouse.ErrInvalid},
	}
	for _, tc := range tests {
		if _, err := s.Effective(tc.subject, tc.tenant); !errors.Is(err, tc.want) {
			t.Errorf("Effective(%s, %q) = %v, want %v", tc.subject, tc.tenant, err, tc.want)
		}
	}
}

func TestVisibleTenants(t *testing.T) {
	s := compileTest(t)
	allTenants := []string{"acme", "acme-berlin", "acme-milan", "general", "globex", "globex-rome", "solo"}
	tests := []struct {
		email string
		want  []string
	}{
		{"admin@example.com", allTenants},
		{" Admin@Example.COM", allTenants},
		{"sara@acme.example", []string{"acme", "acme-berlin", "acme-milan", "globex"}},
		{"SARA@acme.example", []string{"acme", "acme-berlin", "acme-milan", "globex"}},
		{"ed@example.org", []string{"general", "globex", "solo"}},
		{"ursula@example.org", []string{"general"}},
		{"ghost@example.com", []string{"general"}},
		{"nobody@example.org", []string{}},
		{"", nil},
		{"  ", nil},
	}
	for _, tc := range tests {
		got := s.VisibleTenants(tc.email)
		if diff := cmp.Diff(tc.want, got); diff != "" || (tc.want == nil) != (got == nil) {
			t.Errorf("VisibleTenants(%q) = %#v, want %#v", tc.email, got, tc.want)
		}
	}
	// The result is the caller's to change.
	got := s.VisibleTenants("admin@example.com")
	got[0] = "changed"
	if again := s.VisibleTenants("admin@example.com"); again[0] != "acme" {
		t.Errorf("VisibleTenants(admin) after changing a result = %v", again)
	}
}

func TestIsSuperuser(t *testing.T) {
	s := compileTest(t)
	tests := []struct {
		email string
		want  bool
	}{
		{"admin@example.com", true},
		{"  ADMIN@example.com ", true},
		{"sara@acme.example", false},
		{"ghost@example.com", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := s.IsSuperuser(tc.email); got != tc.want {
			t.Errorf("IsSuperuser(%q) = %v, want %v", tc.email, got, tc.want)
		}
	}
}

// TestEffectiveSharedFlag: a flag shared by several tools is on if any of
// them is allowed.
func TestEffectiveSharedFlag(t *testing.T) {
	s, err := engine.Compile(&gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "a"}, {Name: "b"}},
		Users:       []gatehouse.UserEntry{{Email: "u@example.com", Grants: []gatehouse.Grant{{Permission: "b"}}}},
		Tools: []gatehouse.Tool{
			{Name: "tool-a", Permission: "a", Flag: "canAnalyze"},
			{Name: "tool-b", Permission: "b", Flag: "canAnalyze"},
		},
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Effective(user("u@example.com"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Flags["canAnalyze"] {
		t.Errorf("Effective(u).Flags = %v, want canAnalyze on", e.Flags)
	}
}

// A permission's frontend flag is on while the permission is held and
// usable, off when it is missing or locked by the plan.
func TestEffectivePermissionFlags(t *testing.T) {
	p := testPolicy()
	for i := range p.Permissions {
		switch p.Permissions[i].Name {
		case "access_ai_chat":
			p.Permissions[i].Flag = "canAccessChat"
		case "use_ai_fraud_detection":
			p.Permissions[i].Flag = "canDetectFraud"
		}
	}
	s, err := engine.Compile(p, testVersion)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		subject       gatehouse.SubjectRef
		tenant        string
		access, fraud bool
	}{
		{user("sara@acme.example"), "acme", true, true},
		// Gina holds the fraud permission, but globex-rome's free plan locks it.
		{user("gina@globex.example"), "globex-rome", true, false},
		{user("noaccess@example.org"), "", false, false},
	}
	for _, tt := range tests {
		e, err := s.Effective(tt.subject, tt.tenant)
		if err != nil {
			t.Fatal(err)
		}
		access, ok1 := e.Flags["canAccessChat"]
		fraud, ok2 := e.Flags["canDetectFraud"]
		if !ok1 || !ok2 || access != tt.access || fraud != tt.fraud {
			t.Errorf("%s in %q: flags %v, want canAccessChat %v and canDetectFraud %v", tt.subject, tt.tenant, e.Flags, tt.access, tt.fraud)
		}
	}
}
