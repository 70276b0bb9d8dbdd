package service_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// TestApprovableActions: the service lists the pending actions a caller
// may confirm (the guard's rule), pages them, and says whom a move
// concerns, including an approver once the record left pending.
func TestApprovableActions(t *testing.T) {
	for _, o := range storeOpeners {
		t.Run(o.name, func(t *testing.T) {
			ctx := context.Background()
			svc := openExample(t, o.open(t)())
			user := func(email string) gatehouse.Caller {
				return gatehouse.Caller{Subject: gatehouse.User(email), Credential: gatehouse.CredentialToken}
			}
			bot := gatehouse.Caller{Subject: gatehouse.AgentRef("support-bot"), Credential: gatehouse.CredentialToken}
			olga, admin, carl := user("olga@acme.example"), user("admin@example.com"), user("carl@acme.example")
			var ids []string
			for range 3 {
				a, err := svc.AuthorizeToolCall(ctx, bot, gatehouse.Question{Request: gatehouse.Request{Subject: bot.Subject,
					OnBehalfOf: olga.Subject, Tenant: "acme-berlin"}, Tool: "process_refund",
					Args: map[string]any{"amount": "20.00", "currency": "EUR"}}, "")
				if err != nil || a.ActionID == "" {
					t.Fatalf("authorize = %+v, %v", a, err)
				}
				ids = append(ids, a.ActionID)
			}
			for _, tc := range []struct {
				name   string
				caller gatehouse.Caller
				want   int
			}{{"customer", olga, 3}, {"superuser", admin, 3}, {"colleague", carl, 0}, {"agent", bot, 0}} {
				recs, err := svc.ApprovableActions(ctx, tc.caller, gatehouse.ActionFilter{})
				if err != nil || len(recs) != tc.want {
					t.Errorf("ApprovableActions(%s) = %d records, %v; want %d", tc.name, len(recs), err, tc.want)
				}
			}
			page, err := svc.ApprovableActions(ctx, olga, gatehouse.ActionFilter{Limit: 2})
			if err != nil || len(page) != 2 || page[0].ID != ids[0] {
				t.Fatalf("first page = %v, %v", page, err)
			}
			rest, err := svc.ApprovableActions(ctx, olga, gatehouse.ActionFilter{AfterSeq: page[1].Seq})
			if err != nil || len(rest) != 1 || rest[0].ID != ids[2] {
				t.Errorf("second page = %v, %v", rest, err)
			}
			if _, err := svc.ApprovableActions(ctx, gatehouse.Caller{Credential: gatehouse.CredentialSharedToken}, gatehouse.ActionFilter{}); err == nil {
				t.Error("ApprovableActions without a subject = nil error, want forbidden")
			}
			confirmed, err := svc.ConfirmAction(ctx, admin, ids[0])
			if err != nil {
				t.Fatal(err)
			}
			if recs, _ := svc.ApprovableActions(ctx, olga, gatehouse.ActionFilter{}); len(recs) != 2 {
				t.Errorf("after a confirmation Olga may confirm %d, want 2", len(recs))
			}
			if !svc.ActionConcerns(admin, confirmed) || !svc.ActionConcerns(olga, confirmed) || svc.ActionConcerns(carl, confirmed) {
				t.Error("ActionConcerns of the confirmed record: want the superuser and Olga, not Carl")
			}
		})
	}
}
