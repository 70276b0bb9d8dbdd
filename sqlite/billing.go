package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// Billing customers and processed events live in billing_customers and
// billing_events (migration 0003). CommitBilling runs in the single
// IMMEDIATE write transaction, so the duplicate check, the customer's
// version check and the policy change are atomic across processes.

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
	err = db.writeTx(ctx, "commit billing", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM billing_events WHERE id = ?`, e.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("event %q: %w", e.ID, gatehouse.ErrDuplicateEvent)
		}
		var stored int64
		err := tx.QueryRowContext(ctx, `SELECT version FROM billing_customers WHERE id = ?`, cu.ID).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if stored != cu.Version {
			return fmt.Errorf("customer %q: read version %d, stored version %d: %w", cu.ID, cu.Version, stored, gatehouse.ErrConflict)
		}
		if version, err = commitPolicy(ctx, tx, c.Base, c.Changes, sealed); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO billing_events (id, type, customer, created, processed_at, outcome)
			VALUES (?, ?, ?, ?, ?, ?)`, e.ID, e.Type, e.Customer, micros(e.Created), micros(e.ProcessedAt), e.Outcome); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO billing_customers (`+customerColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, plan = excluded.plan, status = excluded.status,
				grace_until = excluded.grace_until, last_event = excluded.last_event,
				last_created = excluded.last_created, updated_at = excluded.updated_at, version = excluded.version`,
			cu.ID, cu.Subject, cu.Plan, string(cu.Status), micros(cu.GraceUntil), cu.LastEvent,
			micros(cu.LastCreated), micros(cu.UpdatedAt), cu.Version+1)
		return err
	})
	if err != nil {
		return 0, err
	}
	copy(c.Events, sealed)
	return version, nil
}

// BillingEvent returns the processed event with id.
func (db *DB) BillingEvent(ctx context.Context, id string) (gatehouse.BillingEvent, error) {
	var (
		e                  gatehouse.BillingEvent
		created, processed int64
	)
	err := db.read.QueryRowContext(ctx, `SELECT id, type, customer, created, processed_at, outcome
		FROM billing_events WHERE id = ?`, id).Scan(&e.ID, &e.Type, &e.Customer, &created, &processed, &e.Outcome)
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.BillingEvent{}, gatehouse.NotFoundf("billing event %q", id)
	}
	if err != nil {
		return gatehouse.BillingEvent{}, db.wrap("billing event", ctxErr(ctx, err))
	}
	e.Created, e.ProcessedAt = fromMicros(created), fromMicros(processed)
	return e, nil
}

// BillingCustomer returns the customer with id.
func (db *DB) BillingCustomer(ctx context.Context, id string) (gatehouse.BillingCustomer, error) {
	cu, err := scanCustomer(db.read.QueryRowContext(ctx, `SELECT `+customerColumns+` FROM billing_customers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.BillingCustomer{}, gatehouse.NotFoundf("billing customer %q", id)
	}
	if err != nil {
		return gatehouse.BillingCustomer{}, db.wrap("billing customer", ctxErr(ctx, err))
	}
	return cu, nil
}

// ListBillingCustomers returns the customers matching f, sorted by id.
func (db *DB) ListBillingCustomers(ctx context.Context, f gatehouse.BillingCustomerFilter) ([]gatehouse.BillingCustomer, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	conds := []string{"1 = 1"}
	var args []any
	if f.Subject != "" {
		conds, args = append(conds, "subject = ?"), append(args, f.Subject)
	}
	if !f.GraceEndedBy.IsZero() {
		conds = append(conds, "status = ? AND grace_until <= ?")
		args = append(args, string(gatehouse.BillingPastDue), f.GraceEndedBy.UnixMicro())
	}
	args = append(args, limit)
	rows, err := db.read.QueryContext(ctx, `SELECT `+customerColumns+` FROM billing_customers WHERE `+
		strings.Join(conds, " AND ")+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, db.wrap("list billing customers", ctxErr(ctx, err))
	}
	defer rows.Close()
	var out []gatehouse.BillingCustomer
	for rows.Next() {
		cu, err := scanCustomer(rows)
		if err != nil {
			return nil, db.wrap("list billing customers", ctxErr(ctx, err))
		}
		out = append(out, cu)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list billing customers", ctxErr(ctx, err))
	}
	return out, nil
}

func scanCustomer(row scanner) (gatehouse.BillingCustomer, error) {
	var (
		cu                            gatehouse.BillingCustomer
		status                        string
		grace, lastCreated, updatedAt int64
	)
	if err := row.Scan(&cu.ID, &cu.Subject, &cu.Plan, &status, &grace, &cu.LastEvent, &lastCreated, &updatedAt, &cu.Version); err != nil {
		return gatehouse.BillingCustomer{}, err
	}
	cu.Status = gatehouse.BillingStatus(status)
	cu.GraceUntil, cu.LastCreated, cu.UpdatedAt = fromMicros(grace), fromMicros(lastCreated), fromMicros(updatedAt)
	return cu, nil
}
