package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// What every store does before it writes an action record, so the stores
// differ only in their SQL.

// PrepareTransition moves before as gatehouse.ApplyTransition does and
// returns the record to write with its prepared audit event. expired is
// ErrActionExpired when what is to be written is the expiry of a pending
// record instead of t; err means nothing may be written.
func PrepareTransition(before gatehouse.ActionRecord, t gatehouse.Transition) (after gatehouse.ActionRecord, events []gatehouse.AuditEvent, expired, err error) {
	after, err = gatehouse.ApplyTransition(before, t)
	if errors.Is(err, gatehouse.ErrActionExpired) {
		expired, err = err, nil
	}
	if err != nil {
		return before, nil, nil, err
	}
	events, err = actionEvents(&before, after)
	return after, events, expired, err
}

func actionEvents(before *gatehouse.ActionRecord, after gatehouse.ActionRecord) ([]gatehouse.AuditEvent, error) {
	actor, at := after.UpdatedBy, after.UpdatedAt
	if before == nil {
		actor, at = after.Subject, after.CreatedAt
	}
	event, err := gatehouse.ActionEvent(before, after, actor, at)
	if err != nil {
		return nil, err
	}
	return Prepare([]gatehouse.AuditEvent{event}, at)
}

// Lookup is what a store reads for one reservation of a batch before
// deciding any of them, from the records stored before the batch: the
// record stored under the reservation's idempotency key, if any, and the
// usage of its window (only when the reservation has window limits).
type Lookup struct {
	Prev         *gatehouse.ActionRecord
	Count, Total int64
}

// Plan is a batch of reservations decided: the answer to each, and the
// records to insert (Seq assigned) with their sealed-to-be audit events.
type Plan struct {
	Results []gatehouse.ReserveResult
	Insert  []gatehouse.ActionRecord
	Events  []gatehouse.AuditEvent
}

// PrepareReservations checks every reservation of a batch and returns the
// records as stores keep them (UTC, microseconds). One invalid reservation
// is ErrInvalid for the batch: nothing may be stored.
func PrepareReservations(rs []gatehouse.Reservation) ([]gatehouse.ActionRecord, error) {
	recs := make([]gatehouse.ActionRecord, len(rs))
	for i, r := range rs {
		rec := r.Record
		for _, t := range []*time.Time{&rec.CreatedAt, &rec.ExpiresAt, &rec.ConfirmedAt, &rec.ExecutedAt, &rec.UpdatedAt} {
			if !t.IsZero() {
				*t = t.UTC().Truncate(time.Microsecond)
			}
		}
		if err := rec.Validate(); err != nil {
			return nil, fmt.Errorf("reserve action: %w", err)
		}
		recs[i] = rec
	}
	return recs, nil
}

// PlanReservations decides a batch in order, as if each reservation were
// stored in a transaction of its own after the ones before it: look[i] is
// what the store read for rs[i] (recs[i] prepared), and the records of the
// batch that are stored count towards the windows and idempotency keys of
// those after them. nextSeq is the Seq of the first record stored. The
// store must hold its write lock from the lookups until it has inserted
// Plan.Insert, so that nothing else is stored in between.
func PlanReservations(rs []gatehouse.Reservation, recs []gatehouse.ActionRecord, look []Lookup, nextSeq int64) (Plan, error) {
	type subjectKey struct{ subject, key string }
	p := Plan{Results: make([]gatehouse.ReserveResult, len(rs))}
	keys := map[subjectKey]int{}
	for i, r := range rs {
		rec, res := recs[i], &p.Results[i]
		k := subjectKey{rec.Subject, rec.IdempotencyKey}
		if prev := look[i].Prev; rec.IdempotencyKey != "" && prev != nil {
			res.Record, res.Replayed = *prev, true
			res.Record.Status = prev.StatusAt(rec.CreatedAt)
			continue
		}
		if j, ok := keys[k]; ok && rec.IdempotencyKey != "" {
			res.Record, res.Replayed = p.Insert[j], true
			res.Record.Status = p.Insert[j].StatusAt(rec.CreatedAt)
			continue
		}
		if r.Window > 0 && (r.MaxCount > 0 || r.MaxTotalAmount > 0) {
			res.Count, res.Total = look[i].Count, look[i].Total
			for _, earlier := range p.Insert {
				if inWindow(earlier, rec, r.Window) {
					res.Count++
					res.Total += earlier.Amount
				}
			}
			if res.Exceeded = r.Exceeded(res.Count, res.Total); res.Exceeded != "" {
				continue
			}
		}
		rec.Seq = nextSeq
		nextSeq++
		events, err := actionEvents(nil, rec)
		if err != nil {
			return Plan{}, err
		}
		if rec.IdempotencyKey != "" {
			keys[k] = len(p.Insert)
		}
		p.Insert = append(p.Insert, rec)
		p.Events = append(p.Events, events...)
		res.Record = rec
	}
	return p, nil
}

