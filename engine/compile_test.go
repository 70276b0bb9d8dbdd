package engine_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(p *gatehouse.Policy)
	}{
		{"empty permission name", func(p *gatehouse.Policy) { p.Permissions[0].Name = "" }},
		{"permission name with spaces", func(p *gatehouse.Policy) { p.Permissions[0].Name = " access_ai_chat" }},
		{"duplicate permission", func(p *gatehouse.Policy) { p.Permissions[1].Name = "access_ai_chat" }},
		{"feature in no plan", func(p *gatehouse.Policy) { p.Permissions[0].Feature = "telepathy" }},
		{"duplicate plan", func(p *gatehouse.Policy) { p.Plans[1].Name = "free" }},
		{"empty feature", func(p *gatehouse.Policy) { p.Plans[1].Features = []string{""} }},
		{"bundle with unknown permission", func(p *gatehouse.Policy) { p.Bundles[0].Permissions = []string{"no.such"} }},
		{"duplicate bundle", func(p *gatehouse.Policy) { p.Bundles[1].Name = "Access AI Chat" }},
		{"category with unknown bundle", func(p *gatehouse.Policy) { p.Categories[0].Bundles = []string{"No Such"} }},
		{"duplicate category", func(p *gatehouse.Policy) { p.Categories = append(p.Categories, p.Categories[0]) }},
		{"role with unknown bundle", func(p *gatehouse.Policy) { p.Roles[0].Bundles = []string{"No Such"} }},
		{"role with unknown permission", func(p *gatehouse.Policy) { p.Roles[1].Permissions = []string{"no.such"} }},
		{"duplicate role", func(p *gatehouse.Policy) { p.Roles[1].Name = "Agent Supervisor" }},
		{"duplicate tenant", func(p *gatehouse.Policy) { p.Tenants[1].ID = "general" }},
		{"empty tenant id", func(p *gatehouse.Policy) { p.Tenants[0].ID = "" }},
		{"unknown parent", func(p *gatehouse.Policy) { p.Tenants[2].Parent = "nowhere" }},
		{"tenant is its own parent", func(p *gatehouse.Policy) { p.Tenants[0].Parent = "general" }},
		{"tenant cycle", func(p *gatehouse.Policy) { p.Tenants[1].Parent = "acme-berlin" }},
		{"tenant with unknown plan", func(p *gatehouse.Policy) { p.Tenants[1].Plan = "platinum" }},
		{"unknown default tenant", func(p *gatehouse.Policy) { p.Settings.DefaultTenants = []string{"nowhere"} }},
		{"unknown access permission", func(p *gatehouse.Policy) { p.Settings.AccessPermission = "no.such" }},
		{"unknown admin permission", func(p *gatehouse.Policy) { p.Settings.AdminPermission = "no.such" }},
		{"tool with unknown permission", func(p *gatehouse.Policy) { p.Tools[0].Permission = "no.such" }},
		{"tool with unknown action", func(p *gatehouse.Policy) { p.Tools[0].Action = "launch_rocket" }},
		{"duplicate tool", func(p *gatehouse.Policy) { p.Tools[1].Name = "analyze_loan" }},
		{"duplicate action", func(p *gatehouse.Policy) { p.Actions = append(p.Actions, p.Actions[0]) }},
		{"empty email", func(p *gatehouse.Policy) { p.Users[1].Email = "  " }},
		{"duplicate email ignoring case", func(p *gatehouse.Policy) { p.Users[2].Email = "SARA@acme.example" }},
		{"user with unknown plan", func(p *gatehouse.Policy) { p.Users[1].Plan = "platinum" }},
		{"user with unknown tenant", func(p *gatehouse.Policy) { p.Users[1].Tenants = []string{"nowhere"} }},
		{"assignment of unknown role", func(p *gatehouse.Policy) { p.Users[1].Roles[0].Role = "No Such" }},
		{"assignment in unknown tenant", func(p *gatehouse.Policy) { p.Users[1].Roles[0].Tenant = "nowhere" }},
		{"grant of unknown permission", func(p *gatehouse.Policy) { p.Users[1].Grants[0].Permission = "no.such" }},
		{"grant in unknown tenant", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Tenant = "nowhere" }},
		{"condition syntax error", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Condition = "context.amount <" }},
		{"condition unknown variable", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Condition = "request.amount < 3" }},
		{"condition not bool", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Condition = `"yes"` }},
		{"condition int", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Condition = "1 + 2" }},
		{"condition blank", func(p *gatehouse.Policy) { p.Users[2].Grants[0].Condition = " " }},
		{"agent empty id", func(p *gatehouse.Policy) { p.Agents[0].ID = "" }},
		{"duplicate agent", func(p *gatehouse.Policy) { p.Agents[1].ID = "support-bot" }},
		{"agent with unknown tenant", func(p *gatehouse.Policy) { p.Agents[0].Tenants = []string{"nowhere"} }},
		{"agent with unknown role", func(p *gatehouse.Policy) { p.Agents[0].Roles[0].Role = "No Such" }},
		{"agent with bad condition", func(p *gatehouse.Policy) { p.Agents[2].Grants[0].Condition = "subject." }},
		{"empty alias", func(p *gatehouse.Policy) { p.Users[1].Aliases = []string{""} }},
		{"alias of two users", func(p *gatehouse.Policy) {
			p.Users[1].Aliases = []string{"x1"}
			p.Users[2].Aliases = []string{"x1"}
		}},
		{"alias is another user's email", func(p *gatehouse.Policy) { p.Users[1].Aliases = []string{p.Users[2].Email} }},
		{"empty resource type", func(p *gatehouse.Policy) { p.Resources = []gatehouse.ResourceEntry{{ID: "r"}} }},
		{"empty resource id", func(p *gatehouse.Policy) { p.Resources = []gatehouse.ResourceEntry{{Type: "record"}} }},
		{"duplicate resource", func(p *gatehouse.Policy) {
			p.Resources = []gatehouse.ResourceEntry{{Type: "record", ID: "r"}, {Type: "record", ID: "r"}}
		}},
		{"resource in unknown tenant", func(p *gatehouse.Policy) {
			p.Resources = []gatehouse.ResourceEntry{{Type: "record", ID: "r", Tenant: "nowhere"}}
		}},
	}
	for _, tc := range tests {
		p := testPolicy()
		tc.change(p)
		s, err := engine.Compile(p, 1)
		if !errors.Is(err, gatehouse.ErrInvalid) || s != nil {
			t.Errorf("Compile(policy with %s) = %v, %v; want nil, ErrInvalid", tc.name, s, err)
		}
	}
}

