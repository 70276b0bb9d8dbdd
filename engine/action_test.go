package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/money"
)

func actionPolicy() *gatehouse.Policy {
	fifty := int64(50)
	return &gatehouse.Policy{
		Permissions: []gatehouse.Permission{{Name: "payments.refund"}, {Name: "orders.lookup"}},
		Tenants: []gatehouse.Tenant{
			{ID: "acme", Actions: map[string]gatehouse.ActionSetting{
				"process_refund": {Enabled: new(true), Limits: &gatehouse.ActionLimits{
					Currency: "EUR", MaxAmount: "100", Window: "24h", MaxCount: &fifty}},
			}},
			{ID: "acme-berlin", Parent: "acme", Actions: map[string]gatehouse.ActionSetting{
				"process_refund": {RequiresConfirmation: new(false), Limits: &gatehouse.ActionLimits{}},
			}},
			{ID: "acme-berlin-mitte", Parent: "acme-berlin"},
			{ID: "acme-milan", Parent: "acme"},
			{ID: "globex"},
		},
		Tools: []gatehouse.Tool{
			{Name: "refund", Permission: "payments.refund", Action: "process_refund", Amount: "args.amount"},
			{Name: "lookup", Permission: "orders.lookup"},
		},
		Actions: []gatehouse.ActionType{
			{Name: "process_refund", Default: gatehouse.ActionPolicy{RequiresConfirmation: true},
				Approver: "payments.refund", Labels: map[string]string{"en": "Process refunds", "de": "Erstattungen"},
				Descriptions: map[string]string{"en": "Refund money.", "de": "Erstattet Geld."}},
			{Name: "lookup_order", Default: gatehouse.ActionPolicy{Enabled: true}},
		},
	}
}

// A store without a setting inherits its organization's; a store's own
// setting wins for the parts it sets; a tenant outside any override gets
// the action type's default. Every part names where it came from.
func TestActionPolicyInheritance(t *testing.T) {
	snap, err := Compile(actionPolicy(), 3)
	if err != nil {
		t.Fatal(err)
	}
	acme := gatehouse.TenantSource("acme")
	berlin := gatehouse.TenantSource("acme-berlin")
	def := gatehouse.SourceDefault
	tests := []struct {
		tenant                   string
		enabled, confirm         bool
		enabledFrom, confirmFrom string
		limitsFrom               string
		maxAmount, maxCount      int64
		window                   time.Duration
	}{
		{"globex", false, true, def, def, "", 0, 0, 0},
		{"acme", true, true, acme, def, acme, 10000, 50, 24 * time.Hour},
		{"acme-milan", true, true, acme, def, acme, 10000, 50, 24 * time.Hour},
		{"acme-berlin", true, false, acme, berlin, berlin, 0, 0, 0},
		{"acme-berlin-mitte", true, false, acme, berlin, berlin, 0, 0, 0},
	}
	for _, tt := range tests {
		e, err := snap.ActionPolicy(tt.tenant, "process_refund")
		if err != nil {
			t.Fatalf("ActionPolicy(%s) = %v", tt.tenant, err)
		}
		if e.Enabled != tt.enabled || e.EnabledFrom != tt.enabledFrom ||
			e.RequiresConfirmation != tt.confirm || e.RequiresConfirmationFrom != tt.confirmFrom ||
			e.LimitsFrom != tt.limitsFrom || e.Exact.MaxAmount != tt.maxAmount ||
			e.Exact.MaxCount != tt.maxCount || e.Exact.Window != tt.window {
			t.Errorf("ActionPolicy(%s, process_refund) = %+v", tt.tenant, e)
		}
		if e.Tenant != tt.tenant || e.Action != "process_refund" || e.Approver != "payments.refund" {
			t.Errorf("ActionPolicy(%s) names %s/%s approver %q", tt.tenant, e.Tenant, e.Action, e.Approver)
		}
	}
	all, err := snap.ActionPolicies("acme")
	if err != nil || len(all) != 2 || all[0].Action != "lookup_order" || !all[0].Enabled || all[1].Action != "process_refund" {
		t.Errorf("ActionPolicies(acme) = %+v, %v; want lookup_order then process_refund", all, err)
	}
	// The effective limits are a copy: changing them changes no snapshot.
	e, _ := snap.ActionPolicy("acme", "process_refund")
	*e.Limits.MaxCount = 1
	if again, _ := snap.ActionPolicy("acme", "process_refund"); *again.Limits.MaxCount != 50 {
		t.Errorf("ActionPolicy returned limits shared with the snapshot")
	}
	for _, q := range [][2]string{{"nowhere", "process_refund"}, {"acme", "launch_rocket"}} {
		if _, err := snap.ActionPolicy(q[0], q[1]); !errors.Is(err, gatehouse.ErrNotFound) {
			t.Errorf("ActionPolicy(%s, %s) = %v, want ErrNotFound", q[0], q[1], err)
		}
	}
	if _, err := snap.ActionPolicies("nowhere"); !errors.Is(err, gatehouse.ErrNotFound) {
		t.Errorf("ActionPolicies(nowhere) = %v, want ErrNotFound", err)
	}
}

