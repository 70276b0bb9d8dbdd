package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An organization's enforced action settings cap its stores: a store may
// tighten them, never loosen them, and each looser value is a problem
// naming the organization.
func TestCeilings(t *testing.T) {
	const head = `
permissions: [{name: refund}]
actions: [{name: process_refund}, {name: apply_discount}]
tenants:
  - id: acme
    actions:
      process_refund:
        enabled: true
        requires_confirmation: true
        enforced: true
        limits: {currency: EUR, max_amount: 100, window: 24h, max_count: 50, max_total_amount: 1000}
      apply_discount: {enabled: false, enforced: true, limits: {max_percentage: 15}}
  - {id: acme-north, parent: acme}
`
	tests := []struct {
		name, store string
		want        []string
	}{
		{"tighter is fine", `
  - id: acme-berlin
    parent: acme-north
    actions:
      process_refund: {limits: {currency: EUR, max_amount: "50.00", window: 24h, max_count: 20, max_total_amount: 500}}
      apply_discount: {enabled: false, limits: {max_percentage: 10}}
`, nil},
		{"looser is refused, naming the ancestor", `
  - id: acme-berlin
    parent: acme-north
    actions:
      process_refund: {requires_confirmation: false, limits: {currency: EUR, max_amount: 999999}}
      apply_discount: {enabled: true, limits: {}}
`, []string{
			`18:47: tenants[2].actions.process_refund.requires_confirmation: tenant "acme" requires confirmation of process_refund for its subtree (enforced); a descendant cannot drop it`,
			`18:62: tenants[2].actions.process_refund.limits.window: "" is not "24h", the window of the ceiling tenant "acme" enforces for its subtree`,
			`18:90: tenants[2].actions.process_refund.limits.max_amount: 999999 is above 100, the max_amount of the ceiling tenant "acme" enforces for its subtree`,
			`19:33: tenants[2].actions.apply_discount.enabled: tenant "acme" disables apply_discount for its subtree (enforced); a descendant cannot enable it`,
			`19:47: tenants[2].actions.apply_discount.limits.max_percentage: no max_percentage is above 15, the max_percentage of the ceiling tenant "acme" enforces for its subtree`,
		}},
		{"another currency", `
  - id: acme-berlin
    parent: acme
    actions:
      process_refund: {limits: {currency: USD, max_amount: 10, window: 24h, max_count: 5, max_total_amount: 100}}
`, []string{
			`18:43: tenants[2].actions.process_refund.limits.currency: "USD" is not "EUR", the currency of the ceiling tenant "acme" enforces for its subtree`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, "p.yaml", head+tt.store)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
