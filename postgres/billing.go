package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Billing customers and processed events live in billing_customers and
// billing_events (migration 0003). CommitBilling locks the policy version
// and the audit head first, as every policy commit does, so commits from
// any number of instances take turns: a second delivery of an event waits
// for the first and then finds it stored.

const customerColumns = `id, subject, plan, status, grace_until, last_event, last_created, updated_at, version`

// CommitBilling records c.Event, stores c.Customer at its next version and
// commits the policy change, all in one transaction.
func (db *DB) CommitBilling(ctx context.Context, c gatehouse.BillingCommit) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("commit billing: %w", err)
	}
	sealed, err := audit.PrepareCommit(c.Changes, c.Events, db.clock.Now())
	if err != nil {
		return 0, err
	}
	e, cu := c.Event, c.Customer
	var version int64
	err = db.writeTx(ctx, "commit billing", []string{keyVersion, keyHeadSeq, keyHeadHash}, func(tx pgx.Tx, meta metaValues) error {
		tag, err := tx.Exec(ctx, `INSERT INTO billing_events (id, type, customer, created, processed_at, outcome)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
			e.ID, e.Type, e.Customer, utcMicro(e.Created), utcMicro(e.ProcessedAt), e.Outcome)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("event %q: %w", e.ID, gatehouse.ErrDuplicateEvent)
		}
		var stored int64
		err = tx.QueryRow(ctx, `SELECT version FROM billing_customers WHERE id = $1 FOR UPDATE`, cu.ID).Scan(&stored)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if stored != cu.Version {
			return fmt.Errorf("customer %q: read version %d, stored version %d: %w", cu.ID, cu.Version, stored, gatehouse.ErrConflict)
		}
		var batch pgx.Batch
		if version, err = db.queueCommit(ctx, tx, &batch, meta, c.Base, c.Changes, sealed); err != nil {
			return err
		}
		var grace *time.Time
		if !cu.GraceUntil.IsZero() {
			t := utcMicro(cu.GraceUntil)
			grace = &t
		}
		batch.Queue(`INSERT INTO billing_customers (`+customerColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, plan = excluded.plan, status = excluded.status,
				grace_until = excluded.grace_until, last_event = excluded.last_event,
				last_created = excluded.last_created, updated_at = excluded.updated_at, version = excluded.version`,
			cu.ID, cu.Subject, cu.Plan, string(cu.Status), grace, cu.LastEvent,
			utcMicro(cu.LastCreated), utcMicro(cu.UpdatedAt), cu.Version+1)
		return sendBatch(ctx, tx, &batch)
	})
	if err != nil {
		return 0, err
	}
	copy(c.Events, sealed)
	return version, nil
}

// BillingEvent returns the processed event with id.
func (db *DB) BillingEvent(ctx context.Context, id string) (gatehouse.BillingEvent, error) {
	var e gatehouse.BillingEvent
	err := db.readTx(ctx, "billing event", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT id, type, customer, created, processed_at, outcome
			FROM billing_events WHERE id = $1`, id).Scan(&e.ID, &e.Type, &e.Customer, &e.Created, &e.ProcessedAt, &e.Outcome)
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf("billing event %q", id)
		}
		return err
	})
	if err != nil {
		return gatehouse.BillingEvent{}, err
	}
	e.Created, e.ProcessedAt = e.Created.UTC(), e.ProcessedAt.UTC()
	return e, nil
}

// BillingCustomer returns the customer with id.
func (db *DB) BillingCustomer(ctx context.Context, id string) (gatehouse.BillingCustomer, error) {
	var cu gatehouse.BillingCustomer
	err := db.readTx(ctx, "billing customer", func(tx pgx.Tx) error {
		var err error
		cu, err = scanCustomer(tx.QueryRow(ctx, `SELECT `+customerColumns+` FROM billing_customers WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf("billing customer %q", id)
		}
		return err
	})
	if err != nil {
		return gatehouse.BillingCustomer{}, err
	}
	return cu, nil
}

// ListBillingCustomers returns the customers matching f, sorted by id.
func (db *DB) ListBillingCustomers(ctx context.Context, f gatehouse.BillingCustomerFilter) ([]gatehouse.BillingCustomer, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	conds := []string{"true"}
	var args []any
	where := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.Subject != "" {
		where("subject = $?", f.Subject)
	}
	if !f.GraceEndedBy.IsZero() {
		where("status = $?", string(gatehouse.BillingPastDue))
		where("grace_until <= $?", f.GraceEndedBy)
	}
	args = append(args, limit)
	query := `SELECT ` + customerColumns + ` FROM billing_customers WHERE ` + strings.Join(conds, " AND ") +
		` ORDER BY id LIMIT $` + strconv.Itoa(len(args))
	var out []gatehouse.BillingCustomer
	err = db.readTx(ctx, "list billing customers", func(tx pgx.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			cu, err := scanCustomer(rows)
			if err != nil {
				return err
			}
			out = append(out, cu)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func scanCustomer(row pgx.Row) (gatehouse.BillingCustomer, error) {
	var (
		cu     gatehouse.BillingCustomer
		status string
		grace  *time.Time
	)
	if err := row.Scan(&cu.ID, &cu.Subject, &cu.Plan, &status, &grace, &cu.LastEvent, &cu.LastCreated, &cu.UpdatedAt, &cu.Version); err != nil {
		return gatehouse.BillingCustomer{}, err
	}
	cu.Status = gatehouse.BillingStatus(status)
	cu.GraceUntil, cu.LastCreated, cu.UpdatedAt = fromOpt(grace), cu.LastCreated.UTC(), cu.UpdatedAt.UTC()
	return cu, nil
}

// utcMicro is t as PostgreSQL keeps it: microseconds, in UTC.
func utcMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
