// Package billing turns signed payment webhooks into plan changes (seed
// 001): it verifies Stripe-compatible signatures, decodes the events
// Gatehouse acts on, maps prices to plans and customers to the tenant or
// user they pay for, and computes each customer's next state. It does no
// I/O; the service layer stores the outcome, exactly once per event, with
// the plan change it makes.
//
// A customer moves only forward: an event created before the newest one
// applied to the customer is stale and changes nothing, so deliveries out
// of order never restore an older plan. A failed payment starts a grace
// period during which the plan holds; when it ends (TypeGraceExpired, or
// at once for an event that arrives after it) the customer is downgraded.
package billing

import (
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Outcome says what processing an event did.
type Outcome string

// Outcomes.
const (
	// OutcomeApplied: the customer's state moved, and with it its plan if
	// the plan changed.
	OutcomeApplied Outcome = "applied"
	// OutcomeDuplicate: an event with this id was processed before.
	OutcomeDuplicate Outcome = "duplicate"
	// OutcomeStale: the event is older than the newest one applied to the
	// customer.
	OutcomeStale Outcome = "stale"
	// OutcomeIgnored: a type or status Gatehouse does not act on.
	OutcomeIgnored Outcome = "ignored"
	// OutcomeUnknownCustomer: the customer is not in the configuration, or
	// the tenant or user it pays for is not in the policy.
	OutcomeUnknownCustomer Outcome = "unknown_customer"
	// OutcomeUnknownPrice: no price of the event maps to a plan the policy
	// declares.
	OutcomeUnknownPrice Outcome = "unknown_price"
	// OutcomeRejected: a webhook refused for its signature or body.
	OutcomeRejected Outcome = "rejected"
)

// Subscription statuses that downgrade a customer (Stripe's names).
var endedStatuses = []string{"canceled", "unpaid", "incomplete_expired", "paused"}

// Next returns customer cur's state after event e (cur is the zero value
// but for ID for a customer never stored) and OutcomeApplied, or cur and
// the outcome that says why e changes nothing. plans are the policy's
// plans, lowest first; now is when e is processed.
func (c *Config) Next(cur gatehouse.BillingCustomer, e Event, plans []string, now time.Time) (gatehouse.BillingCustomer, Outcome) {
	target, ok := c.Customers[e.Customer]
	if !ok {
		return cur, OutcomeUnknownCustomer
	}
	if cur.Version > 0 && e.Created.Before(cur.LastCreated) {
		return cur, OutcomeStale
	}
	downgrade := c.downgradePlan(plans)
	if downgrade == "" {
		return cur, OutcomeUnknownPrice
	}
	next := cur
	next.ID, next.Subject = e.Customer, target.String()
	next.LastEvent, next.LastCreated, next.UpdatedAt = e.ID, e.Created, now
	pay := func(status gatehouse.BillingStatus) Outcome {
		plan, outcome := c.planOf(e.Prices, plans)
		if outcome != OutcomeApplied {
			return outcome
		}
		next.Plan, next.Status = plan, status
		if status != gatehouse.BillingPastDue {
			next.GraceUntil = time.Time{}
		} else if cur.Status != gatehouse.BillingPastDue || cur.GraceUntil.IsZero() {
			next.GraceUntil = e.Created.Add(c.GracePeriod)
		}
		return OutcomeApplied
	}
	end := func() Outcome {
		next.Plan, next.Status, next.GraceUntil = downgrade, gatehouse.BillingCanceled, time.Time{}
		return OutcomeApplied
	}
	var outcome Outcome
	switch {
	case e.Type == TypeCheckoutCompleted && e.PaymentStatus == "unpaid":
		// An asynchronous payment: the subscription's events follow.
		outcome = OutcomeIgnored
	case e.Type == TypeCheckoutCompleted && len(e.Prices) == 0 && e.Mode == "subscription":
		// The subscription's own events carry its prices.
		outcome = OutcomeIgnored
	case e.Type == TypeCheckoutCompleted:
		outcome = pay(gatehouse.BillingActive)
	case e.Type == TypeSubscriptionCreated || e.Type == TypeSubscriptionUpdated:
		switch {
		case e.Status == "active" || e.Status == "trialing":
			outcome = pay(gatehouse.BillingActive)
		case e.Status == "past_due":
			outcome = pay(gatehouse.BillingPastDue)
		case slices.Contains(endedStatuses, e.Status):
			outcome = end()
		default:
			// incomplete: the first payment is still under way.
			outcome = OutcomeIgnored
		}
	case e.Type == TypeSubscriptionDeleted:
		outcome = end()
	case e.Type == TypePaymentFailed && cur.Version > 0 && cur.Status != gatehouse.BillingCanceled:
		if cur.Status != gatehouse.BillingPastDue {
			next.Status, next.GraceUntil = gatehouse.BillingPastDue, e.Created.Add(c.GracePeriod)
		}
		outcome = OutcomeApplied
	case e.Type == TypeGraceExpired && cur.Status == gatehouse.BillingPastDue && !cur.GraceUntil.After(now):
		outcome = end()
	default:
		// A failed payment of a customer on no paid plan, or a grace
		// period that is not over.
		outcome = OutcomeIgnored
	}
	if outcome != OutcomeApplied {
		return cur, outcome
	}
	if next.Status == gatehouse.BillingPastDue && !next.GraceUntil.After(now) {
		// The grace period is already over: a late event, or none at all.
		end()
	}
	return next, OutcomeApplied
}

// planOf returns the highest plan that prices buy, by the policy's order.
func (c *Config) planOf(prices, plans []string) (string, Outcome) {
	best := -1
	for _, p := range prices {
		if i := slices.Index(plans, c.Prices[p]); i > best {
			best = i
		}
	}
	if best < 0 {
		return "", OutcomeUnknownPrice
	}
	return plans[best], OutcomeApplied
}

// downgradePlan is DowngradePlan if the policy declares it, else the
// policy's lowest plan; "" without plans.
func (c *Config) downgradePlan(plans []string) string {
	if slices.Contains(plans, c.DowngradePlan) {
		return c.DowngradePlan
	}
	if len(plans) == 0 {
		return ""
	}
	return plans[0]
}

// GraceExpired is the event that ends customer cu's grace period: its id
// is derived from the customer and the deadline, so instances sweeping at
// the same time process it once.
func GraceExpired(cu gatehouse.BillingCustomer) Event {
	return Event{
		ID:       TypeGraceExpired + ":" + cu.ID + ":" + cu.GraceUntil.UTC().Format(time.RFC3339Nano),
		Type:     TypeGraceExpired,
		Created:  cu.GraceUntil,
		Customer: cu.ID,
	}
}
