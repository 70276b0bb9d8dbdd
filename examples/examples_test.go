// Package examples_test checks the shipped example policies: they parse,
// validate, apply to a real store, and decide the seed scenarios as the
// seed documents describe.
package examples_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/engine"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
	"go.yaml.in/yaml/v3"
)

type scenario struct {
	Name       string         `yaml:"name"`
	Subject    string         `yaml:"subject"`
	OnBehalfOf string         `yaml:"on_behalf_of"`
	Permission string         `yaml:"permission"`
	Tool       string         `yaml:"tool"`
	Tenant     string         `yaml:"tenant"`
	Context    map[string]any `yaml:"context"`
	Want       string         `yaml:"want"`
	Plan       string         `yaml:"plan"`
	Denied     string         `yaml:"denied"`
}

func loadExample(t *testing.T) *engine.Snapshot {
	t.Helper()
	doc, err := policy.ParseFile(filepath.Join("ai-assistant", "policy.yaml"))
	if err != nil {
		t.Fatalf("parse example policy: %v", err)
	}
	snap, err := engine.Compile(doc.Policy, 1)
	if err != nil {
		t.Fatalf("compile example policy: %v", err)
	}
	return snap
}

func loadScenarios(t *testing.T) []scenario {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("ai-assistant", "cases.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []scenario
	if err := yaml.Unmarshal(data, &cases); err != nil {
		t.Fatalf("cases.yaml: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("cases.yaml has no cases")
	}
	return cases
}

func (sc scenario) request(t *testing.T) *gatehouse.Request {
	t.Helper()
	subject, err := gatehouse.ParseSubject(sc.Subject)
	if err != nil {
		t.Fatalf("%s: %v", sc.Name, err)
	}
	req := &gatehouse.Request{Subject: subject, Permission: sc.Permission, Tenant: sc.Tenant, Context: sc.Context}
	if sc.OnBehalfOf != "" {
		if req.OnBehalfOf, err = gatehouse.ParseSubject(sc.OnBehalfOf); err != nil {
			t.Fatalf("%s: %v", sc.Name, err)
		}
	}
	return req
}

func decide(snap *engine.Snapshot, sc scenario, req *gatehouse.Request) gatehouse.Decision {
	if sc.Tool != "" {
		return snap.CheckTool(req, sc.Tool)
	}
	return snap.Check(req)
}

func TestSeedScenarios(t *testing.T) {
	snap := loadExample(t)
	for _, sc := range loadScenarios(t) {
		t.Run(sc.Name, func(t *testing.T) {
			req := sc.request(t)
			d := decide(snap, sc, req)
			if string(d.Reason) != sc.Want || d.Allowed != (sc.Want == "granted" || sc.Want == "superuser") {
				t.Fatalf("%s %s%s in %q = %+v, want reason %s", sc.Subject, sc.Permission, sc.Tool, sc.Tenant, d, sc.Want)
			}
			if d.Plan != sc.Plan {
				t.Errorf("plan = %q, want %q", d.Plan, sc.Plan)
			}
			if got := d.Subject.String(); got != sc.Denied {
				t.Errorf("denied subject = %q, want %q", got, sc.Denied)
			}
		})
	}
}

func TestVisibleTenants(t *testing.T) {
	snap := loadExample(t)
	tests := []struct {
		email string
		want  []string
	}{
		{"admin@example.com", []string{"acme", "acme-berlin", "acme-milan", "general", "globex"}},
		{"sara@acme.example", []string{"acme", "acme-berlin", "acme-milan"}},
		{"Carl@ACME.example", []string{"acme-berlin"}},
		{"ursula@example.org", []string{"general"}},
		{"nobody@example.com", []string{"general"}},
		{"", nil},
	}
	for _, tt := range tests {
		if got := snap.VisibleTenants(tt.email); !slices.Equal(got, tt.want) {
			t.Errorf("VisibleTenants(%q) = %v, want %v", tt.email, got, tt.want)
		}
	}
}

// Seed 000's frontend flags: a supervisor sees the loan, fraud and insight
// tools; a customer service agent only customer insights.
func TestCapabilityFlags(t *testing.T) {
	snap := loadExample(t)
	tests := []struct {
		subject gatehouse.SubjectRef
		tenant  string
		want    map[string]bool
	}{
		{gatehouse.User("sara@acme.example"), "acme", map[string]bool{
			"canUseLoanTool": true, "canUseFraudDetection": true, "canUseCustomerInsights": true,
			"canUseReports": false, "canUseAdvancedTools": false}},
		{gatehouse.User("carl@acme.example"), "acme-berlin", map[string]bool{
			"canUseLoanTool": false, "canUseFraudDetection": false, "canUseCustomerInsights": true,
			"canUseReports": false, "canUseAdvancedTools": false}},
		{gatehouse.User("admin@example.com"), "globex", map[string]bool{
			"canUseLoanTool": true, "canUseFraudDetection": true, "canUseCustomerInsights": true,
			"canUseReports": true, "canUseAdvancedTools": true}},
	}
	for _, tt := range tests {
		eff, err := snap.Effective(tt.subject, tt.tenant)
		if err != nil {
			t.Fatalf("Effective(%s, %s): %v", tt.subject, tt.tenant, err)
		}
		for flag, want := range tt.want {
			if got, ok := eff.Flags[flag]; !ok || got != want {
				t.Errorf("Effective(%s, %s).Flags[%s] = %v (present %v), want %v", tt.subject, tt.tenant, flag, got, ok, want)
			}
		}
	}
	eff, err := snap.Effective(gatehouse.User("gina@globex.example"), "globex")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(eff.Locked, func(l gatehouse.LockedPermission) bool {
		return l.Permission == "use_ai_fraud_detection" && l.Plan == "pro"
	}) {
		t.Errorf("Effective(gina, globex).Locked = %+v, want use_ai_fraud_detection locked behind pro", eff.Locked)
	}
}

// The example applies to a real store, a second apply changes nothing, and
// the stored policy decides the same as the file.
func TestApplyExampleToStore(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.ParseFile(filepath.Join("ai-assistant", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Apply(ctx, "test", doc, false)
	if err != nil {
		t.Fatalf("first apply: %v", err)
	}
	if len(res.Changes) == 0 || res.Version != 1 {
		t.Fatalf("first apply = %d changes, version %d; want changes at version 1", len(res.Changes), res.Version)
	}
	res, err = svc.Apply(ctx, "test", doc, false)
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if len(res.Changes) != 0 || res.Version != 1 {
		t.Fatalf("second apply = %d changes, version %d; want none at version 1", len(res.Changes), res.Version)
	}
	for _, sc := range loadScenarios(t) {
		d := decide(svc.Snapshot(), sc, sc.request(t))
		if string(d.Reason) != sc.Want {
			t.Errorf("%s: stored policy decided %s, want %s", sc.Name, d.Reason, sc.Want)
		}
	}
	if _, err := svc.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain after apply: %v", err)
	}
}
