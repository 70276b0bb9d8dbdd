package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Action records live in action_records (migration 0002). Every write runs
// in the single IMMEDIATE write transaction, so a reservation's window
// count and its insert are atomic across connections and processes.

const actionColumns = `seq, id, tenant, action, tool, subject, on_behalf_of, idempotency_key,
	fingerprint, args, amount, currency, percentage, requires_confirmation, reason, policy_version,
	status, created_at, expires_at, confirmed_at, confirmed_by, executed_at, error_message,
	updated_at, updated_by`

// ReserveActions stores the records of rs that their idempotency keys
// and window limits allow, in one write transaction with their audit
// events: the lookups of the whole batch come first, then
// audit.PlanReservations decides each reservation in order.
func (db *DB) ReserveActions(ctx context.Context, rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	recs, err := audit.PrepareReservations(rs)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	var plan audit.Plan
	err = db.writeTx(ctx, "reserve actions", func(tx *sql.Tx) error {
		byKey, err := tx.PrepareContext(ctx, `SELECT `+actionColumns+` FROM action_records WHERE subject = ? AND idempotency_key = ?`)
		if err != nil {
			return err
		}
		defer byKey.Close()
		look := make([]audit.Lookup, len(rs))
		for i := range rs {
			rec := &recs[i]
			if rec.IdempotencyKey == "" {
				continue
			}
			prev, err := scanAction(byKey.QueryRowContext(ctx, rec.Subject, rec.IdempotencyKey))
			switch {
			case err == nil:
				look[i].Prev = &prev
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		for _, q := range audit.WindowQueries(rs, recs) {
			if err := windowUsage(ctx, tx, q, look, recs); err != nil {
				return err
			}
		}
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM action_records`).Scan(&next); err != nil {
			return err
		}
		if plan, err = audit.PlanReservations(rs, recs, look, next); err != nil {
			return err
		}
		if len(plan.Insert) == 0 {
			return nil
		}
		insert, err := tx.PrepareContext(ctx, `INSERT INTO action_records (`+actionColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer insert.Close()
		for i := range plan.Insert {
			if _, err := insert.ExecContext(ctx, actionValues(&plan.Insert[i])...); err != nil {
				return err
			}
		}
		return appendEvents(ctx, tx, plan.Events)
	})
	if err != nil {
		return nil, err
	}
	return plan.Results, nil
}

// windowStart is the start of the window that ends at at, in microseconds:
// a record created at a later microsecond is in the window. It rounds
// down, so that a window with a fraction of a microsecond counts what
// audit's in-batch count and the Postgres store count.
func windowStart(at time.Time, window time.Duration) int64 {
	return at.Add(-window).UnixMicro()
}

// usageQuery counts and sums the records of tenant ?1 and action ?2
// created after ?3 that hold capacity at ?4, from the covering index
// action_records_window alone: the usage a reservation created at ?4 sees.
const usageQuery = `SELECT count(*), coalesce(sum(amount), 0) FROM action_records
	WHERE tenant = ?1 AND action = ?2 AND created_at > ?3
	AND (status IN ('confirmed', 'executed') OR (status = 'pending' AND expires_at > ?4))`

// windowUsage reads the usage of q's window for look.
func windowUsage(ctx context.Context, tx *sql.Tx, q *audit.WindowQuery, look []audit.Lookup, recs []gatehouse.ActionRecord) error {
	first, last := q.First.UnixMicro(), q.Last.UnixMicro()
	var count, total int64
	if err := tx.QueryRowContext(ctx, usageQuery,
		q.Tenant, q.Action, windowStart(q.Last, q.Window), last).Scan(&count, &total); err != nil {
		return err
	}
	var edge []gatehouse.ActionRecord
	if first != last {
		rows, err := tx.QueryContext(ctx, `SELECT created_at, expires_at, status, amount FROM action_records
			WHERE tenant = ?1 AND action = ?2 AND created_at > ?3 AND created_at <= ?4
			UNION ALL
			SELECT created_at, expires_at, status, amount FROM action_records INDEXED BY action_records_expiry
			WHERE tenant = ?1 AND action = ?2 AND status = 'pending' AND expires_at > ?5 AND expires_at <= ?6 AND created_at > ?4`,
			q.Tenant, q.Action, windowStart(q.First, q.Window), windowStart(q.Last, q.Window), first, last)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r                gatehouse.ActionRecord
				created, expires int64
				status           string
			)
			if err := rows.Scan(&created, &expires, &status, &r.Amount); err != nil {
				return err
			}
			r.CreatedAt, r.ExpiresAt, r.Status = fromMicros(created), fromMicros(expires), gatehouse.ActionStatus(status)
			edge = append(edge, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	q.Resolve(look, recs, count, total, edge)
	return nil
}

// ActionUsage reads the window usage a reservation created at now would
// see, with the statement ReserveActions reads it with, on a read
// connection: it never waits for a writer.
func (db *DB) ActionUsage(ctx context.Context, tenant, action string, window time.Duration, now time.Time) (count, total int64, err error) {
	if window <= 0 {
		return 0, 0, gatehouse.Invalidf("action usage: window %s is not positive", window)
	}
	now = now.Truncate(time.Microsecond)
	err = db.read.QueryRowContext(ctx, usageQuery, tenant, action, windowStart(now, window), now.UnixMicro()).Scan(&count, &total)
	if err != nil {
		return 0, 0, db.wrap("action usage", ctxErr(ctx, err))
	}
	return count, total, nil
}

// TransitionAction moves the record with t.ID as gatehouse.ApplyTransition
// does. A pending record whose expiry has passed is recorded as expired,
// by "system" at its expiry time, and ErrActionExpired returned.
func (db *DB) TransitionAction(ctx context.Context, t gatehouse.Transition) (gatehouse.ActionRecord, error) {
	var (
		out     gatehouse.ActionRecord
		expired error
	)
	err := db.writeTx(ctx, "transition action", func(tx *sql.Tx) error {
		expired = nil
		before, err := scanAction(tx.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM action_records WHERE id = ?`, t.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return gatehouse.NotFoundf("action %q", t.ID)
		}
		if err != nil {
			return err
		}
		after, events, expiry, err := audit.PrepareTransition(before, t)
		if err != nil {
			return err
		}
		expired = expiry
		if _, err := tx.ExecContext(ctx, `UPDATE action_records SET status = ?, confirmed_at = ?, confirmed_by = ?,
			executed_at = ?, error_message = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			string(after.Status), micros(after.ConfirmedAt), after.ConfirmedBy, micros(after.ExecutedAt),
			after.ErrorMessage, micros(after.UpdatedAt), after.UpdatedBy, after.ID); err != nil {
			return err
		}
		out = after
		return appendEvents(ctx, tx, events)
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	return out, expired
}

// GetAction returns the record with id, its status as of now.
func (db *DB) GetAction(ctx context.Context, id string, now time.Time) (gatehouse.ActionRecord, error) {
	rec, err := scanAction(db.read.QueryRowContext(ctx, `SELECT `+actionColumns+` FROM action_records WHERE id = ?`, id))
	return db.found(ctx, "get action", rec, err, now, "action %q", id)
}

// FindAction returns the record subject stored under key, its status as of now.
func (db *DB) FindAction(ctx context.Context, subject, key string, now time.Time) (gatehouse.ActionRecord, error) {
	rec, err := scanAction(db.read.QueryRowContext(ctx, `SELECT `+actionColumns+
		` FROM action_records WHERE subject = ? AND idempotency_key = ?`, subject, key))
	return db.found(ctx, "find action", rec, err, now, "action of %s with idempotency key %q", subject, key)
}

func (db *DB) found(ctx context.Context, op string, rec gatehouse.ActionRecord, err error, now time.Time, format string, args ...any) (gatehouse.ActionRecord, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.ActionRecord{}, gatehouse.NotFoundf(format, args...)
	}
	if err != nil {
		return gatehouse.ActionRecord{}, db.wrap(op, ctxErr(ctx, err))
	}
	rec.Status = rec.StatusAt(now)
	return rec, nil
}

// ListActions returns the records matching f in Seq order.
func (db *DB) ListActions(ctx context.Context, f gatehouse.ActionFilter) ([]gatehouse.ActionRecord, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	now := f.Now.UnixMicro()
	conds := []string{"seq > ?"}
	args := []any{f.AfterSeq}
	add := func(cond string, vals ...any) {
		conds = append(conds, cond)
		args = append(args, vals...)
	}
	for _, c := range []struct{ col, val string }{{"tenant", f.Tenant}, {"action", f.Action}, {"subject", f.Subject}} {
		if c.val != "" {
			add(c.col+" = ?", c.val)
		}
	}
	switch f.Status {
	case "":
	case gatehouse.ActionPending:
		add("status = 'pending' AND expires_at > ?", now)
	case gatehouse.ActionExpired:
		add("(status = 'expired' OR (status = 'pending' AND expires_at <= ?))", now)
	default:
		add("status = ?", string(f.Status))
	}
	if !f.Since.IsZero() {
		add("created_at >= ?", ceilMicro(f.Since))
	}
	if !f.Until.IsZero() {
		add("created_at < ?", ceilMicro(f.Until))
	}
	args = append(args, limit)
	rows, err := db.read.QueryContext(ctx, `SELECT `+actionColumns+` FROM action_records WHERE `+
		strings.Join(conds, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, db.wrap("list actions", ctxErr(ctx, err))
	}
	defer rows.Close()
	var out []gatehouse.ActionRecord
	for rows.Next() {
		rec, err := scanAction(rows)
		if err != nil {
			return nil, db.wrap("list actions", ctxErr(ctx, err))
		}
		rec.Status = rec.StatusAt(f.Now)
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list actions", ctxErr(ctx, err))
	}
	return out, nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

func actionValues(r *gatehouse.ActionRecord) []any {
	var key any
	if r.IdempotencyKey != "" {
		key = r.IdempotencyKey
	}
	return []any{r.Seq, r.ID, r.Tenant, r.Action, r.Tool, r.Subject, r.OnBehalfOf, key,
		r.Fingerprint, rawText(r.Args), r.Amount, r.Currency, r.Percentage, r.RequiresConfirmation,
		string(r.Reason), r.PolicyVersion, string(r.Status), micros(r.CreatedAt), micros(r.ExpiresAt),
		micros(r.ConfirmedAt), r.ConfirmedBy, micros(r.ExecutedAt), r.ErrorMessage,
		micros(r.UpdatedAt), r.UpdatedBy}
}

type scanner interface{ Scan(dest ...any) error }

func scanAction(row scanner) (gatehouse.ActionRecord, error) {
	var (
		r                                        gatehouse.ActionRecord
		key                                      sql.NullString
		args                                     []byte
		reason, status                           string
		created, expires, confirmed, executed, u int64
	)
	err := row.Scan(&r.Seq, &r.ID, &r.Tenant, &r.Action, &r.Tool, &r.Subject, &r.OnBehalfOf, &key,
		&r.Fingerprint, &args, &r.Amount, &r.Currency, &r.Percentage, &r.RequiresConfirmation,
		&reason, &r.PolicyVersion, &status, &created, &expires, &confirmed, &r.ConfirmedBy,
		&executed, &r.ErrorMessage, &u, &r.UpdatedBy)
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	r.IdempotencyKey, r.Args = key.String, args
	r.Reason, r.Status = gatehouse.Reason(reason), gatehouse.ActionStatus(status)
	r.CreatedAt, r.ExpiresAt, r.ConfirmedAt = fromMicros(created), fromMicros(expires), fromMicros(confirmed)
	r.ExecutedAt, r.UpdatedAt = fromMicros(executed), fromMicros(u)
	return r, nil
}
