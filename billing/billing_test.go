package billing_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/billing"
)

var plans = []string{"free", "starter", "pro", "premium", "enterprise"}

func testConfig() billing.Config {
	c := billing.DefaultConfig()
	c.Secrets = []string{secret}
	c.Prices = map[string]string{"price_starter": "starter", "price_pro": "pro", "price_premium": "premium",
		"price_gone": "platinum", "price_addon": ""}
	c.Customers = map[string]billing.Target{
		"cus_acme": {Kind: gatehouse.KindTenant, ID: "acme"},
		"cus_ed":   {Kind: gatehouse.KindUser, ID: "ed@example.org"},
	}
	return c
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// active is cus_acme on plan, as evt_0 at t0 left it.
func active(plan string) gatehouse.BillingCustomer {
	return gatehouse.BillingCustomer{ID: "cus_acme", Subject: "tenant:acme", Plan: plan, Status: gatehouse.BillingActive,
		LastEvent: "evt_0", LastCreated: t0, UpdatedAt: t0, Version: 1}
}

func TestNext(t *testing.T) {
	c := testConfig()
	grace := t0.Add(time.Hour + billing.DefaultGracePeriod)
	pastDue := active("pro")
	pastDue.Status, pastDue.GraceUntil = gatehouse.BillingPastDue, t0.Add(billing.DefaultGracePeriod)
	ev := func(typ string, at time.Duration, edit func(e *billing.Event)) billing.Event {
		e := billing.Event{ID: "evt_1", Type: typ, Created: t0.Add(at), Customer: "cus_acme"}
		if edit != nil {
			edit(&e)
		}
		return e
	}
	prices := func(p ...string) func(e *billing.Event) { return func(e *billing.Event) { e.Prices = p } }
	status := func(s string, p ...string) func(e *billing.Event) {
		return func(e *billing.Event) { e.Status, e.Prices = s, p }
	}
	// moved is cur after evt_1 at t0+at with plan, status and grace.
	moved := func(cur gatehouse.BillingCustomer, at time.Duration, plan string, st gatehouse.BillingStatus, graceUntil time.Time) gatehouse.BillingCustomer {
		cur.ID, cur.Subject, cur.Plan, cur.Status, cur.GraceUntil = "cus_acme", "tenant:acme", plan, st, graceUntil
		cur.LastEvent, cur.LastCreated, cur.UpdatedAt = "evt_1", t0.Add(at), t0.Add(2*time.Hour)
		return cur
	}
	none := gatehouse.BillingCustomer{ID: "cus_acme"}
	tests := []struct {
		name    string
		cur     gatehouse.BillingCustomer
		e       billing.Event
		want    gatehouse.BillingCustomer
		outcome billing.Outcome
	}{
		{"checkout buys a plan", none, ev(billing.TypeCheckoutCompleted, time.Hour, prices("price_pro")),
			moved(none, time.Hour, "pro", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"the highest plan of several prices", none, ev(billing.TypeCheckoutCompleted, time.Hour, prices("price_addon", "price_premium", "price_starter", "price_x")),
			moved(none, time.Hour, "premium", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"unpaid checkout waits", none, ev(billing.TypeCheckoutCompleted, time.Hour, func(e *billing.Event) { e.Prices, e.PaymentStatus = []string{"price_pro"}, "unpaid" }),
			none, billing.OutcomeIgnored},
		{"subscription checkout without prices waits for the subscription", none,
			ev(billing.TypeCheckoutCompleted, time.Hour, func(e *billing.Event) { e.Mode = "subscription" }), none, billing.OutcomeIgnored},
		{"payment checkout without prices", none, ev(billing.TypeCheckoutCompleted, time.Hour, nil), none, billing.OutcomeUnknownPrice},
		{"unknown price", none, ev(billing.TypeCheckoutCompleted, time.Hour, prices("price_x")), none, billing.OutcomeUnknownPrice},
		{"price of a plan the policy lacks", none, ev(billing.TypeCheckoutCompleted, time.Hour, prices("price_gone")), none, billing.OutcomeUnknownPrice},
		{"unknown customer", none, ev(billing.TypeCheckoutCompleted, time.Hour, func(e *billing.Event) { e.Customer, e.Prices = "cus_x", []string{"price_pro"} }),
			none, billing.OutcomeUnknownCustomer},
		{"subscription created", none, ev(billing.TypeSubscriptionCreated, time.Hour, status("active", "price_starter")),
			moved(none, time.Hour, "starter", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"trial counts as paid", none, ev(billing.TypeSubscriptionCreated, time.Hour, status("trialing", "price_pro")),
			moved(none, time.Hour, "pro", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"incomplete subscription waits", none, ev(billing.TypeSubscriptionCreated, time.Hour, status("incomplete", "price_pro")), none, billing.OutcomeIgnored},
		{"upgrade", active("pro"), ev(billing.TypeSubscriptionUpdated, time.Hour, status("active", "price_premium")),
			moved(active("pro"), time.Hour, "premium", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"same time as the last event applies", active("pro"), ev(billing.TypeSubscriptionUpdated, 0, status("active", "price_premium")),
			moved(active("pro"), 0, "premium", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"older event is stale", active("premium"), ev(billing.TypeSubscriptionUpdated, -time.Second, status("active", "price_starter")),
			active("premium"), billing.OutcomeStale},
		{"older deletion is stale", active("premium"), ev(billing.TypeSubscriptionDeleted, -time.Hour, nil), active("premium"), billing.OutcomeStale},
		{"past due starts the grace period", active("pro"), ev(billing.TypeSubscriptionUpdated, time.Hour, status("past_due", "price_pro")),
			moved(active("pro"), time.Hour, "pro", gatehouse.BillingPastDue, grace), billing.OutcomeApplied},
		{"past due again keeps the deadline", pastDue, ev(billing.TypeSubscriptionUpdated, time.Hour, status("past_due", "price_pro")),
			moved(pastDue, time.Hour, "pro", gatehouse.BillingPastDue, pastDue.GraceUntil), billing.OutcomeApplied},
		{"payment recovers", pastDue, ev(billing.TypeSubscriptionUpdated, time.Hour, status("active", "price_pro")),
			moved(pastDue, time.Hour, "pro", gatehouse.BillingActive, time.Time{}), billing.OutcomeApplied},
		{"canceled subscription downgrades", active("pro"), ev(billing.TypeSubscriptionUpdated, time.Hour, status("canceled", "price_pro")),
			moved(active("pro"), time.Hour, "free", gatehouse.BillingCanceled, time.Time{}), billing.OutcomeApplied},
		{"unpaid subscription downgrades", pastDue, ev(billing.TypeSubscriptionUpdated, time.Hour, status("unpaid", "price_pro")),
			moved(pastDue, time.Hour, "free", gatehouse.BillingCanceled, time.Time{}), billing.OutcomeApplied},
		{"deleted subscription downgrades", active("enterprise"), ev(billing.TypeSubscriptionDeleted, time.Hour, nil),
			moved(active("enterprise"), time.Hour, "free", gatehouse.BillingCanceled, time.Time{}), billing.OutcomeApplied},
		{"failed payment keeps the plan for the grace period", active("pro"), ev(billing.TypePaymentFailed, time.Hour, nil),
			moved(active("pro"), time.Hour, "pro", gatehouse.BillingPastDue, grace), billing.OutcomeApplied},
		{"second failed payment keeps the deadline", pastDue, ev(billing.TypePaymentFailed, time.Hour, nil),
			moved(pastDue, time.Hour, "pro", gatehouse.BillingPastDue, pastDue.GraceUntil), billing.OutcomeApplied},
		{"failed payment of a new customer", none, ev(billing.TypePaymentFailed, time.Hour, nil), none, billing.OutcomeIgnored},
		{"failed payment after cancellation", moved(active("pro"), 0, "free", gatehouse.BillingCanceled, time.Time{}),
			ev(billing.TypePaymentFailed, time.Hour, nil), moved(active("pro"), 0, "free", gatehouse.BillingCanceled, time.Time{}), billing.OutcomeIgnored},
		{"unknown type", active("pro"), ev("invoice.paid", time.Hour, nil), active("pro"), billing.OutcomeIgnored},
	}
	now := t0.Add(2 * time.Hour)
	for _, tt := range tests {
		got, outcome := c.Next(tt.cur, tt.e, plans, now)
		if outcome != tt.outcome {
			t.Errorf("%s: Next(%s) outcome = %s, want %s", tt.name, tt.e.Type, outcome, tt.outcome)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: Next(%s) (-want +got):\n%s", tt.name, tt.e.Type, diff)
		}
	}
}

func TestGraceExpiry(t *testing.T) {
	c := testConfig()
	c.DowngradePlan = "starter"
	cu := active("premium")
	cu.Status, cu.GraceUntil = gatehouse.BillingPastDue, t0.Add(time.Hour)
	e := billing.GraceExpired(cu)
	if e.Type != billing.TypeGraceExpired || e.Customer != "cus_acme" || !e.Created.Equal(cu.GraceUntil) {
		t.Errorf("GraceExpired(%+v) = %+v", cu, e)
	}
	if again := billing.GraceExpired(cu); again.ID != e.ID {
		t.Errorf("GraceExpired ids differ for the same deadline: %q, %q", e.ID, again.ID)
	}
	if _, outcome := c.Next(cu, e, plans, t0.Add(time.Hour-time.Second)); outcome != billing.OutcomeIgnored {
		t.Errorf("Next(grace expired, before the deadline) = %s, want ignored", outcome)
	}
	got, outcome := c.Next(cu, e, plans, t0.Add(time.Hour))
	if outcome != billing.OutcomeApplied || got.Plan != "starter" || got.Status != gatehouse.BillingCanceled || !got.GraceUntil.IsZero() {
		t.Errorf("Next(grace expired) = %+v, %s; want the downgrade plan starter, canceled", got, outcome)
	}
	// Once the customer paid, the sweep's event changes nothing.
	paid := active("premium")
	if _, outcome := c.Next(paid, e, plans, t0.Add(2*time.Hour)); outcome != billing.OutcomeIgnored {
		t.Errorf("Next(grace expired, customer active) = %s, want ignored", outcome)
	}
	// A downgrade plan the policy lacks falls back to the lowest plan.
	c.DowngradePlan = "platinum"
	if got, _ := c.Next(cu, e, plans, t0.Add(time.Hour)); got.Plan != "free" {
		t.Errorf("Next(grace expired, unknown downgrade plan) = plan %q, want free", got.Plan)
	}
	if _, outcome := c.Next(cu, e, nil, t0.Add(time.Hour)); outcome != billing.OutcomeUnknownPrice {
		t.Errorf("Next(policy without plans) = %s, want unknown_price", outcome)
	}
}

// A failed payment whose grace period is over when it is processed (no
// grace configured, or delivered late) downgrades at once.
func TestGraceOverDowngradesAtOnce(t *testing.T) {
	failed := billing.Event{ID: "evt_1", Type: billing.TypePaymentFailed, Created: t0.Add(time.Minute), Customer: "cus_acme"}
	noGrace := testConfig()
	noGrace.GracePeriod = 0
	for _, tt := range []struct {
		name string
		c    billing.Config
		now  time.Time
	}{
		{"no grace period", noGrace, failed.Created},
		{"delivered after the grace period", testConfig(), failed.Created.Add(billing.DefaultGracePeriod)},
	} {
		got, outcome := tt.c.Next(active("pro"), failed, plans, tt.now)
		if outcome != billing.OutcomeApplied || got.Plan != "free" || got.Status != gatehouse.BillingCanceled || !got.GraceUntil.IsZero() {
			t.Errorf("%s: Next(payment failed) = %+v, %s; want free, canceled", tt.name, got, outcome)
		}
	}
}
