package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/billing"
	"github.com/gatehouse/gatehouse/engine"
)

// BillingActor is who the audit trail names for changes billing makes.
const BillingActor = "billing"

// BillingResult is what processing one billing event did.
type BillingResult struct {
	Event    string          `json:"event"`
	Type     string          `json:"type"`
	Customer string          `json:"customer,omitempty"`
	Outcome  billing.Outcome `json:"outcome"`
	// Subject and Plan are what the customer pays for and the plan it has
	// after the event, when the event was applied.
	Subject string             `json:"subject,omitempty"`
	Plan    string             `json:"plan,omitempty"`
	Changes []gatehouse.Change `json:"changes,omitempty"`
	// Version is the policy version after the event, when it was applied.
	Version int64 `json:"version,omitempty"`
}

// billingDetail is the audit detail of a processed billing event.
type billingDetail struct {
	Event      string                  `json:"event"`
	Type       string                  `json:"type"`
	Created    time.Time               `json:"created"`
	Subject    string                  `json:"subject"`
	Plan       string                  `json:"plan"`
	Status     gatehouse.BillingStatus `json:"status"`
	GraceUntil time.Time               `json:"grace_until,omitzero"`
}

// ApplyBillingEvent processes e exactly once: it moves e's customer to
// the state cfg says (see billing.Config.Next) and sets the plan of the
// tenant or user the customer pays for, committing the event, the
// customer's state, the plan change and their audit events together, and
// installs the new snapshot, so the next decision sees the plan. An event
// processed before, by this or another instance, is OutcomeDuplicate; an
// event that changes nothing (stale, ignored, unknown customer or price)
// is reported with its outcome and not stored. Errors are the store's.
func (s *Service) ApplyBillingEvent(ctx context.Context, cfg *billing.Config, e billing.Event) (BillingResult, error) {
	var res BillingResult
	err := s.write(ctx, "billing.event", func() (*engine.Snapshot, error) {
		res = BillingResult{Event: e.ID, Type: e.Type, Customer: e.Customer}
		return s.tryBilling(ctx, cfg, e, &res)
	})
	if err != nil {
		return BillingResult{Event: e.ID, Type: e.Type, Customer: e.Customer}, err
	}
	return res, nil
}

func (s *Service) tryBilling(ctx context.Context, cfg *billing.Config, e billing.Event, res *BillingResult) (*engine.Snapshot, error) {
	if _, err := s.store.BillingEvent(ctx, e.ID); err == nil {
		res.Outcome = billing.OutcomeDuplicate
		return nil, nil
	} else if !errors.Is(err, gatehouse.ErrNotFound) {
		return nil, err
	}
	cur := gatehouse.BillingCustomer{ID: e.Customer}
	if e.Customer != "" {
		stored, err := s.store.BillingCustomer(ctx, e.Customer)
		switch {
		case err == nil:
			cur = stored
		case !errors.Is(err, gatehouse.ErrNotFound):
			return nil, err
		}
	}
	now := s.cfg.Clock.Now()
	var next gatehouse.BillingCustomer
	pl, err := s.plan(ctx, func(p *gatehouse.Policy) error {
		var outcome billing.Outcome
		next, outcome = cfg.Next(cur, e, planNames(p), now)
		res.Outcome = outcome
		if outcome != billing.OutcomeApplied {
			return nil
		}
		return setPlan(p, cfg.Customers[e.Customer], next.Plan, false)
	})
	if errors.Is(err, gatehouse.ErrNotFound) {
		// The tenant or user the customer pays for is not in the policy.
		res.Outcome = billing.OutcomeUnknownCustomer
		return nil, nil
	}
	if err != nil || res.Outcome != billing.OutcomeApplied {
		return nil, err
	}
	res.Subject, res.Plan = next.Subject, next.Plan
	events, err := s.changeEvents(BillingActor, "billing.plan", pl.base+1, pl.changes)
	if err != nil {
		return nil, err
	}
	detail, err := json.Marshal(billingDetail{Event: e.ID, Type: e.Type, Created: e.Created, Subject: next.Subject,
		Plan: next.Plan, Status: next.Status, GraceUntil: next.GraceUntil})
	if err != nil {
		return nil, err
	}
	events = append(events, gatehouse.AuditEvent{Time: now, Actor: BillingActor, Action: "billing.event",
		Target: "billing/" + e.Customer, Detail: detail})
	v, err := s.store.CommitBilling(ctx, gatehouse.BillingCommit{
		Base: pl.base, Changes: pl.changes, Events: events,
		Event: gatehouse.BillingEvent{ID: e.ID, Type: e.Type, Customer: e.Customer, Created: e.Created,
			ProcessedAt: now, Outcome: string(billing.OutcomeApplied)},
		Customer: next,
	})
	if errors.Is(err, gatehouse.ErrDuplicateEvent) {
		// Another instance processed it since we looked.
		res.Outcome = billing.OutcomeDuplicate
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("billing event %s: %w", e.ID, err)
	}
	res.Changes, res.Version = pl.changes, v
	return s.committed(ctx, pl, v, events)
}

// SweepBilling downgrades every past-due customer whose grace period is
// over, each through ApplyBillingEvent with billing.GraceExpired, so that
// instances sweeping at once downgrade each customer once. It returns the
// results of the customers it processed.
func (s *Service) SweepBilling(ctx context.Context, cfg *billing.Config) ([]BillingResult, error) {
	due, err := s.store.ListBillingCustomers(ctx, gatehouse.BillingCustomerFilter{
		GraceEndedBy: s.cfg.Clock.Now(), Limit: audit.MaxListLimit,
	})
	if err != nil {
		return nil, err
	}
	out := make([]BillingResult, 0, len(due))
	for _, cu := range due {
		res, err := s.ApplyBillingEvent(ctx, cfg, billing.GraceExpired(cu))
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// FollowBilling sweeps (SweepBilling) now and then every interval until
// ctx ends. Each processed customer is reported to onResult, a failed
// sweep to onErr; the next tick tries again.
func (s *Service) FollowBilling(ctx context.Context, cfg *billing.Config, every time.Duration, onResult func(BillingResult), onErr func(error)) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		results, err := s.SweepBilling(ctx, cfg)
		for _, r := range results {
			onResult(r)
		}
		if err != nil && ctx.Err() == nil {
			onErr(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// BillingCustomers returns the billing customers that pay for target
// ("tenant:ID" or "user:EMAIL"), sorted by id.
func (s *Service) BillingCustomers(ctx context.Context, target string) ([]gatehouse.BillingCustomer, error) {
	return s.store.ListBillingCustomers(ctx, gatehouse.BillingCustomerFilter{Subject: target, Limit: audit.MaxListLimit})
}
