package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Action records live in action_records (migration 0002). Every write locks
// the audit head's meta rows first, as every audited write does, so
// reservations from any number of instances take turns: a window count and
// the insert it allows are atomic, and seq follows commit order.

const actionColumns = `seq, id, tenant, action, tool, subject, on_behalf_of, idempotency_key,
	fingerprint, args, amount, currency, percentage, requires_confirmation, reason, policy_version,
	status, created_at, expires_at, confirmed_at, confirmed_by, executed_at, error_message,
	updated_at, updated_by`

var auditHeadKeys = []string{keyHeadSeq, keyHeadHash}

// ReserveActions stores the records of rs that their idempotency keys
// and window limits allow, in one transaction holding the audit head, in
// the same round trips however many there are: the lookups of the whole batch,
// audit.PlanReservations deciding each reservation in order, then the
// inserts with their audit events.
func (db *DB) ReserveActions(ctx context.Context, rs []gatehouse.Reservation) ([]gatehouse.ReserveResult, error) {
	recs, err := audit.PrepareReservations(rs)
	if err != nil || len(rs) == 0 {
		return nil, err
	}
	var plan audit.Plan
	err = db.writeTx(ctx, "reserve actions", auditHeadKeys, func(tx pgx.Tx, meta metaValues) error {
		look := make([]audit.Lookup, len(rs))
		var lookups pgx.Batch
		for i := range rs {
			rec := &recs[i]
			if rec.IdempotencyKey != "" {
				lookups.Queue(`SELECT `+actionColumns+` FROM action_records WHERE subject = $1 AND idempotency_key = $2`,
					rec.Subject, rec.IdempotencyKey).QueryRow(func(row pgx.Row) error {
					prev, err := scanAction(row)
					if err == nil {
						look[i].Prev = &prev
					}
					if errors.Is(err, pgx.ErrNoRows) {
						return nil
					}
					return err
				})
			}
		}
		for _, q := range audit.WindowQueries(rs, recs) {
			queueWindowUsage(&lookups, q, look, recs)
		}
		var next int64
		lookups.Queue(`SELECT coalesce(max(seq), 0) + 1 FROM action_records`).QueryRow(func(row pgx.Row) error {
			return row.Scan(&next)
		})
		if err := tx.SendBatch(ctx, &lookups).Close(); err != nil {
			return err
		}
		if plan, err = audit.PlanReservations(rs, recs, look, next); err != nil {
			return err
		}
		var batch pgx.Batch
		for i := range plan.Insert {
			batch.Queue(`INSERT INTO action_records (`+actionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
				$10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`, actionValues(&plan.Insert[i])...)
		}
		if err := queueEvents(&batch, meta, plan.Events); err != nil {
			return err
		}
		return sendBatch(ctx, tx, &batch)
	})
	if err != nil {
		return nil, err
	}
	return plan.Results, nil
}

// usageQuery counts and sums the records of tenant $1 and action $2
// created after $3 that hold capacity at $4, from the covering index
// action_records_window alone: the usage a reservation created at $4 sees.
// pgx sends $3 rounded down to the microsecond, which keeps the bound exact
// for the microseconds that created_at holds.
const usageQuery = `SELECT count(*), coalesce(sum(amount), 0)::bigint FROM action_records
	WHERE tenant = $1 AND action = $2 AND created_at > $3
	AND (status IN ('confirmed', 'executed') OR (status = 'pending' AND expires_at > $4))`

// queueWindowUsage queues the reads of q's window usage for look.
func queueWindowUsage(b *pgx.Batch, q *audit.WindowQuery, look []audit.Lookup, recs []gatehouse.ActionRecord) {
	var count, total int64
	b.Queue(usageQuery, q.Tenant, q.Action, q.Last.Add(-q.Window), q.Last).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&count, &total); err != nil {
			return err
		}
		if q.First.Equal(q.Last) {
			q.Resolve(look, recs, count, total, nil)
		}
		return nil
	})
	if q.First.Equal(q.Last) {
		return
	}
	b.Queue(`SELECT created_at, expires_at, status, amount FROM action_records
		WHERE tenant = $1 AND action = $2 AND created_at > $3 AND created_at <= $4
		UNION ALL
		SELECT created_at, expires_at, status, amount FROM action_records
		WHERE tenant = $1 AND action = $2 AND status = 'pending' AND expires_at > $5 AND expires_at <= $6 AND created_at > $4`,
		q.Tenant, q.Action, q.First.Add(-q.Window), q.Last.Add(-q.Window), q.First, q.Last,
	).Query(func(rows pgx.Rows) error {
		var edge []gatehouse.ActionRecord
		for rows.Next() {
			var (
				r       gatehouse.ActionRecord
				expires *time.Time
				status  string
			)
			if err := rows.Scan(&r.CreatedAt, &expires, &status, &r.Amount); err != nil {
				return err
			}
			if expires != nil {
				r.ExpiresAt = expires.UTC()
			}
			r.CreatedAt, r.Status = r.CreatedAt.UTC(), gatehouse.ActionStatus(status)
			edge = append(edge, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		q.Resolve(look, recs, count, total, edge)
		return nil
	})
}

// ActionUsage reads the window usage a reservation created at now would
// see, with the statement ReserveActions reads it with, in a read-only
// transaction: it takes no lock and waits for no writer.
func (db *DB) ActionUsage(ctx context.Context, tenant, action string, window time.Duration, now time.Time) (count, total int64, err error) {
	if window <= 0 {
		return 0, 0, gatehouse.Invalidf("action usage: window %s is not positive", window)
	}
	now = now.UTC().Truncate(time.Microsecond)
	err = db.readTx(ctx, "action usage", func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, usageQuery, tenant, action, now.Add(-window), now).Scan(&count, &total)
	})
	if err != nil {
		return 0, 0, err
	}
	return count, total, nil
}

// TransitionAction moves the record with t.ID as gatehouse.ApplyTransition
// does, recording the expiry of a pending record whose time has passed.
func (db *DB) TransitionAction(ctx context.Context, t gatehouse.Transition) (gatehouse.ActionRecord, error) {
	var (
		out     gatehouse.ActionRecord
		expired error
	)
	err := db.writeTx(ctx, "transition action", auditHeadKeys, func(tx pgx.Tx, meta metaValues) error {
		expired = nil
		before, err := scanAction(tx.QueryRow(ctx, `SELECT `+actionColumns+` FROM action_records WHERE id = $1 FOR UPDATE`, t.ID))
		if errors.Is(err, pgx.ErrNoRows) {
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
		var batch pgx.Batch
		batch.Queue(`UPDATE action_records SET status = $1, confirmed_at = $2, confirmed_by = $3,
			executed_at = $4, error_message = $5, updated_at = $6, updated_by = $7 WHERE id = $8`,
			string(after.Status), optTime(after.ConfirmedAt), after.ConfirmedBy, optTime(after.ExecutedAt),
			after.ErrorMessage, after.UpdatedAt, after.UpdatedBy, after.ID)
		if err := queueEvents(&batch, meta, events); err != nil {
			return err
		}
		out = after
		return sendBatch(ctx, tx, &batch)
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	return out, expired
}

// GetAction returns the record with id, its status as of now.
func (db *DB) GetAction(ctx context.Context, id string, now time.Time) (gatehouse.ActionRecord, error) {
	return db.getAction(ctx, "get action", now, `WHERE id = $1`, []any{id}, "action %q", id)
}

// FindAction returns the record subject stored under key, its status as of now.
func (db *DB) FindAction(ctx context.Context, subject, key string, now time.Time) (gatehouse.ActionRecord, error) {
	return db.getAction(ctx, "find action", now, `WHERE subject = $1 AND idempotency_key = $2`, []any{subject, key},
		"action of %s with idempotency key %q", subject, key)
}

func (db *DB) getAction(ctx context.Context, op string, now time.Time, where string, args []any, format string, fargs ...any) (gatehouse.ActionRecord, error) {
	var rec gatehouse.ActionRecord
	err := db.readTx(ctx, op, func(tx pgx.Tx) error {
		var err error
		rec, err = scanAction(tx.QueryRow(ctx, `SELECT `+actionColumns+` FROM action_records `+where, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf(format, fargs...)
		}
		return err
	})
	if err != nil {
		return gatehouse.ActionRecord{}, err
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
	args := []any{f.AfterSeq}
	conds := []string{"seq > $1"}
	where := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	for _, c := range []struct{ col, val string }{{"tenant", f.Tenant}, {"action", f.Action}, {"subject", f.Subject}} {
		if c.val != "" {
			where(c.col+" = $?", c.val)
		}
	}
	switch f.Status {
	case "":
	case gatehouse.ActionPending:
		where("status = 'pending' AND expires_at > $?", f.Now)
	case gatehouse.ActionExpired:
		where("(status = 'expired' OR (status = 'pending' AND expires_at <= $?))", f.Now)
	default:
		where("status = $?", string(f.Status))
	}
	if !f.Since.IsZero() {
		where("created_at >= $?", ceilMicro(f.Since))
	}
	if !f.Until.IsZero() {
		where("created_at < $?", ceilMicro(f.Until))
	}
	args = append(args, limit)
	query := `SELECT ` + actionColumns + ` FROM action_records WHERE ` + strings.Join(conds, " AND ") +
		` ORDER BY seq LIMIT $` + strconv.Itoa(len(args))
	var out []gatehouse.ActionRecord
	err = db.readTx(ctx, "list actions", func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			rec, err := scanAction(rows)
			if err != nil {
				return err
			}
			rec.Status = rec.StatusAt(f.Now)
			out = append(out, rec)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// optTime stores a time that has not happened as NULL.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromOpt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func actionValues(r *gatehouse.ActionRecord) []any {
	var key *string
	if r.IdempotencyKey != "" {
		key = &r.IdempotencyKey
	}
	return []any{r.Seq, r.ID, r.Tenant, r.Action, r.Tool, r.Subject, r.OnBehalfOf, key,
		r.Fingerprint, rawText(r.Args), r.Amount, r.Currency, r.Percentage, r.RequiresConfirmation,
		string(r.Reason), r.PolicyVersion, string(r.Status), r.CreatedAt, optTime(r.ExpiresAt),
		optTime(r.ConfirmedAt), r.ConfirmedBy, optTime(r.ExecutedAt), r.ErrorMessage,
		r.UpdatedAt, r.UpdatedBy}
}

func scanAction(row pgx.Row) (gatehouse.ActionRecord, error) {
	var (
		r                            gatehouse.ActionRecord
		key, args                    *string
		reason, status               string
		expires, confirmed, executed *time.Time
	)
	err := row.Scan(&r.Seq, &r.ID, &r.Tenant, &r.Action, &r.Tool, &r.Subject, &r.OnBehalfOf, &key,
		&r.Fingerprint, &args, &r.Amount, &r.Currency, &r.Percentage, &r.RequiresConfirmation,
		&reason, &r.PolicyVersion, &status, &r.CreatedAt, &expires, &confirmed, &r.ConfirmedBy,
		&executed, &r.ErrorMessage, &r.UpdatedAt, &r.UpdatedBy)
	if err != nil {
		return gatehouse.ActionRecord{}, err
	}
	if key != nil {
		r.IdempotencyKey = *key
	}
	if args != nil {
		r.Args = []byte(*args)
	}
	r.Reason, r.Status = gatehouse.Reason(reason), gatehouse.ActionStatus(status)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	r.ExpiresAt, r.ConfirmedAt, r.ExecutedAt = fromOpt(expires), fromOpt(confirmed), fromOpt(executed)
	return r, nil
}
