package memstore

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// ReserveActions stores the records of rs that their idempotency keys and
// window limits allow, with their audit events, in one transaction: the
// lookups of the whole batch come first, then audit.PlanReservations
// decides each reservation in order, as the databases do.
func (s *Store) ReserveActions(ctx context.Context, rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	recs, err := audit.PrepareReservations(rs)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	var plan audit.Plan
	err = s.write(ctx, "reserve actions", func(st *state) error {
		look := make([]audit.Lookup, len(rs))
		for i, r := range rs {
			rec := recs[i]
			if rec.IdempotencyKey != "" {
				if j, ok := st.byKey[subjectKey{rec.Subject, rec.IdempotencyKey}]; ok {
					prev := storedAction(st.actions[j])
					look[i].Prev = &prev
				}
			}
			if r.Window > 0 && (r.MaxCount > 0 || r.MaxTotalAmount > 0) {
				look[i].Count, look[i].Total = st.usage(rec.Tenant, rec.Action, r.Window, rec.CreatedAt)
			}
		}
		next := int64(1)
		if n := len(st.actions); n > 0 {
			next = st.actions[n-1].Seq + 1
		}
		if plan, err = audit.PlanReservations(rs, recs, look, next); err != nil {
			return err
		}
		for _, rec := range plan.Insert {
			st.insertAction(rec)
		}
		st.appendEvents(plan.Events)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return plan.Results, nil
}

// usage counts, and sums the amounts of, the records of tenant and action
// created after at-window whose status holds capacity at at.
func (st *state) usage(tenant, action string, window time.Duration, at time.Time) (count, total int64) {
	start := at.Add(-window)
	for _, r := range st.actions {
		if r.Tenant == tenant && r.Action == action && r.CreatedAt.After(start) && r.StatusAt(at).Holds() {
			count++
			total += r.Amount
		}
	}
	return count, total
}

// insertAction stores a copy of r and indexes it.
func (st *state) insertAction(r gatehouse.ActionRecord) {
	st.actions = append(st.actions, storedAction(r))
	st.byID[r.ID] = len(st.actions) - 1
	if r.IdempotencyKey != "" {
		st.byKey[subjectKey{r.Subject, r.IdempotencyKey}] = len(st.actions) - 1
	}
}

// storedAction is a copy of r as a database keeps it.
func storedAction(r gatehouse.ActionRecord) gatehouse.ActionRecord {
	r.Args = raw(r.Args)
	r.CreatedAt, r.ExpiresAt, r.ConfirmedAt = stamp(r.CreatedAt), stamp(r.ExpiresAt), stamp(r.ConfirmedAt)
	r.ExecutedAt, r.UpdatedAt = stamp(r.ExecutedAt), stamp(r.UpdatedAt)
	return r
}

// ActionUsage reads the window usage a reservation created at now would
// see.
func (s *Store) ActionUsage(ctx context.Context, tenant, action string, window time.Duration, now time.Time) (count, total int64, err error) {
	if window <= 0 {
		return 0, 0, gatehouse.Invalidf("action usage: window %s is not positive", window)
	}
	now = now.Truncate(time.Microsecond)
	err = s.read(ctx, "action usage", func(st *state) error {
		count, total = st.usage(tenant, action, window, now)
		return nil
	})
	return count, total, err
}

// TransitionAction moves the record with t.ID as gatehouse.ApplyTransition
// does. A pending record whose expiry has passed is recorded as expired,
// by "system" at its expiry time, and ErrActionExpired returned.
func (s *Store) TransitionAction(ctx context.Context, t gatehouse.Transition) (gatehouse.ActionRecord, error) {
	var (
		out     gatehouse.ActionRecord
		expired error
	)
	err := s.write(ctx, "transition action", func(st *state) error {
		i, ok := st.byID[t.ID]
		if !ok {
			return gatehouse.NotFoundf("action %q", t.ID)
		}
		after, events, expiry, err := audit.PrepareTransition(storedAction(st.actions[i]), t)
		if err != nil {
			return err
		}
		expired = expiry
		st.actions[i] = storedAction(after)
		st.appendEvents(events)
		out = storedAction(after)
		return nil
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	return out, expired
}

// GetAction returns the record with id, its status as of now.
func (s *Store) GetAction(ctx context.Context, id string, now time.Time) (gatehouse.ActionRecord, error) {
	var rec gatehouse.ActionRecord
	err := s.read(ctx, "get action", func(st *state) error {
		i, ok := st.byID[id]
		if !ok {
			return gatehouse.NotFoundf("action %q", id)
		}
		rec = storedAction(st.actions[i])
		return nil
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	rec.Status = rec.StatusAt(now)
	return rec, nil
}

// FindAction returns the record subject stored under key, its status as of
// now.
func (s *Store) FindAction(ctx context.Context, subject, key string, now time.Time) (gatehouse.ActionRecord, error) {
	var rec gatehouse.ActionRecord
	err := s.read(ctx, "find action", func(st *state) error {
		i, ok := st.byKey[subjectKey{subject, key}]
		if !ok {
			return gatehouse.NotFoundf("action of %s with idempotency key %q", subject, key)
		}
		rec = storedAction(st.actions[i])
		return nil
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	rec.Status = rec.StatusAt(now)
	return rec, nil
}

// ListActions returns the records matching f in Seq order, statuses as of
// f.Now.
func (s *Store) ListActions(ctx context.Context, f gatehouse.ActionFilter) ([]gatehouse.ActionRecord, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	var out []gatehouse.ActionRecord
	err = s.read(ctx, "list actions", func(st *state) error {
		for _, r := range st.actions {
			if len(out) == limit {
				break
			}
			status := r.StatusAt(f.Now)
			switch {
			case r.Seq <= f.AfterSeq,
				f.Tenant != "" && r.Tenant != f.Tenant,
				f.Action != "" && r.Action != f.Action,
				f.Subject != "" && r.Subject != f.Subject,
				f.Status != "" && status != f.Status,
				!f.Since.IsZero() && r.CreatedAt.Before(f.Since),
				!f.Until.IsZero() && !r.CreatedAt.Before(f.Until):
				continue
			}
			rec := storedAction(r)
			rec.Status = status
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
