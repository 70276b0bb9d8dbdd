package guard_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/guard"
)

// BenchmarkAuthorize measures authorizations with a reservation each (an
// action without limits in acme-berlin, so none is refused), and the same
// decision without the store (Simulate of an action without windows).
func BenchmarkAuthorize(b *testing.B) {
	b.Run("reserve/sqlite", func(b *testing.B) {
		f := newFixture(b)
		req := &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": "5"}}
		b.ReportAllocs()
		for b.Loop() {
			if res := f.g.Authorize(b.Context(), req, ""); !res.Allowed {
				b.Fatalf("Authorize = %+v", res)
			}
		}
	})
	b.Run("decide-only", func(b *testing.B) {
		f := newFixture(b)
		req := &guard.Request{Subject: bot, OnBehalfOf: ana, Tenant: "acme", Tool: "discount", Args: map[string]any{"percent": "5"}}
		b.ReportAllocs()
		for b.Loop() {
			if res := f.g.Simulate(b.Context(), req); res.Reason != gatehouse.ReasonConfirmationRequired {
				b.Fatalf("Simulate = %+v", res)
			}
		}
	})
}
