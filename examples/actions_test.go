package examples_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// Seed 004's seven action types ship with labels and descriptions in every
// locale, and a tenant that sets nothing gets the conservative defaults of
// DESIGN.md: look-ups and tracking enabled without confirmation, everything
// else disabled and confirmed.
func TestSeedActionDefaults(t *testing.T) {
	snap := loadExample(t)
	want := map[string]bool{ // action → enabled by default
		"lookup_order": true, "send_tracking": true, "update_address": false, "cancel_order": false,
		"initiate_return": false, "process_refund": false, "apply_discount": false,
	}
	for _, tenant := range []string{"general", "globex"} {
		pols, err := snap.ActionPolicies(tenant)
		if err != nil {
			t.Fatal(err)
		}
		if len(pols) != len(want) {
			t.Fatalf("%d action types, want the seven of seed 004", len(pols))
		}
		for _, p := range pols {
			enabled, ok := want[p.Action]
			if !ok || p.Enabled != enabled || p.RequiresConfirmation == enabled ||
				p.EnabledFrom != gatehouse.SourceDefault || p.Limits != nil {
				t.Errorf("%s in %s = %+v, want the default enabled=%v", p.Action, tenant, p, enabled)
			}
			for _, lang := range []string{"de", "en", "es", "fr", "it", "zh"} {
				if snap.ActionLabel(p.Action, lang) == p.Action {
					t.Errorf("%s has no %s label", p.Action, lang)
				}
			}
		}
	}
	// A store inherits its organization's refund policy and sets its own limits.
	p, err := snap.ActionPolicy("acme-berlin", "process_refund")
	if err != nil || !p.Enabled || p.EnabledFrom != "tenant:acme" || p.LimitsFrom != "tenant:acme-berlin" || p.Exact.MaxAmount != 5000 {
		t.Errorf("process_refund in acme-berlin = %+v, %v", p, err)
	}
}
