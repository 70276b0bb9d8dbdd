package engine_test

import (
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestCheckAllocs: the hot path does not allocate.
func TestCheckAllocs(t *testing.T) {
	s := compileTest(t)
	reqs := []*gatehouse.Request{
		{Subject: user("gus@example.org"), Permission: "use_ai_loan_tool", Tenant: "general"},
		{Subject: user("sara@acme.example"), Permission: "use_ai_loan_tool", Tenant: "acme-berlin"},
		{Subject: user("Sara@ACME.example"), Permission: "use_ai_loan_tool", Tenant: "acme"},
		{Subject: user("  sara@acme.example "), Permission: "chat.view"},
		{Subject: user("sara@acme.example"), Permission: "orders.refund", Tenant: "acme-milan"},
		{Subject: user("ursula@example.org"), Permission: "chat.view", Tenant: "acme"},
		{Subject: user("gina@globex.example"), Permission: "use_ai_fraud_detection", Tenant: "globex-rome"},
		{Subject: user("admin@example.com"), Permission: "audit.read", Tenant: "globex"},
		{Subject: user("ghost@example.com"), Permission: "chat.view"},
		{Subject: user("sara@acme.example"), Permission: "no.such"},
		{Subject: user("sara@acme.example"), Permission: "chat.view", Tenant: "nowhere"},
		{Subject: user(""), Permission: "chat.view"},
		{Subject: agent("support-bot"), OnBehalfOf: user("Carl@acme.example"), Permission: "orders.refund", Tenant: "acme-berlin"},
		{Subject: agent("support-bot"), OnBehalfOf: user("sara@acme.example"), Permission: "use_ai_loan_tool", Tenant: "acme-berlin"},
		nil,
	}
	for _, req := range reqs {
		if n := testing.AllocsPerRun(100, func() { s.Check(req) }); n != 0 {
			t.Errorf("Check(%s) allocates %v times, want 0", reqString(req), n)
		}
	}
	tool := &gatehouse.Request{Subject: user("sara@acme.example"), Tenant: "acme"}
	if n := testing.AllocsPerRun(100, func() { s.CheckTool(tool, "analyze_loan") }); n != 0 {
		t.Errorf("CheckTool(%s, analyze_loan) allocates %v times, want 0", reqString(tool), n)
	}
}
