package service_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
	"github.com/gatehouse/gatehouse/sqlite"
)

// BenchmarkEvaluate measures the one door on the example policy, SQLite
// store, without a decision log: a plain permission (the snapshot alone),
// agent actions decided from the snapshot (disabled; over a per-call limit;
// within a per-call limit with a confirmation and no window) and one that
// reads the window's usage (one indexed store read).
func BenchmarkEvaluate(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "g.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	svc, err := service.Open(ctx, store, service.Config{})
	if err != nil {
		b.Fatal(err)
	}
	doc, err := policy.Parse(examples.AIAssistantPolicyFile, examples.AIAssistantPolicy())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.Apply(ctx, "bench", doc, false); err != nil {
		b.Fatal(err)
	}
	bot := gatehouse.Request{Subject: gatehouse.AgentRef("support-bot"), OnBehalfOf: gatehouse.User("olga@acme.example"), Tenant: "acme-berlin"}
	milan := bot
	milan.Tenant = "acme-milan"
	cases := []struct {
		name   string
		q      gatehouse.Question
		reason gatehouse.Reason
	}{
		{"permission", gatehouse.Question{Request: gatehouse.Request{Subject: gatehouse.User("sara@acme.example"), Tenant: "acme", Permission: "use_ai_loan_tool"}}, gatehouse.ReasonGranted},
		{"tool", gatehouse.Question{Request: gatehouse.Request{Subject: gatehouse.User("sara@acme.example"), Tenant: "acme"}, Tool: "analyze_loan"}, gatehouse.ReasonGranted},
		{"action/disabled", gatehouse.Question{Request: bot, Tool: "update_address"}, gatehouse.ReasonActionDisabled},
		{"action/over-per-call-limit", gatehouse.Question{Request: bot, Tool: "apply_discount", Args: map[string]any{"percentage": "90"}}, gatehouse.ReasonLimitExceeded},
		{"action/no-window", gatehouse.Question{Request: milan, Tool: "apply_discount", Args: map[string]any{"percentage": "5"}}, gatehouse.ReasonConfirmationRequired},
		{"action/window", gatehouse.Question{Request: bot, Tool: "process_refund", Args: map[string]any{"amount": "20.00", "currency": "EUR"}}, gatehouse.ReasonConfirmationRequired},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if a, err := svc.Evaluate(ctx, gatehouse.Operator, c.q); err != nil || a.Reason != c.reason {
				b.Fatalf("Evaluate = %s %v, want %s", a.Reason, err, c.reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				svc.Evaluate(ctx, gatehouse.Operator, c.q)
			}
		})
	}
}
