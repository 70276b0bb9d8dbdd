package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"strings"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/schema"
)

var (
	_ gatehouse.Dumper   = (*DB)(nil)
	_ gatehouse.Restorer = (*DB)(nil)
)

// Dump calls fn with the whole store as one read transaction sees it; the
// rows stream from that transaction, so writers go on meanwhile.
func (db *DB) Dump(ctx context.Context, fn func(d gatehouse.Dump) error) error {
	return db.readTx(ctx, "dump", func(tx *sql.Tx) error {
		var (
			d   gatehouse.Dump
			err error
		)
		if d.SchemaVersion, _, err = schemaVersion(ctx, tx); err != nil {
			return err
		}
		if d.Objects, d.Version, err = loadPolicy(ctx, tx); err != nil {
			return err
		}
		if d.Head, err = auditHead(ctx, tx); err != nil {
			return err
		}
		if d.Base, err = auditBase(ctx, tx); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE seq <= ?`, d.Head.Seq).Scan(&d.EventCount); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM action_records),
			(SELECT count(*) FROM billing_customers), (SELECT count(*) FROM billing_events),
			(SELECT count(*) FROM api_keys), (SELECT count(*) FROM chat_threads),
			(SELECT count(*) FROM chat_messages), (SELECT count(*) FROM chat_attachments)`,
		).Scan(&d.Counts.Actions, &d.Counts.Customers, &d.Counts.BillingEvents, &d.Counts.APIKeys,
			&d.Counts.Threads, &d.Counts.Messages, &d.Counts.Attachments); err != nil {
			return err
		}
		d.Events = streamRows(ctx, tx, scanEvent,
			`SELECT `+eventColumns+` FROM audit_events WHERE seq <= ? ORDER BY seq`, d.Head.Seq)
		d.Actions = streamRows(ctx, tx, scanAction, `SELECT `+actionColumns+` FROM action_records ORDER BY seq`)
		d.Customers = streamRows(ctx, tx, scanCustomer, `SELECT `+customerColumns+` FROM billing_customers ORDER BY id`)
		d.BillingEvents = streamRows(ctx, tx, scanBillingEvent, `SELECT `+billingEventColumns+` FROM billing_events ORDER BY id`)
		d.APIKeys = streamRows(ctx, tx, scanAPIKey, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
		d.Threads = streamRows(ctx, tx, scanThread, `SELECT `+threadColumns+` FROM chat_threads ORDER BY id`)
		d.Messages = streamRows(ctx, tx, scanMessage, `SELECT `+messageColumns+` FROM chat_messages ORDER BY thread_id, seq`)
		d.Attachments = streamRows(ctx, tx, scanAttachment, `SELECT `+attachmentColumns+` FROM chat_attachments ORDER BY id`)
		return fn(d)
	})
}

