package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/examples"
	"github.com/gatehouse/gatehouse/service"
)

// Issue 14's governance case: a store administrator cannot raise the
// limits, drop the confirmation or lift the ceilings its organization
// enforces, and a 90,000 EUR refund in the store stays denied.
func TestCeilingsBindStoreAdmins(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(string(examples.AIAssistantPolicy()))
	ctx := context.Background()
	if _, err := f.svc.Update(ctx, "test", "enforce", func(p *gatehouse.Policy) error {
		for i := range p.Tenants {
			if p.Tenants[i].ID == "acme" {
				set := p.Tenants[i].Actions["process_refund"]
				set.Enforced, set.RequiresConfirmation = true, new(true)
				p.Tenants[i].Actions["process_refund"] = set
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sam := gatehouse.User("sam@acme.example")
	if _, err := f.svc.Bind(ctx, "test", sam, gatehouse.Assignment{Role: "AI Administrator", Tenant: "acme-berlin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetUserTenants(ctx, "test", "sam@acme.example", []string{"acme-berlin"}); err != nil {
		t.Fatal(err)
	}
	asSam := gatehouse.NewContext(ctx, gatehouse.Caller{Subject: sam, Credential: gatehouse.CredentialToken})
	_, err := f.svc.EditActionLimits(asSam, "user:sam@acme.example", "acme-berlin", "process_refund", func(l *gatehouse.ActionLimits) error {
		l.MaxAmount, l.MaxTotalAmount, l.Window, l.MaxCount = "999999", "", "", nil
		return nil
	})
	if !errors.Is(err, gatehouse.ErrInvalid) || !strings.Contains(err.Error(), `tenant "acme"`) {
		t.Errorf("raising the limits: %v, want ErrInvalid naming acme", err)
	}
	_, err = f.svc.SetActionPolicy(asSam, "user:sam@acme.example", "acme-berlin", "process_refund", service.ActionPolicyChange{RequiresConfirmation: new(false)})
	if !errors.Is(err, gatehouse.ErrInvalid) || !strings.Contains(err.Error(), `tenant "acme"`) {
		t.Errorf("dropping the confirmation: %v, want ErrInvalid naming acme", err)
	}
	// Tightening is the store's to do.
	if _, err := f.svc.EditActionLimits(asSam, "user:sam@acme.example", "acme-berlin", "process_refund", func(l *gatehouse.ActionLimits) error {
		l.MaxAmount = "30.00"
		return nil
	}); err != nil {
		t.Errorf("tightening: %v", err)
	}
	olga := gatehouse.Caller{Subject: gatehouse.User("olga@acme.example"), Credential: gatehouse.CredentialToken}
	a, err := f.svc.Simulate(ctx, olga, gatehouse.Question{Request: gatehouse.Request{Subject: olga.Subject, Tenant: "acme-berlin"},
		Tool: "process_refund", Args: map[string]any{"amount": "90000.00", "currency": "EUR"}})
	if err != nil || a.Allowed || a.Reason != gatehouse.ReasonLimitExceeded {
		t.Errorf("a 90,000 EUR refund: %+v %v, want limit_exceeded", a, err)
	}
	if a.Policy == nil || a.Policy.Ceilings[gatehouse.CeilingLimits] != gatehouse.TenantSource("acme") {
		t.Errorf("the answer's policy %+v, want its limits' ceiling from acme", a.Policy)
	}
}
