package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/policy"
	"github.com/gatehouse/gatehouse/service"
)

const actionsPolicy = basePolicy + `
tools: [{name: refund, permission: chat.write, action: process_refund, amount: args.amount}]
actions: [{name: process_refund, default: {enabled: false, requires_confirmation: true}}]
`

// An organization enables refunds with limits, a store overrides only the
// confirmation, and every change is one audited policy change.
func TestSetActionPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(actionsPolicy)
	ctx := context.Background()
	count := int64(5)
	if _, err := f.svc.SetActionPolicy(ctx, "cli:ops", "org", "process_refund", service.ActionPolicyChange{
		Enabled: new(true),
		Limits:  &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "80", Window: "24h", MaxCount: &count},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetActionPolicy(ctx, "cli:ops", "store-a", "process_refund", service.ActionPolicyChange{
		RequiresConfirmation: new(false),
	}); err != nil {
		t.Fatal(err)
	}
	pols, err := f.svc.ActionPolicies("store-a")
	if err != nil || len(pols) != 1 {
		t.Fatalf("ActionPolicies(store-a) = %+v, %v", pols, err)
	}
	p := pols[0]
	if !p.Enabled || p.EnabledFrom != "tenant:org" || p.RequiresConfirmation || p.RequiresConfirmationFrom != "tenant:store-a" ||
		p.LimitsFrom != "tenant:org" || p.Exact.MaxAmount != 8000 {
		t.Errorf("store-a's refund policy = %+v", p)
	}
	events, err := f.svc.ListAudit(ctx, gatehouse.AuditFilter{Action: "action.policy"})
	if err != nil || len(events) != 2 || events[1].Target != "tenant/store-a" || events[1].Actor != "cli:ops" {
		t.Errorf("audit of the changes = %+v, %v", events, err)
	}

	if _, err := f.svc.InheritActionPolicy(ctx, "cli:ops", "store-a", "process_refund"); err != nil {
		t.Fatal(err)
	}
	if pols, _ := f.svc.ActionPolicies("store-a"); !pols[0].RequiresConfirmation || pols[0].RequiresConfirmationFrom != gatehouse.SourceDefault {
		t.Errorf("after inherit: %+v", pols[0])
	}

	before := f.version()
	bad := []struct {
		tenant, action string
		c              service.ActionPolicyChange
		want           error
	}{
		{"nowhere", "process_refund", service.ActionPolicyChange{Enabled: new(true)}, gatehouse.ErrNotFound},
		{"org", "launch_rocket", service.ActionPolicyChange{Enabled: new(true)}, gatehouse.ErrNotFound},
		{"org", "process_refund", service.ActionPolicyChange{Limits: &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "-1"}}, gatehouse.ErrInvalid},
		{"org", "process_refund", service.ActionPolicyChange{Limits: &gatehouse.ActionLimits{MaxPercentage: "120"}}, gatehouse.ErrInvalid},
		{"org", "process_refund", service.ActionPolicyChange{Limits: &gatehouse.ActionLimits{Window: "0s", MaxCount: &count}}, gatehouse.ErrInvalid},
	}
	for _, b := range bad {
		if _, err := f.svc.SetActionPolicy(ctx, "cli:ops", b.tenant, b.action, b.c); !errors.Is(err, b.want) {
			t.Errorf("SetActionPolicy(%s, %s, %+v) = %v, want %v", b.tenant, b.action, b.c, err, b.want)
		}
	}
	if f.version() != before {
		t.Errorf("refused changes moved the policy version")
	}
}

