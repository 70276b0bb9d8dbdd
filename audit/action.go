package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
)

// What every store does before it writes an action record, so the stores
// differ only in their SQL.

// PrepareReservation returns r's record as stores keep it (UTC,
// microseconds) after checking it, with the prepared audit event of its
// creation; ErrInvalid for a record no store may write.
func PrepareReservation(r gatehouse.Reservation) (gatehouse.ActionRecord, []gatehouse.AuditEvent, error) {
	rec := r.Record
	for _, t := range []*time.Time{&rec.CreatedAt, &rec.ExpiresAt, &rec.ConfirmedAt, &rec.ExecutedAt, &rec.UpdatedAt} {
		if !t.IsZero() {
			*t = t.UTC().Truncate(time.Microsecond)
		}
	}
	if err := rec.Validate(); err != nil {
		return rec, nil, fmt.Errorf("reserve action: %w", err)
	}
	events, err := actionEvents(nil, rec)
	return rec, events, err
}

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