// streamRows yields what scan reads from each row of query, run in tx
// when the sequence is ranged over.
func streamRows[T any](ctx context.Context, tx *sql.Tx, scan func(scanner) (T, error), query string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			yield(zero, ctxErr(ctx, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				yield(zero, ctxErr(ctx, err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(zero, ctxErr(ctx, err))
		}
	}
}

// billingEventColumns are the columns scanBillingEvent reads, in its order.
const billingEventColumns = `id, type, customer, created, processed_at, outcome`

func scanBillingEvent(row scanner) (gatehouse.BillingEvent, error) {
	var (
		e                  gatehouse.BillingEvent
		created, processed int64
	)
	if err := row.Scan(&e.ID, &e.Type, &e.Customer, &created, &processed, &e.Outcome); err != nil {
		return gatehouse.BillingEvent{}, err
	}
	e.Created, e.ProcessedAt = fromMicros(created), fromMicros(processed)
	return e, nil
}

// Restore writes d into the empty store in one transaction; see
// gatehouse.Restorer.
func (db *DB) Restore(ctx context.Context, d gatehouse.Dump) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("sqlite %s: restore: %w", db.path, err)
	}
	return db.writeTx(ctx, "restore", func(tx *sql.Tx) error {
		if err := checkEmpty(ctx, tx); err != nil {
			return err
		}
		creates := make([]gatehouse.Change, len(d.Objects))
		for i, o := range d.Objects {
			creates[i] = gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, After: o.Body}
		}
		if err := applyChanges(ctx, tx, creates); err != nil {
			return err
		}
		insert, err := prepareInsertEvent(ctx, tx)
		if err != nil {
			return err
		}
		defer insert.Close()
		if err := insertRows(audit.VerifiedFrom(d.Events, d.Base, d.Head), func(e gatehouse.AuditEvent) error {
			return insertEvent(ctx, insert, e)
		}); err != nil {
			return err
		}
		if err := insertRows(d.Actions, func(r gatehouse.ActionRecord) error {
			if err := r.Validate(); err != nil {
				return fmt.Errorf("action record %s: %w", r.ID, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO action_records (`+actionColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				actionValues(&r)...)
			return err
		}); err != nil {
			return err
		}
		if err := insertRows(d.Customers, func(cu gatehouse.BillingCustomer) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO billing_customers (`+customerColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				cu.ID, cu.Subject, cu.Plan, string(cu.Status), micros(cu.GraceUntil), cu.LastEvent,
				micros(cu.LastCreated), micros(cu.UpdatedAt), cu.Version)
			return err
		}); err != nil {
			return err
		}
		if err := insertRows(d.BillingEvents, func(e gatehouse.BillingEvent) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO billing_events (`+billingEventColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
				e.ID, e.Type, e.Customer, micros(e.Created), micros(e.ProcessedAt), e.Outcome)
			return err
		}); err != nil {
			return err
		}
		if err := insertRows(d.APIKeys, func(k gatehouse.APIKey) error {
			if err := k.Validate(); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				k.ID, k.Name, k.Subject.String(), strings.Join(k.Scopes, ","), k.Hash,
				micros(k.CreatedAt), k.CreatedBy, micros(k.ExpiresAt), micros(k.RevokedAt))
			return err
		}); err != nil {
			return err
		}
		if err := restoreThreads(ctx, tx, d); err != nil {
			return err
		}
		if err := setMeta(ctx, tx, "policy_version", d.Version); err != nil {
			return err
		}
		if err := setBase(ctx, tx, d.Base); err != nil {
			return err
		}
		return setHead(ctx, tx, d.Head)
	})
}

// restoreThreads inserts the chat threads, messages and attachments of d.
func restoreThreads(ctx context.Context, tx *sql.Tx, d gatehouse.Dump) error {
	if err := insertRows(d.Threads, func(t gatehouse.Thread) error {
		if err := t.Validate(); err != nil {
			return err
		}
		return insertThread(ctx, tx, t)
	}); err != nil {
		return err
	}
	insert, err := tx.PrepareContext(ctx, `INSERT INTO chat_messages (`+messageColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer insert.Close()
	if err := insertRows(d.Messages, func(m gatehouse.Message) error {
		if err := m.Validate(); err != nil {
			return err
		}
		values, err := messageValues(&m)
		if err == nil {
			_, err = insert.ExecContext(ctx, values...)
		}
		return ofThread(err, "message", m.ID, m.ThreadID)
	}); err != nil {
		return err
	}
	return insertRows(d.Attachments, func(a gatehouse.Attachment) error {
		if err := a.Validate(); err != nil {
			return err
		}
		return ofThread(insertAttachment(ctx, tx, a), "attachment", a.ID, a.ThreadID)
	})
}

// ofThread reports the foreign key violation of a row whose thread is
// not there as ErrInvalid; other errors it returns as they are.
func ofThread(err error, what, id, thread string) error {
	var se *msqlite.Error
	if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY {
		return gatehouse.Invalidf("%s %s: no thread %q", what, id, thread)
	}
	return err
}

// insertRows calls insert with each row rows yields, and stops at the first
// error either gives. A nil rows yields nothing.
func insertRows[T any](rows iter.Seq2[T, error], insert func(T) error) error {
	if rows == nil {
		return nil
	}
	for v, err := range rows {
		if err == nil {
			err = insert(v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkEmpty returns an error wrapping gatehouse.ErrNotEmpty unless the
// store holds nothing and policy version 0.
func checkEmpty(ctx context.Context, tx *sql.Tx) error {
	var version, head int64
	if err := readMeta(ctx, tx, "policy_version", &version); err != nil {
		return err
	}
	if err := readMeta(ctx, tx, "audit_head_seq", &head); err != nil {
		return err
	}
	var tables string
	if err := tx.QueryRowContext(ctx, schema.OccupiedTables).Scan(&tables); err != nil {
		return err
	}
	if version != 0 || head != 0 || tables != "" {
		return fmt.Errorf("policy version %d, audit head %d, rows in: %s: %w", version, head, tables, gatehouse.ErrNotEmpty)
	}
	return nil
}
