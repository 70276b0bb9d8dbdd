package engine_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

// testPolicy covers every rule of the decision order. Tenants:
//
//	general
//	acme (plan pro) ── acme-berlin, acme-milan
//	globex (plan free) ── globex-rome
//	solo
func testPolicy() *gatehouse.Policy {
	return &gatehouse.Policy{
		Settings: gatehouse.Settings{
			DefaultTenants:   []string{"general"},
			AccessPermission: "access_ai_chat",
			AdminPermission:  "manage_ai_tools",
		},
		Permissions: []gatehouse.Permission{
			{Name: "access_ai_chat"},
			{Name: "use_ai_loan_tool"},
			{Name: "use_ai_fraud_detection", Feature: "advanced_analytics"},
			{Name: "use_ai_report_generation", Feature: "advanced_reporting"},
			{Name: "fetch_loan"},
			{Name: "export_report"},
			{Name: "manage_ai_tools"},
			{Name: "orders.refund"},
			{Name: "chat.view"},
			{Name: "audit.read", Feature: "audit_logs"},
			{Name: "eu.only"},
		},
		Bundles: []gatehouse.Bundle{
			{Name: "Access AI Chat", Permissions: []string{"access_ai_chat"}},
			{Name: "Use Loan Analysis Tool", Permissions: []string{"access_ai_chat", "use_ai_loan_tool", "fetch_loan"}},
			{Name: "Use Fraud Detection Tool", Permissions: []string{"use_ai_fraud_detection"}},
		},
		Categories: []gatehouse.Category{
			{Name: "AI", Bundles: []string{"Access AI Chat", "Use Loan Analysis Tool"}},
		},
		Roles: []gatehouse.Role{
			{Name: "Agent Supervisor", Bundles: []string{"Access AI Chat", "Use Loan Analysis Tool", "Use Fraud Detection Tool"}},
			{Name: "Store Support", Permissions: []string{"orders.refund", "access_ai_chat"}},
			{Name: "Chat User", Permissions: []string{"chat.view", "access_ai_chat"}},
			{Name: "Reporter", Permissions: []string{"use_ai_report_generation"}},
		},
		Plans: []gatehouse.Plan{
			{Name: "free"},
			{Name: "pro", Features: []string{"advanced_analytics"}},
			{Name: "enterprise", Features: []string{"advanced_reporting", "audit_logs"}},
		},
		Tenants: []gatehouse.Tenant{
			{ID: "general"},
			{ID: "acme", Plan: "pro", Attributes: map[string]any{"region": "eu"}},
			{ID: "acme-berlin", Parent: "acme"},
			{ID: "acme-milan", Parent: "acme"},
			{ID: "globex", Plan: "free", Attributes: map[string]any{"region": "us"}},
			{ID: "globex-rome", Parent: "globex"},
			{ID: "solo"},
		},
		Users: []gatehouse.UserEntry{
			{Email: "admin@example.com", Superuser: true},
			{
				Email:   "sara@acme.example",
				Tenants: []string{"acme", "acme-berlin", "acme-milan", "globex"},
				Roles: []gatehouse.Assignment{
					{Role: "Agent Supervisor", Tenant: "acme"},
					{Role: "Store Support", Tenant: "acme-berlin"},
					{Role: "Chat User"},
				},
				Grants: []gatehouse.Grant{
					{Permission: "eu.only", Condition: `tenant.properties.region == "eu"`},
				},
			},
			{
				Email:   "carl@acme.example",
				Tenants: []string{"acme-berlin"},
				Roles:   []gatehouse.Assignment{{Role: "Store Support", Tenant: "acme-berlin"}},
				Grants: []gatehouse.Grant{
					{Permission: "export_report", Tenant: "acme-berlin", Condition: `context.report_kind == "daily"`},
					{Permission: "use_ai_report_generation", Tenant: "acme-berlin", Condition: `context.report_kind == "daily"`},
					{Permission: "use_ai_loan_tool", Condition: "resource.properties.ownerID == subject.id"},
					{Permission: "fetch_loan", Condition: "context.amount < 100"},
				},
				Attributes: map[string]any{"level": 2},
			},
			{Email: "olga@acme.example", Tenants: []string{"acme"}, Roles: []gatehouse.Assignment{{Role: "Store Support", Tenant: "acme"}}},
			{
				Email:  "ursula@example.org",
				Plan:   "pro",
				Roles:  []gatehouse.Assignment{{Role: "Chat User"}},
				Grants: []gatehouse.Grant{{Permission: "use_ai_fraud_detection"}},
			},
			{Email: "nobody@example.org", Tenants: []string{}, Roles: []gatehouse.Assignment{{Role: "Chat User"}}},
			{Email: "Mixed.Case@Example.com", Roles: []gatehouse.Assignment{{Role: "Chat User"}}},
			{Email: "freeuser@example.org", Grants: []gatehouse.Grant{{Permission: "use_ai_fraud_detection"}}},
			{
				Email:   "gina@globex.example",
				Tenants: []string{"globex", "globex-rome"},
				Roles:   []gatehouse.Assignment{{Role: "Reporter", Tenant: "globex"}, {Role: "Agent Supervisor", Tenant: "globex"}},
			},
			{Email: "ed@example.org", Plan: "enterprise", Tenants: []string{"solo", "general", "globex"}, Roles: []gatehouse.Assignment{{Role: "Reporter"}}},
			{Email: "gus@example.org", Roles: []gatehouse.Assignment{{Role: "Agent Supervisor"}}},
			{Email: "noaccess@example.org", Grants: []gatehouse.Grant{{Permission: "use_ai_loan_tool"}}},
			{
				Email:  "vip@example.org",
				Roles:  []gatehouse.Assignment{{Role: "Chat User", Condition: `subject.properties.tier == "gold"`}},
				Grants: []gatehouse.Grant{{Permission: "export_report", Condition: "subject.email.endsWith('@example.org')"}},
				// Stored attributes win over request-supplied ones.
				Attributes: map[string]any{"tier": "gold"},
			},
			{Email: "req@example.org", Roles: []gatehouse.Assignment{{Role: "Chat User", Condition: `subject.properties.tier == "gold"`}}},
			{Email: "bad@example.org", Grants: []gatehouse.Grant{{Permission: "export_report", Condition: "subject.id"}}},
		},
		Agents: []gatehouse.Agent{
			{
				ID:         "support-bot",
				Tenants:    []string{"acme-berlin", "acme-milan"},
				Roles:      []gatehouse.Assignment{{Role: "Store Support", Tenant: "acme"}},
				Attributes: map[string]any{"team": "support"},
			},
			{ID: "loan-bot", Roles: []gatehouse.Assignment{{Role: "Agent Supervisor"}, {Role: "Chat User"}}},
			{
				ID:     "team-bot",
				Grants: []gatehouse.Grant{{Permission: "chat.view", Condition: `subject.properties.team == "support" && subject.type == "agent"`}},
				// No stored team: the request's subject properties decide.
			},
		},
		Tools: []gatehouse.Tool{
			{Name: "analyze_loan", Permission: "use_ai_loan_tool", Flag: "canUseLoanTool"},
			{Name: "detect_fraud", Permission: "use_ai_fraud_detection", Flag: "canUseFraudDetection"},
			{Name: "refund", Permission: "orders.refund", Action: "process_refund", Flag: "canRefund"},
			{Name: "generate_report", Permission: "use_ai_report_generation", Flag: "canUseReports"},
			{Name: "chat", Permission: "access_ai_chat"},
		},
		Actions: []gatehouse.ActionType{{Name: "process_refund"}},
	}
}

const testVersion = 7

func compileTest(t testing.TB) *engine.Snapshot {
	t.Helper()
	s, err := engine.Compile(testPolicy(), testVersion)
	if err != nil {
		t.Fatalf("Compile(testPolicy) = %v", err)
	}
	return s
}

func user(email string) gatehouse.SubjectRef { return gatehouse.User(email) }
func agent(id string) gatehouse.SubjectRef   { return gatehouse.AgentRef(id) }
func ctx(kv ...any) map[string]any           { return kvMap(kv) }
func props(kv ...any) map[string]any         { return kvMap(kv) }
func kvMap(kv []any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
