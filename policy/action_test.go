package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
)

// actionDoc declares seed 004's refund action with a default, an
// organization's override and a store's override, and a tool mapping the
// refund's amount.
const actionDoc = `permissions:
  - {name: payments.refund}
  - {name: payments.approve}
tenants:
  - id: acme
    actions:
      process_refund:
        enabled: true
        limits: {currency: EUR, max_amount: 100, window: 24h, max_count: 50, max_total_amount: "1000.00"}
  - id: acme-berlin
    parent: acme
    actions:
      process_refund: {requires_confirmation: false, limits: {}}
tools:
  - {name: refund, permission: payments.refund, action: process_refund, amount: args.refund.amount, currency: args.refund.currency}
actions:
  - name: process_refund
    default: {enabled: false, requires_confirmation: true, limits: {max_percentage: 12.5}}
    approver_permission: payments.approve
`

func TestParseActions(t *testing.T) {
	d := mustParse(t, "actions.yaml", actionDoc)
	acme := d.Policy.Tenant("acme").Actions["process_refund"]
	fifty := int64(50)
	want := gatehouse.ActionSetting{
		Enabled: new(true),
		Limits: &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "100", Window: "24h",
			MaxCount: &fifty, MaxTotalAmount: "1000.00"},
	}
	if diff := cmp.Diff(want, acme); diff != "" {
		t.Errorf("acme's process_refund (-want +got):\n%s", diff)
	}
	berlin := d.Policy.Tenant("acme-berlin").Actions["process_refund"]
	if berlin.Enabled != nil || berlin.RequiresConfirmation == nil || *berlin.RequiresConfirmation ||
		berlin.Limits == nil || *berlin.Limits != (gatehouse.ActionLimits{}) {
		t.Errorf("acme-berlin's process_refund = %+v, want only requires_confirmation false and empty limits", berlin)
	}
	if got := d.Policy.Actions[0].Default.Limits.MaxPercentage; got != "12.5" {
		t.Errorf("default max_percentage = %q, want the text 12.5", got)
	}
	if tool := d.Policy.Tools[0]; tool.Amount != "args.refund.amount" || tool.Currency != "args.refund.currency" {
		t.Errorf("tool mapping = %+v", tool)
	}
}

// Export and parse again is a no-op for action settings, limits and tool
// mappings, in both formats, and so is a second apply (Diff is empty).
func TestActionsRoundTrip(t *testing.T) {
	d := mustParse(t, "actions.yaml", actionDoc)
	for _, format := range []string{"yaml", "json"} {
		out, err := Marshal(d.Policy, format)
		if err != nil {
			t.Fatalf("Marshal(%s) = %v", format, err)
		}
		back, err := Parse("export."+format, out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%s)) = %v\n%s", format, err, out)
		}
		if changes, err := Diff(d.Policy, back.Policy); err != nil || len(changes) != 0 {
			t.Errorf("%s round trip changed the policy (%v):\n%s", format, err, FormatDiff(changes))
		}
		if !strings.Contains(string(out), "max_total_amount") {
			t.Errorf("Marshal(%s) lost the limits:\n%s", format, out)
		}
	}
	// Merge's copy shares no limits with the stored policy.
	merged := Merge(d.Policy, d)
	*merged.Tenant("acme").Actions["process_refund"].Limits.MaxCount = 7
	if got := *d.Policy.Tenant("acme").Actions["process_refund"].Limits.MaxCount; got != 50 {
		t.Errorf("changing Merge's copy changed the original: max_count %d", got)
	}
}

// Every mistake in an action setting is a problem at its line.
func TestActionProblems(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // fragment of the problem
		line      int
	}{
		{"unknown action", "actions: []\ntenants:\n  - id: a\n    actions: {refund: {enabled: true}}\n", `unknown action "refund"`, 4},
		{"negative amount", limitsDoc(`{currency: EUR, max_amount: -5}`), "is negative", 7},
		{"zero amount", limitsDoc(`{currency: EUR, max_amount: 0}`), "must be positive", 7},
		{"too many decimals", limitsDoc(`{currency: EUR, max_amount: 10.001}`), "more than 2 decimals", 7},
		{"yen decimals", limitsDoc(`{currency: JPY, max_amount: "10.5"}`), "more than 0 decimals", 7},
		{"not a number", limitsDoc(`{currency: EUR, max_amount: lots}`), "not a decimal number", 7},
		{"nan", limitsDoc(`{currency: EUR, max_amount: .nan}`), "not a decimal number", 7},
		{"huge", limitsDoc(`{currency: EUR, max_amount: 1e30}`), "larger than", 7},
		{"no currency", limitsDoc(`{max_amount: 5}`), "currency is required", 7},
		{"bad currency", limitsDoc(`{currency: euro, max_amount: 5}`), "ISO 4217", 7},
		{"unknown currency", limitsDoc(`{currency: XYZ, max_amount: 5}`), "not an ISO 4217", 7},
		{"percent over 100", limitsDoc(`{max_percentage: 100.5}`), "larger than 100.00", 7},
		{"zero window", limitsDoc(`{window: 0s, max_count: 3}`), "must be positive", 7},
		{"bad window", limitsDoc(`{window: 1 day, max_count: 3}`), "not a duration", 7},
		{"window alone", limitsDoc(`{window: 24h}`), "needs max_count or max_total_amount", 7},
		{"count without window", limitsDoc(`{max_count: 3}`), "needs a window", 7},
		{"zero count", limitsDoc(`{window: 1h, max_count: 0}`), "must be positive", 7},
		{"count not whole", limitsDoc(`{window: 1h, max_count: 2.5}`), "want a whole number", 7},
		{"bool enabled", "actions: [{name: x, default: {enabled: true}}]\ntenants:\n  - id: a\n    actions: {x: {enabled: maybe}}\n", "want true or false", 4},
		{"tool without action", "permissions: [{name: p}]\ntools: [{name: t, permission: p, amount: args.x}]\n", "the tool has no action", 2},
		{"bad arg path", "permissions: [{name: p}]\nactions: [{name: x, default: {enabled: true}}]\ntools: [{name: t, permission: p, action: x, amount: refund.amount}]\n", "not an argument path", 3},
		{"reserved name", "actions:\n  - {name: limits, default: {enabled: true}}\n", `"limits" is reserved`, 2},
		{"unknown approver", "permissions: []\nactions:\n  - name: x\n    default: {enabled: true}\n    approver_permission: nope\n", `unknown permission "nope"`, 5},
	}
	for _, tt := range tests {
		_, err := Parse(tt.name+".yaml", []byte(tt.src))
		var perr *Error
		if !errors.As(err, &perr) || !errors.Is(err, gatehouse.ErrInvalid) {
			t.Errorf("%s: Parse = %v, want *Error", tt.name, err)
			continue
		}
		found := false
		for _, p := range perr.Problems {
			if strings.Contains(p.Message, tt.want) {
				found = true
				if p.Line != tt.line {
					t.Errorf("%s: problem %q at line %d, want %d", tt.name, p, p.Line, tt.line)
				}
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want one containing %q", tt.name, perr.Problems, tt.want)
		}
	}
}

// limitsDoc is a document whose tenant sets limits on line 7.
func limitsDoc(limits string) string {
	return "actions:\n  - {name: x, default: {enabled: false}}\ntenants:\n  - id: a\n    actions:\n      x:\n        limits: " + limits + "\n"
}
