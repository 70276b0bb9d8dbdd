package http_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/locale"
)

// TestChatCapabilitiesSayWhy: a denied tool of the capabilities event
// carries its reason as a sentence in the socket's language; an allowed
// one carries none.
func TestChatCapabilitiesSayWhy(t *testing.T) {
	t.Parallel()
	f := newChatFixture(t, nil)
	c := f.dial("user:carl@acme.example", "acme-berlin", "de")
	caps := capabilities(t, c.next(chat.EventCapabilities))
	tools := map[string]gatehouse.ToolAccess{}
	for _, ta := range caps.Tools {
		tools[ta.Tool] = ta
	}
	loan, insights := tools["analyze_loan"], tools["customer_insights"]
	want := f.cat.Reason("de", gatehouse.Decision{Reason: loan.Reason, Plan: loan.Plan},
		locale.Args{Subject: "user:carl@acme.example", Permission: "analyze_loan", Tenant: "acme-berlin"})
	if loan.Allowed || loan.Reason != gatehouse.ReasonPermissionMissing || loan.Message != want {
		t.Errorf("analyze_loan = %+v, want permission_missing saying %q", loan, want)
	}
	if !insights.Allowed || insights.Message != "" {
		t.Errorf("customer_insights = %+v, want allowed without a message", insights)
	}
}