func TestToolAction(t *testing.T) {
	snap, err := Compile(actionPolicy(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if ta, ok := snap.ToolAction("refund"); !ok || ta.Action != "process_refund" || ta.Amount != "args.amount" {
		t.Errorf("ToolAction(refund) = %+v, %v", ta, ok)
	}
	if ta, ok := snap.ToolAction("lookup"); !ok || ta.Action != "" {
		t.Errorf("ToolAction(lookup) = %+v, %v; want a tool without action", ta, ok)
	}
	if _, ok := snap.ToolAction("nope"); ok {
		t.Errorf("ToolAction(nope) found a tool")
	}
	for lang, want := range map[string]string{"de": "Erstattungen", "fr": "Process refunds"} {
		if got := snap.ActionLabel("process_refund", lang); got != want {
			t.Errorf("ActionLabel(process_refund, %s) = %q, want %q", lang, got, want)
		}
	}
	if got := snap.ActionLabel("lookup_order", "de"); got != "lookup_order" {
		t.Errorf("ActionLabel without labels = %q, want the name", got)
	}
	for _, q := range []struct{ action, lang, want string }{
		{"process_refund", "de", "Erstattet Geld."},
		{"process_refund", "fr", "Refund money."},
		{"lookup_order", "de", ""},
		{"launch_rocket", "en", ""},
	} {
		if got := snap.ActionDescription(q.action, q.lang); got != q.want {
			t.Errorf("ActionDescription(%s, %s) = %q, want %q", q.action, q.lang, got, q.want)
		}
	}
}

// Compile refuses what validation refuses, as defence in depth.
func TestCompileActionErrors(t *testing.T) {
	tests := map[string]func(p *gatehouse.Policy){
		"unknown action in tenant": func(p *gatehouse.Policy) {
			p.Tenants[4].Actions = map[string]gatehouse.ActionSetting{"launch_rocket": {}}
		},
		"bad tenant limits": func(p *gatehouse.Policy) {
			p.Tenants[4].Actions = map[string]gatehouse.ActionSetting{"process_refund": {Limits: &gatehouse.ActionLimits{MaxAmount: "5"}}}
		},
		"bad default limits": func(p *gatehouse.Policy) {
			p.Actions[0].Default.Limits = &gatehouse.ActionLimits{Window: "-1h", MaxCount: new(int64(1))}
		},
		"unknown approver": func(p *gatehouse.Policy) { p.Actions[0].Approver = "nope" },
	}
	for name, mutate := range tests {
		p := actionPolicy()
		mutate(p)
		if _, err := Compile(p, 1); !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: Compile = %v, want ErrInvalid", name, err)
		}
	}
}

// An enforced setting is a ceiling for the subtree: whatever a descendant
// sets, the effective policy is the tightest along the path, and each
// bound part names the ancestor that enforces it.
func TestActionCeilings(t *testing.T) {
	p := actionPolicy()
	acme := p.Tenants[0].Actions["process_refund"]
	acme.Enforced, acme.RequiresConfirmation = true, new(true)
	p.Tenants[0].Actions["process_refund"] = acme
	// Berlin (compiled without validation, which would refuse it) tries to
	// loosen everything; Mitte below it tightens the amount.
	p.Tenants[1].Actions["process_refund"] = gatehouse.ActionSetting{RequiresConfirmation: new(false),
		Limits: &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "999999", Window: "24h", MaxCount: new(int64(500))}}
	p.Tenants[2].Actions = map[string]gatehouse.ActionSetting{"process_refund": {Limits: &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "20"}}}
	snap, err := Compile(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	acmeSrc := gatehouse.TenantSource("acme")
	for _, tt := range []struct {
		tenant              string
		maxAmount, maxCount int64
		window              time.Duration
	}{
		{"acme", 10000, 50, 24 * time.Hour},
		{"acme-berlin", 10000, 50, 24 * time.Hour},
		// Mitte's own limits have no window: the ceiling's count applies.
		{"acme-berlin-mitte", 2000, 50, 24 * time.Hour},
		{"acme-milan", 10000, 50, 24 * time.Hour},
	} {
		e, err := snap.ActionPolicy(tt.tenant, "process_refund")
		if err != nil {
			t.Fatal(err)
		}
		if !e.RequiresConfirmation || e.Exact.MaxAmount != tt.maxAmount || e.Exact.MaxCount != tt.maxCount || e.Exact.Window != tt.window {
			t.Errorf("%s: confirm %v, limits %+v; want confirmation and %d/%d per %v", tt.tenant, e.RequiresConfirmation, e.Exact, tt.maxAmount, tt.maxCount, tt.window)
		}
		if e.Ceilings[gatehouse.CeilingLimits] != acmeSrc || e.Ceilings[gatehouse.CeilingRequiresConfirmation] != acmeSrc {
			t.Errorf("%s: ceilings %v, want limits and confirmation from %s", tt.tenant, e.Ceilings, acmeSrc)
		}
		if e.Limits == nil {
			t.Fatalf("%s: no limits document", tt.tenant)
		}
		if got, err := money.ParseAmount(string(e.Limits.MaxAmount), "EUR"); err != nil || got != tt.maxAmount {
			t.Errorf("%s: limits document max_amount %q, want %d minor units", tt.tenant, e.Limits.MaxAmount, tt.maxAmount)
		}
	}
	if e, _ := snap.ActionPolicy("globex", "process_refund"); e.Ceilings != nil {
		t.Errorf("globex has ceilings %v", e.Ceilings)
	}
}
