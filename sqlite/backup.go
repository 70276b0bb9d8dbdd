package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

var (
	_ gatehouse.Dumper   = (*DB)(nil)
	_ gatehouse.Restorer = (*DB)(nil)
)

// Dump calls fn with the whole store as one read transaction sees it; the
// events stream from that transaction, so writers go on meanwhile.
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
		d.Events = func(yield func(gatehouse.AuditEvent, error) bool) {
			rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM audit_events
				WHERE seq <= ? ORDER BY seq`, d.Head.Seq)
			if err != nil {
				yield(gatehouse.AuditEvent{}, ctxErr(ctx, err))
				return
			}
			defer rows.Close()
			for rows.Next() {
				e, err := scanEvent(rows)
				if err != nil {
					yield(gatehouse.AuditEvent{}, ctxErr(ctx, err))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if err := rows.Err(); err != nil {
				yield(gatehouse.AuditEvent{}, ctxErr(ctx, err))
			}
		}
		return fn(d)
	})
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
		for _, o := range d.Objects {
			if err := applyChange(ctx, tx, gatehouse.Change{Kind: o.Kind, ID: o.ID, Pos: o.Pos, After: o.Body}); err != nil {
				return err
			}
		}
		insert, err := prepareInsertEvent(ctx, tx)
		if err != nil {
			return err
		}
		defer insert.Close()
		for e, err := range audit.Verified(d.Events, d.Head) {
			if err != nil {
				return err
			}
			if err := insertEvent(ctx, insert, e); err != nil {
				return err
			}
		}
		if err := setMeta(ctx, tx, "policy_version", d.Version); err != nil {
			return err
		}
		return setHead(ctx, tx, d.Head)
	})
}

// checkEmpty returns an error wrapping gatehouse.ErrNotEmpty unless the
// store holds no object, no event and policy version 0.
func checkEmpty(ctx context.Context, tx *sql.Tx) error {
	var version, head int64
	if err := readMeta(ctx, tx, "policy_version", &version); err != nil {
		return err
	}
	if err := readMeta(ctx, tx, "audit_head_seq", &head); err != nil {
		return err
	}
	var objects, events bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM policy_objects),
		EXISTS (SELECT 1 FROM audit_events)`).Scan(&objects, &events); err != nil {
		return err
	}
	if version != 0 || head != 0 || objects || events {
		return fmt.Errorf("policy version %d, audit head %d, objects stored: %t, events stored: %t: %w",
			version, head, objects, events, gatehouse.ErrNotEmpty)
	}
	return nil
}