// inWindow reports whether earlier counts in the window of rec, as the
// stores' window queries decide: the same tenant and action, created less
// than window before rec, and holding capacity at rec's creation.
func inWindow(earlier, rec gatehouse.ActionRecord, window time.Duration) bool {
	return earlier.Tenant == rec.Tenant && earlier.Action == rec.Action &&
		earlier.CreatedAt.After(rec.CreatedAt.Add(-window)) && earlier.StatusAt(rec.CreatedAt).Holds()
}

// WindowQuery is the window usage a batch needs for the reservations that
// share a tenant, action and window: two reads serve them all, however many
// there are, since their windows differ only by the spread of their
// creation times. Base is the usage at Last, the latest creation time;
// Edge are the rows that may count for one reservation but not another:
// those created within (First-Window, Last-Window], and the pending ones
// created after Last-Window that expire within (First, Last].
type WindowQuery struct {
	Tenant, Action string
	Window         time.Duration
	First, Last    time.Time
	items          []int
}

// WindowQueries groups the windowed reservations of a batch.
func WindowQueries(rs []gatehouse.Reservation, recs []gatehouse.ActionRecord) []*WindowQuery {
	type group struct {
		tenant, action string
		window         time.Duration
	}
	var (
		out   []*WindowQuery
		index = map[group]*WindowQuery{}
	)
	for i, r := range rs {
		if r.Window <= 0 || r.MaxCount <= 0 && r.MaxTotalAmount <= 0 {
			continue
		}
		rec := recs[i]
		g := group{rec.Tenant, rec.Action, r.Window}
		q := index[g]
		if q == nil {
			q = &WindowQuery{Tenant: rec.Tenant, Action: rec.Action, Window: r.Window, First: rec.CreatedAt, Last: rec.CreatedAt}
			index[g] = q
			out = append(out, q)
		}
		if rec.CreatedAt.Before(q.First) {
			q.First = rec.CreatedAt
		}
		if rec.CreatedAt.After(q.Last) {
			q.Last = rec.CreatedAt
		}
		q.items = append(q.items, i)
	}
	return out
}

// Resolve sets the window usage of q's reservations in look from what the
// store read: count and total at Last, and the Edge rows (creation time,
// expiry, status and amount suffice).
func (q *WindowQuery) Resolve(look []Lookup, recs []gatehouse.ActionRecord, count, total int64, edge []gatehouse.ActionRecord) {
	last := gatehouse.ActionRecord{Tenant: q.Tenant, Action: q.Action, CreatedAt: q.Last}
	for _, i := range q.items {
		look[i].Count, look[i].Total = count, total
		for _, row := range edge {
			row.Tenant, row.Action = q.Tenant, q.Action
			if inWindow(row, recs[i], q.Window) {
				look[i].Count++
				look[i].Total += row.Amount
			}
			if inWindow(row, last, q.Window) {
				look[i].Count--
				look[i].Total -= row.Amount
			}
		}
	}
}
