package memstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// CommitBilling records c.Event, stores c.Customer at its next version and
// commits the policy change, all in one transaction.
func (s *Store) CommitBilling(ctx context.Context, c gatehouse.BillingCommit) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("memstore: commit billing: %w", err)
	}
	sealed, err := audit.PrepareCommit(c.Changes, c.Events, s.clock.Now())
	if err != nil {
		return 0, err
	}
	e, cu := c.Event, c.Customer
	var version int64
	err = s.write(ctx, "commit billing", func(st *state) error {
		if _, ok := st.billingEvents[e.ID]; ok {
			return fmt.Errorf("memstore: commit billing: event %q: %w", e.ID, gatehouse.ErrDuplicateEvent)
		}
		if stored := st.customers[cu.ID].Version; stored != cu.Version {
			return fmt.Errorf("memstore: commit billing: customer %q: read version %d, stored version %d: %w",
				cu.ID, cu.Version, stored, gatehouse.ErrConflict)
		}
		if version, err = st.commitPolicy(c.Base, c.Changes, sealed); err != nil {
			return err
		}
		st.billingEvents[e.ID] = storedBillingEvent(e)
		cu.Version++
		st.customers[cu.ID] = storedCustomer(cu)
		return nil
	})
	if err != nil {
		return 0, err
	}
	copy(c.Events, sealed)
	return version, nil
}

func storedBillingEvent(e gatehouse.BillingEvent) gatehouse.BillingEvent {
	e.Created, e.ProcessedAt = stamp(e.Created), stamp(e.ProcessedAt)
	return e
}

func storedCustomer(cu gatehouse.BillingCustomer) gatehouse.BillingCustomer {
	cu.GraceUntil, cu.LastCreated, cu.UpdatedAt = stamp(cu.GraceUntil), stamp(cu.LastCreated), stamp(cu.UpdatedAt)
	return cu
}

// BillingEvent returns the processed event with id.
func (s *Store) BillingEvent(ctx context.Context, id string) (gatehouse.BillingEvent, error) {
	var e gatehouse.BillingEvent
	err := s.read(ctx, "billing event", func(st *state) error {
		var ok bool
		if e, ok = st.billingEvents[id]; !ok {
			return gatehouse.NotFoundf("billing event %q", id)
		}
		return nil
	})
	return e, err
}

// BillingCustomer returns the customer with id.
func (s *Store) BillingCustomer(ctx context.Context, id string) (gatehouse.BillingCustomer, error) {
	var cu gatehouse.BillingCustomer
	err := s.read(ctx, "billing customer", func(st *state) error {
		var ok bool
		if cu, ok = st.customers[id]; !ok {
			return gatehouse.NotFoundf("billing customer %q", id)
		}
		return nil
	})
	return cu, err
}

// ListBillingCustomers returns the customers matching f, sorted by id.
func (s *Store) ListBillingCustomers(ctx context.Context, f gatehouse.BillingCustomerFilter) ([]gatehouse.BillingCustomer, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var out []gatehouse.BillingCustomer
	err = s.read(ctx, "list billing customers", func(st *state) error {
		for _, id := range slices.Sorted(maps.Keys(st.customers)) {
			cu := st.customers[id]
			switch {
			case len(out) == limit:
				return nil
			case f.Subject != "" && cu.Subject != f.Subject,
				!f.GraceEndedBy.IsZero() && (cu.Status != gatehouse.BillingPastDue || cu.GraceUntil.After(f.GraceEndedBy)):
				continue
			}
			out = append(out, cu)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateAPIKey stores k and appends event in one transaction.
func (s *Store) CreateAPIKey(ctx context.Context, k gatehouse.APIKey, event gatehouse.AuditEvent) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("memstore: create api key: %w", err)
	}
	events, err := audit.Prepare([]gatehouse.AuditEvent{event}, k.CreatedAt)
	if err != nil {
		return fmt.Errorf("memstore: create api key: %w", err)
	}
	return s.write(ctx, "create api key", func(st *state) error {
		if _, ok := st.apiKeys[k.ID]; ok {
			return fmt.Errorf("memstore: create api key %q: %w", k.ID, gatehouse.ErrConflict)
		}
		st.apiKeys[k.ID] = storedAPIKey(k)
		st.appendEvents(events)
		return nil
	})
}

// storedAPIKey is a copy of k as a database keeps it.
func storedAPIKey(k gatehouse.APIKey) gatehouse.APIKey {
	k.Scopes = slices.Clone(k.Scopes)
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = stamp(k.CreatedAt), stamp(k.ExpiresAt), stamp(k.RevokedAt)
	return k
}

// APIKey returns the key with id.
func (s *Store) APIKey(ctx context.Context, id string) (gatehouse.APIKey, error) {
	var k gatehouse.APIKey
	err := s.read(ctx, "api key", func(st *state) error {
		stored, ok := st.apiKeys[id]
		if !ok {
			return gatehouse.NotFoundf("api key %q", id)
		}
		k = storedAPIKey(stored)
		return nil
	})
	return k, err
}

// ListAPIKeys returns every key, sorted by id.
func (s *Store) ListAPIKeys(ctx context.Context) ([]gatehouse.APIKey, error) {
	var out []gatehouse.APIKey
	err := s.read(ctx, "list api keys", func(st *state) error {
		for _, id := range slices.Sorted(maps.Keys(st.apiKeys)) {
			out = append(out, storedAPIKey(st.apiKeys[id]))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokeAPIKey marks the key revoked at at, appending event, unless it is
// revoked already.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time, event gatehouse.AuditEvent) error {
	events, err := audit.Prepare([]gatehouse.AuditEvent{event}, at)
	if err != nil {
		return fmt.Errorf("memstore: revoke api key: %w", err)
	}
	return s.write(ctx, "revoke api key", func(st *state) error {
		k, ok := st.apiKeys[id]
		if !ok {
			return gatehouse.NotFoundf("api key %q", id)
		}
		if !k.RevokedAt.IsZero() {
			return nil
		}
		k.RevokedAt = stamp(at)
		st.apiKeys[id] = k
		st.appendEvents(events)
		return nil
	})
}
