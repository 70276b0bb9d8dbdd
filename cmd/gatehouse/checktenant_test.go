package main

import (
	"strings"
	"testing"
)

// check without --tenant for a permission the subject holds only within
// tenants answers the service's tenant_required, not permission_missing.
func TestCheckWithoutTenant(t *testing.T) {
	db := newDB(t)
	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{[]string{"--subject", "user:sara@acme.example", "--tool", "analyze_loan"}, "tenant_required"},
		{[]string{"--subject", "user:sara@acme.example", "--permission", "use_ai_fraud_detection"}, "tenant_required"},
		{[]string{"--subject", "user:carl@acme.example", "--tool", "analyze_loan"}, "permission_missing"},
	} {
		r := run(t, db, append([]string{"check"}, tc.args...)...)
		if r.code != 3 || !strings.Contains(r.stdout, "("+tc.reason+")") {
			t.Errorf("check %s: exit %d %q, want 3 and %s", strings.Join(tc.args, " "), r.code, r.stdout, tc.reason)
		}
	}
}
