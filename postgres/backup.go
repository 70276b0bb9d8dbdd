package postgres

import (
	"context"
	"fmt"
	"iter"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

var (
	_ gatehouse.Dumper   = (*DB)(nil)
	_ gatehouse.Restorer = (*DB)(nil)
)

// Dump calls fn with the whole store as one repeatable-read transaction
// sees it; the events stream from that transaction, so writers go on
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
		meta, err := readMeta(ctx, tx, keyHeadSeq, keyHeadHash)
		if err != nil {
			return err
		}
		if d.Head, err = meta.head(); err != nil {
			return err
		}
		d.Events = func(yield func(gatehouse.AuditEvent, error) bool) {
			rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM audit_events
				WHERE seq <= $1 ORDER BY seq`, d.Head.Seq)
			if err != nil {
				yield(gatehouse.AuditEvent{}, err)
				return
			}
			defer rows.Close()
			for rows.Next() {
				e, err := scanEvent(rows)
				if err != nil {
					yield(gatehouse.AuditEvent{}, err)
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if err := rows.Err(); err != nil {
				yield(gatehouse.AuditEvent{}, err)
			}
		}
		called = true
		return fn(d)
	})
}

// Restore writes d into the empty store in one transaction, copying the
// events in as they stream, and announces the restored version on
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
		if err := copyEvents(ctx, tx, audit.Verified(d.Events, d.Head)); err != nil {
			return err
		}
		var batch pgx.Batch
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(d.Version, 10), keyVersion)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(d.Head.Seq, 10), keyHeadSeq)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, d.Head.Hash, keyHeadHash)
		if d.Version > 0 {
			batch.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notifyPayload(d.Version, db.schema))
		}
		return sendBatch(ctx, tx, &batch)
	})
}

// copyEvents copies the events that events yields into audit_events with
// COPY, and returns the first error it yields.
func copyEvents(ctx context.Context, tx pgx.Tx, events iter.Seq2[gatehouse.AuditEvent, error]) error {
	next, stop := iter.Pull2(events)
	defer stop()
	// COPY reports a failed source as its own error; this keeps the source's.
	var srcErr error
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events"},
		[]string{"seq", "time", "actor", "action", "target", "before", "after", "detail", "prev_hash", "hash"},
		pgx.CopyFromFunc(func() ([]any, error) {
			e, err, ok := next()
			switch {
			case !ok:
				return nil, nil
			case err != nil:
				srcErr = err
				return nil, err
			}
			return []any{e.Seq, e.Time, e.Actor, e.Action, e.Target,
				rawText(e.Before), rawText(e.After), rawText(e.Detail), e.PrevHash, e.Hash}, nil
		}))
	if srcErr != nil {
		return srcErr
	}
	return err
}

// checkEmpty returns an error wrapping gatehouse.ErrNotEmpty unless the
// store holds no object, no event and policy version 0; meta holds the
// locked meta rows.
func checkEmpty(ctx context.Context, tx pgx.Tx, meta metaValues) error {
	version, err := meta.int(keyVersion)
	if err != nil {
		return err
	}
	head, err := meta.head()
	if err != nil {
		return err
	}
	var objects, events bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM policy_objects),
		EXISTS (SELECT 1 FROM audit_events)`).Scan(&objects, &events); err != nil {
		return err
	}
	if version != 0 || head.Seq != 0 || objects || events {
		return fmt.Errorf("policy version %d, audit head %d, objects stored: %t, events stored: %t: %w",
			version, head.Seq, objects, events, gatehouse.ErrNotEmpty)
	}
	return nil
}