func TestCompileNil(t *testing.T) {
	if _, err := engine.Compile(nil, 1); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("Compile(nil) = %v, want ErrInvalid", err)
	}
}

func TestCompileEmpty(t *testing.T) {
	s, err := engine.Compile(&gatehouse.Policy{}, 3)
	if err != nil {
		t.Fatalf("Compile(empty policy) = %v", err)
	}
	req := &gatehouse.Request{Subject: user("a@b.c"), Permission: "x"}
	if d := s.Check(req); d.Reason != unknownSub || d.Version != 3 {
		t.Errorf("empty policy Check(%s) = %+v, want unknown_subject at version 3", reqString(req), d)
	}
	if got := s.VisibleTenants("a@b.c"); len(got) != 0 {
		t.Errorf("empty policy VisibleTenants = %v, want none", got)
	}
}

// TestCompileLenient: what the engine accepts though a document linter may not.
func TestCompileLenient(t *testing.T) {
	p := testPolicy()
	// A feature listed in two plans belongs to the lower one.
	p.Plans[2].Features = append(p.Plans[2].Features, "advanced_analytics")
	// A stored email that is not normalized is normalized.
	p.Users[1].Email = " Sara@ACME.example "
	s, err := engine.Compile(p, 1)
	if err != nil {
		t.Fatalf("Compile = %v", err)
	}
	req := &gatehouse.Request{Subject: user("gina@globex.example"), Permission: "use_ai_fraud_detection", Tenant: "globex"}
	if d := s.Check(req); d.Reason != planReq || d.Plan != "pro" {
		t.Errorf("Check(%s) = %+v, want plan_required pro", reqString(req), d)
	}
	req = &gatehouse.Request{Subject: user("sara@acme.example"), Permission: "chat.view"}
	if d := s.Check(req); d.Reason != granted {
		t.Errorf("Check(%s) = %+v, want granted", reqString(req), d)
	}
}

// FuzzCompile: no JSON policy makes Compile panic, and a compiled one
// answers without panicking.
func FuzzCompile(f *testing.F) {
	seed, err := json.Marshal(testPolicy())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"tenants":[{"id":"a","parent":"b"},{"id":"b","parent":"a"}]}`))
	f.Add([]byte(`{"permissions":[{"name":"p","feature":"f"}],"plans":[{"name":"x","features":["f"]}],"users":[{"email":"u@x","grants":[{"permission":"p","condition":"context.a > 1"}]}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p gatehouse.Policy
		if json.Unmarshal(doc, &p) != nil {
			return
		}
		s, err := engine.Compile(&p, 1)
		if err != nil {
			if !errors.Is(err, gatehouse.ErrInvalid) {
				t.Fatalf("Compile(%s) = %v, want nil or ErrInvalid", doc, err)
			}
			return
		}
		for _, u := range p.Users {
			for _, pm := range p.Permissions {
				d := s.Check(&gatehouse.Request{Subject: user(u.Email), Permission: pm.Name, Tenant: u.Plan})
				if d.Reason == gatehouse.ReasonInternalError {
					t.Fatalf("Check(%s, %s) = internal_error for %s", u.Email, pm.Name, doc)
				}
			}
			if _, err := s.Effective(user(u.Email), ""); err != nil && gatehouse.ErrorCode(err) == gatehouse.CodeInternal {
				t.Fatalf("Effective(%s) = %v for %s", u.Email, err, doc)
			}
		}
	})
}

// TestConditionCostLimit: a condition that would run too long fails instead.
func TestConditionCostLimit(t *testing.T) {
	s, err := engine.Compile(&gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "p"}},
		Users: []gatehouse.UserEntry{{Email: "u@example.com", Grants: []gatehouse.Grant{{
			Permission: "p",
			Condition:  "context.items.all(x, context.items.all(y, x + y >= 0))",
		}}}},
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	items := make([]any, 2000)
	for i := range items {
		items[i] = i
	}
	for _, tc := range []struct {
		items []any
		want  gatehouse.Reason
	}{
		{items[:3], granted},
		{items, condFailed},
	} {
		req := &gatehouse.Request{Subject: user("u@example.com"), Permission: "p", Context: ctx("items", tc.items)}
		if d := s.Check(req); d.Reason != tc.want {
			t.Errorf("Check with %d items = %s, want %s", len(tc.items), d.Reason, tc.want)
		}
	}
}
