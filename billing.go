package gatehouse

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// BillingStatus is where a paying customer's subscription stands.
type BillingStatus string

// Billing statuses.
const (
	// BillingActive: paid; the customer's plan applies.
	BillingActive BillingStatus = "active"
	// BillingPastDue: a payment failed; the plan still applies until the
	// grace period ends, then the customer is downgraded.
	BillingPastDue BillingStatus = "past_due"
	// BillingCanceled: the subscription ended or its grace period passed;
	// the customer is on the downgrade plan.
	BillingCanceled BillingStatus = "canceled"
)

// BillingCustomer is a payment provider's customer as Gatehouse tracks it:
// what it pays for, the plan billing gave it, and the newest provider event
// applied, so that an older event delivered late never moves it back.
type BillingCustomer struct {
	// ID is the provider's customer id (Stripe's cus_…).
	ID string `json:"id"`
	// Subject is what the customer pays for: "tenant:ID" or "user:EMAIL".
	Subject string        `json:"subject"`
	Plan    string        `json:"plan"`
	Status  BillingStatus `json:"status"`
	// GraceUntil is when a past-due customer is downgraded; zero otherwise.
	GraceUntil time.Time `json:"grace_until,omitzero"`
	// LastEvent is the id of the newest event applied and LastCreated the
	// time the provider created it.
	LastEvent   string    `json:"last_event"`
	LastCreated time.Time `json:"last_created"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Version counts the stored states of the customer; 0 means never
	// stored. A commit names the version it read (optimistic concurrency).
	Version int64 `json:"version"`
}

// BillingEvent is a provider event Gatehouse processed, stored under its id
// so that it is processed exactly once.
type BillingEvent struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Customer string `json:"customer"`
	// Created is when the provider created the event.
	Created     time.Time `json:"created"`
	ProcessedAt time.Time `json:"processed_at"`
	// Outcome says what processing did, e.g. "applied".
	Outcome string `json:"outcome"`
}

// BillingCommit is one processed billing event: the event to record, the
// customer's new state, and the policy change it makes with its audit
// events, committed together.
type BillingCommit struct {
	// Base is the policy version Changes were computed from.
	Base    int64
	Changes []Change
	Events  []AuditEvent
	Event   BillingEvent
	// Customer is the customer's new state. Its Version is the version the
	// caller read (0: not stored yet); the store keeps it as Version+1.
	Customer BillingCustomer
}

// Validate reports a commit no store may write (ErrInvalid): an event or
// customer without id, type, subject or times, an unknown status, a
// negative version, or an invalid change.
func (c BillingCommit) Validate() error {
	text := func(s string) bool { return s != "" && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
	e, cu := c.Event, c.Customer
	switch {
	case !text(e.ID) || !text(e.Type) || !text(e.Customer):
		return Invalidf("billing event %q: id, type and customer must be non-empty UTF-8 text", e.ID)
	case e.Created.IsZero() || e.ProcessedAt.IsZero() || !text(e.Outcome):
		return Invalidf("billing event %q: created, processed time and outcome are required", e.ID)
	case !text(cu.ID) || !text(cu.Subject) || !text(cu.Plan) || !text(cu.LastEvent):
		return Invalidf("billing customer %q: id, subject, plan and last event must be non-empty UTF-8 text", cu.ID)
	case cu.ID != e.Customer:
		return Invalidf("billing customer %q: event %q is for customer %q", cu.ID, e.ID, e.Customer)
	case cu.Status != BillingActive && cu.Status != BillingPastDue && cu.Status != BillingCanceled:
		return Invalidf("billing customer %q: unknown status %q", cu.ID, cu.Status)
	case cu.LastCreated.IsZero() || cu.UpdatedAt.IsZero() || cu.Version < 0:
		return Invalidf("billing customer %q: last created and updated times and a version of at least 0 are required", cu.ID)
	}
	for _, ch := range c.Changes {
		if err := ch.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// BillingCustomerFilter selects billing customers; zero fields match all.
type BillingCustomerFilter struct {
	Subject string
	// GraceEndedBy, when set, selects past-due customers whose grace period
	// ended at or before it: those due for a downgrade.
	GraceEndedBy time.Time
	// Limit caps the number of customers: 0 means 100, more than 10000 is
	// capped at 10000, negative is ErrInvalid.
	Limit int
}

// ErrDuplicateEvent reports a billing event whose id is already stored:
// it was processed before, and nothing was changed.
var ErrDuplicateEvent = errors.New("billing event already processed")

// BillingStore keeps billing customers and processed billing events.
type BillingStore interface {
	// CommitBilling stores c.Event and c.Customer and commits c.Changes and
	// c.Events as CommitPolicy does, in one transaction, and returns the
	// policy version. It changes nothing and returns ErrDuplicateEvent if an
	// event with c.Event.ID is stored; ErrConflict if the policy version is
	// not c.Base or the stored customer's version is not c.Customer.Version;
	// ErrInvalid for a commit that fails Validate or a change CommitPolicy
	// refuses. On success it fills in the audit events as CommitPolicy does.
	CommitBilling(ctx context.Context, c BillingCommit) (int64, error)
	// BillingEvent returns the processed event with id; ErrNotFound if none.
	BillingEvent(ctx context.Context, id string) (BillingEvent, error)
	// BillingCustomer returns the customer with id; ErrNotFound if none.
	BillingCustomer(ctx context.Context, id string) (BillingCustomer, error)
	// ListBillingCustomers returns the customers matching f, sorted by id.
	ListBillingCustomers(ctx context.Context, f BillingCustomerFilter) ([]BillingCustomer, error)
}