// Editing one limit of a store that inherits its organization's limits
// makes all of them the store's own; the organization's and its other
// stores' stay as they were.
func TestEditActionLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(strings.Replace(actionsPolicy, "requires_confirmation: true}", "requires_confirmation: true, limits: {max_percentage: 20}}", 1))
	ctx := context.Background()
	count := int64(5)
	if _, err := f.svc.SetActionPolicy(ctx, "cli:ops", "org", "process_refund", service.ActionPolicyChange{
		Limits: &gatehouse.ActionLimits{Currency: "EUR", MaxAmount: "80", Window: "24h", MaxCount: &count},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EditActionLimits(ctx, "cli:ops", "store-a", "process_refund", func(l *gatehouse.ActionLimits) error {
		if l.Currency != "EUR" || l.MaxAmount != "80" || l.MaxCount == nil || *l.MaxCount != 5 {
			t.Errorf("store-a's limits before the edit = %+v, want org's", *l)
		}
		l.MaxAmount = "50.00"
		*l.MaxCount = 3
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		tenant, from string
		amount       int64
		count        int64
	}{
		{"store-a", "tenant:store-a", 5000, 3},
		{"store-b", "tenant:org", 8000, 5},
		{"org", "tenant:org", 8000, 5},
	} {
		pols, err := f.svc.ActionPolicies(want.tenant)
		if err != nil {
			t.Fatal(err)
		}
		if p := pols[0]; p.LimitsFrom != want.from || p.Exact.MaxAmount != want.amount || p.Exact.MaxCount != want.count || p.Exact.Window != 24*time.Hour {
			t.Errorf("%s's refund limits = %+v from %s, want %d minor units, %d per 24h from %s", want.tenant, p.Exact, p.LimitsFrom, want.amount, want.count, want.from)
		}
	}
	// A tenant without limits anywhere above it starts from the default's.
	if _, err := f.svc.EditActionLimits(ctx, "cli:ops", "general", "process_refund", func(l *gatehouse.ActionLimits) error {
		if *l != (gatehouse.ActionLimits{MaxPercentage: "20"}) {
			t.Errorf("general's limits before the edit = %+v, want the default's", *l)
		}
		l.MaxPercentage = "10"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if pols, _ := f.svc.ActionPolicies("general"); pols[0].Exact.MaxPercentage != 1000 || pols[0].LimitsFrom != "tenant:general" {
		t.Errorf("general's refund limits = %+v from %s", pols[0].Exact, pols[0].LimitsFrom)
	}

	before := f.version()
	refuse := errors.New("refused")
	bad := []struct {
		tenant, action string
		edit           func(l *gatehouse.ActionLimits) error
		want           error
	}{
		{"store-b", "process_refund", func(*gatehouse.ActionLimits) error { return refuse }, refuse},
		{"store-b", "process_refund", func(l *gatehouse.ActionLimits) error { l.MaxAmount = "-1"; return nil }, gatehouse.ErrInvalid},
		{"store-b", "launch_rocket", func(*gatehouse.ActionLimits) error { return nil }, gatehouse.ErrNotFound},
		{"nowhere", "process_refund", func(*gatehouse.ActionLimits) error { return nil }, gatehouse.ErrNotFound},
	}
	for _, b := range bad {
		if _, err := f.svc.EditActionLimits(ctx, "cli:ops", b.tenant, b.action, b.edit); !errors.Is(err, b.want) {
			t.Errorf("EditActionLimits(%s, %s) = %v, want %v", b.tenant, b.action, err, b.want)
		}
	}
	if f.version() != before {
		t.Errorf("refused edits moved the policy version")
	}
}

func TestReplayActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, service.Config{})
	f.apply(actionsPolicy)
	ctx := context.Background()
	if _, err := f.svc.SetActionPolicy(ctx, "cli:ops", "org", "process_refund", service.ActionPolicyChange{Enabled: new(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ReplayActions(ctx, mustDoc(t, "actions: []\n"), 0, 5); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("ReplayActions(period 0) = %v, want ErrInvalid", err)
	}
	// Removing the action type leaves tenants naming it: the proposal is invalid.
	if _, err := f.svc.ReplayActions(ctx, mustDoc(t, "actions: []\n"), time.Hour, 5); !errors.Is(err, gatehouse.ErrInvalid) {
		t.Errorf("ReplayActions(without the action type) = %v, want ErrInvalid", err)
	}
	rep, err := f.svc.ReplayActions(ctx, mustDoc(t, strings.SplitN(actionsPolicy, "tools:", 2)[0]+"tools: []\n"), time.Hour, 5)
	if err != nil || rep.Actions != 0 {
		t.Errorf("ReplayActions with nothing recorded = %+v, %v", rep, err)
	}
}

func mustDoc(t *testing.T, src string) *policy.Document {
	t.Helper()
	doc, err := policy.Parse("proposal.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
