package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	"github.com/gatehouse/gatehouse/internal/schema"
)

var (
	_ gatehouse.Dumper   = (*DB)(nil)
	_ gatehouse.Restorer = (*DB)(nil)
)

// Dump calls fn with the whole store as one repeatable-read transaction
// sees it; the rows stream from that transaction, so writers go on
// meanwhile. A connection lost while fn runs fails the dump with
// gatehouse.ErrUnavailable: what fn consumed cannot be consumed again.
func (db *DB) Dump(ctx context.Context, fn func(d gatehouse.Dump) error) error {
	called := false
	return db.readTx(ctx, "dump", func(tx pgx.Tx) error {
		if called {
			return fmt.Errorf("connection to the server lost during the dump: %w", gatehouse.ErrUnavailable)
		}
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
		meta, err := readMeta(ctx, tx, keyHeadSeq, keyHeadHash, keyBaseSeq, keyBaseHash, keyBaseKept)
		if err != nil {
			return err
		}
		if d.Head, err = meta.head(); err != nil {
			return err
		}
		if d.Base, err = meta.base(); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE seq <= $1`, d.Head.Seq).Scan(&d.EventCount); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM action_records),
			(SELECT count(*) FROM billing_customers), (SELECT count(*) FROM billing_events),
			(SELECT count(*) FROM api_keys), (SELECT count(*) FROM chat_threads),
			(SELECT count(*) FROM chat_messages), (SELECT count(*) FROM chat_attachments)`,
		).Scan(&d.Counts.Actions, &d.Counts.Customers, &d.Counts.BillingEvents, &d.Counts.APIKeys,
			&d.Counts.Threads, &d.Counts.Messages, &d.Counts.Attachments); err != nil {
			return err
		}
		d.Events = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.AuditEvent, error) { return scanEvent(r) },
			`SELECT `+eventColumns+` FROM audit_events WHERE seq <= $1 ORDER BY seq`, d.Head.Seq)
		d.Actions = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.ActionRecord, error) { return scanAction(r) },
			`SELECT `+actionColumns+` FROM action_records ORDER BY seq`)
		d.Customers = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.BillingCustomer, error) { return scanCustomer(r) },
			`SELECT `+customerColumns+` FROM billing_customers ORDER BY id`)
		d.BillingEvents = streamRows(ctx, tx, scanBillingEvent,
			`SELECT `+billingEventColumns+` FROM billing_events ORDER BY id`)
		d.APIKeys = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.APIKey, error) { return scanAPIKey(r) },
			`SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
		d.Threads = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.Thread, error) { return scanThread(r) },
			`SELECT `+threadColumns+` FROM chat_threads ORDER BY id`)
		d.Messages = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.Message, error) { return scanMessage(r) },
			`SELECT `+messageColumns+` FROM chat_messages ORDER BY thread_id, seq`)
		d.Attachments = streamRows(ctx, tx, func(r pgx.Rows) (gatehouse.Attachment, error) { return scanAttachment(r) },
			`SELECT `+attachmentColumns+` FROM chat_attachments ORDER BY id`)
		called = true
		return fn(d)
	})
}

// Restore writes d into the empty store in one transaction, copying the
// rows in as they stream, and announces the restored version on
// NotifyChannel; see gatehouse.Restorer. A connection lost before the
// commit fails the restore with gatehouse.ErrUnavailable, nothing
// restored: the events already consumed cannot be consumed again.
func (db *DB) Restore(ctx context.Context, d gatehouse.Dump) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("postgres %s: restore: %w", db.where, err)
	}
	called := false
	keys := []string{keyHeadHash, keyHeadSeq, keyVersion}
	return db.writeTx(ctx, "restore", keys, func(tx pgx.Tx, meta metaValues) error {
		if called {
			return fmt.Errorf("connection to the server lost during the restore, nothing restored: %w", gatehouse.ErrUnavailable)
		}
		if err := checkEmpty(ctx, tx, meta); err != nil {
			return err
		}
		called = true
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"policy_objects"}, []string{"kind", "id", "pos", "body"},
			pgx.CopyFromSlice(len(d.Objects), func(i int) ([]any, error) {
				o := d.Objects[i]
				return []any{string(o.Kind), o.ID, int64(o.Pos), string(o.Body)}, nil
			})); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "audit_events", eventColumns, audit.VerifiedFrom(d.Events, d.Base, d.Head),
			func(e gatehouse.AuditEvent) ([]any, error) {
				return []any{e.Seq, e.Time, e.Actor, e.Action, e.Target,
					rawText(e.Before), rawText(e.After), rawText(e.Detail), e.PrevHash, e.Hash}, nil
			}); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "action_records", actionColumns, d.Actions,
			func(r gatehouse.ActionRecord) ([]any, error) {
				if err := r.Validate(); err != nil {
					return nil, fmt.Errorf("action record %s: %w", r.ID, err)
				}
				return actionValues(&r), nil
			}); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "billing_customers", customerColumns, d.Customers,
			func(cu gatehouse.BillingCustomer) ([]any, error) {
				return []any{cu.ID, cu.Subject, cu.Plan, string(cu.Status), optTime(cu.GraceUntil), cu.LastEvent,
					utcMicro(cu.LastCreated), utcMicro(cu.UpdatedAt), cu.Version}, nil
			}); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "billing_events", billingEventColumns, d.BillingEvents,
			func(e gatehouse.BillingEvent) ([]any, error) {
				return []any{e.ID, e.Type, e.Customer, utcMicro(e.Created), utcMicro(e.ProcessedAt), e.Outcome}, nil
			}); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "api_keys", apiKeyColumns, d.APIKeys,
			func(k gatehouse.APIKey) ([]any, error) {
				if err := k.Validate(); err != nil {
					return nil, err
				}
				return []any{k.ID, k.Name, k.Subject.String(), strings.Join(k.Scopes, ","), k.Hash,
					micros(k.CreatedAt), k.CreatedBy, micros(k.ExpiresAt), micros(k.RevokedAt)}, nil
			}); err != nil {
			return err
		}
		if err := restoreThreads(ctx, tx, d); err != nil {
			return err
		}
		var batch pgx.Batch
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(d.Version, 10), keyVersion)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(d.Head.Seq, 10), keyHeadSeq)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, d.Head.Hash, keyHeadHash)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(d.Base.Seq, 10), keyBaseSeq)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, d.Base.Hash, keyBaseHash)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, d.Base.Retained, keyBaseKept)
		if d.Version > 0 {
			batch.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notifyPayload(d.Version, db.schema))
		}
		return sendBatch(ctx, tx, &batch)
	})
}

// restoreThreads copies in the chat threads, messages and attachments of
// d; a message or attachment of a thread d does not hold is ErrInvalid.
func restoreThreads(ctx context.Context, tx pgx.Tx, d gatehouse.Dump) error {
	if err := copyRows(ctx, tx, "chat_threads", threadColumns, d.Threads,
		func(t gatehouse.Thread) ([]any, error) {
			if err := t.Validate(); err != nil {
				return nil, err
			}
			return threadValues(&t), nil
		}); err != nil {
		return err
	}
	err := copyRows(ctx, tx, "chat_messages", messageColumns, d.Messages,
		func(m gatehouse.Message) ([]any, error) {
			if err := m.Validate(); err != nil {
				return nil, err
			}
			return messageValues(&m)
		})
	if err == nil {
		err = copyRows(ctx, tx, "chat_attachments", attachmentColumns, d.Attachments,
			func(a gatehouse.Attachment) ([]any, error) {
				if err := a.Validate(); err != nil {
					return nil, err
				}
				return attachmentValues(&a), nil
			})
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return gatehouse.Invalidf("restore: %s", pe.Detail)
	}
	return err
}

// streamRows yields what scan reads from each row of query, run in tx
// when the sequence is ranged over.
func streamRows[T any](ctx context.Context, tx pgx.Tx, scan func(pgx.Rows) (T, error), query string, args ...any) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			yield(zero, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				yield(zero, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(zero, err)
		}
	}
}

// copyRows copies the rows that rows yields into table with COPY, each as
// values turns it into columns, a comma-separated list; it returns the
// first error rows yields or values returns. A nil rows copies nothing.
func copyRows[T any](ctx context.Context, tx pgx.Tx, table, columns string, rows iter.Seq2[T, error], values func(T) ([]any, error)) error {
	if rows == nil {
		return nil
	}
	next, stop := iter.Pull2(rows)
	defer stop()
	// COPY reports a failed source as its own error; this keeps the source's.
	var srcErr error
	cols := strings.Split(columns, ",")
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		v, err, ok := next()
		if !ok {
			return nil, nil
		}
		var row []any
		if err == nil {
			row, err = values(v)
		}
		if err != nil {
			srcErr = err
			return nil, err
		}
		return row, nil
	}))
	if srcErr != nil {
		return srcErr
	}
	return err
}

// billingEventColumns are the columns scanBillingEvent reads, in its order.
const billingEventColumns = `id, type, customer, created, processed_at, outcome`

func scanBillingEvent(row pgx.Rows) (gatehouse.BillingEvent, error) {
	var e gatehouse.BillingEvent
	if err := row.Scan(&e.ID, &e.Type, &e.Customer, &e.Created, &e.ProcessedAt, &e.Outcome); err != nil {
		return gatehouse.BillingEvent{}, err
	}
	e.Created, e.ProcessedAt = e.Created.UTC(), e.ProcessedAt.UTC()
	return e, nil
}

// checkEmpty returns an error wrapping gatehouse.ErrNotEmpty unless the
// store holds nothing and policy version 0; meta holds the locked meta
// rows.
func checkEmpty(ctx context.Context, tx pgx.Tx, meta metaValues) error {
	version, err := meta.int(keyVersion)
	if err != nil {
		return err
	}
	head, err := meta.head()
	if err != nil {
		return err
	}
	var tables string
	if err := tx.QueryRow(ctx, schema.OccupiedTables).Scan(&tables); err != nil {
		return err
	}
	if version != 0 || head.Seq != 0 || tables != "" {
		return fmt.Errorf("policy version %d, audit head %d, rows in: %s: %w", version, head.Seq, tables, gatehouse.ErrNotEmpty)
	}
	return nil
}
