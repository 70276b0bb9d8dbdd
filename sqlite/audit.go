package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// AppendAudit appends events in order in one transaction, chained to the
// recorded head. An event without a time gets the store clock's. It returns
// ErrInvalid, appending nothing, if any event fails audit.Validate; on
// success it fills in each event's Seq, Time, PrevHash and Hash as stored.
func (db *DB) AppendAudit(ctx context.Context, events []gatehouse.AuditEvent) error {
	sealed, err := audit.Prepare(events, db.clock.Now())
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	if len(sealed) == 0 {
		return nil
	}
	err = db.writeTx(ctx, "append audit", func(tx *sql.Tx) error {
		return appendEvents(ctx, tx, sealed)
	})
	if err != nil {
		return err
	}
	copy(events, sealed)
	return nil
}

// appendEvents seals events against the recorded head, inserts them and
// moves the head, inside tx.
func appendEvents(ctx context.Context, tx *sql.Tx, events []gatehouse.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	head, err := auditHead(ctx, tx)
	if err != nil {
		return err
	}
	insert, err := prepareInsertEvent(ctx, tx)
	if err != nil {
		return err
	}
	defer insert.Close()
	for i := range events {
		e := &events[i]
		audit.Seal(head, e)
		err := insertEvent(ctx, insert, *e)
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
			return fmt.Errorf("audit event %d is already stored, beyond the recorded head %d: %w",
				e.Seq, head.Seq, gatehouse.ErrCorrupt)
		}
		if err != nil {
			return err
		}
		head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
	}
	return setHead(ctx, tx, head)
}

// prepareInsertEvent prepares the insert of one sealed event, for
// insertEvent.
func prepareInsertEvent(ctx context.Context, tx *sql.Tx) (*sql.Stmt, error) {
	return tx.PrepareContext(ctx, `INSERT INTO audit_events
		(seq, time, actor, action, target, before, after, detail, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
}

// insertEvent stores e as it is, seq and hashes included.
func insertEvent(ctx context.Context, insert *sql.Stmt, e gatehouse.AuditEvent) error {
	_, err := insert.ExecContext(ctx, e.Seq, e.Time.UnixMicro(), e.Actor, e.Action, e.Target,
		rawText(e.Before), rawText(e.After), rawText(e.Detail), e.PrevHash, e.Hash)
	return err
}

// setHead records head as the audit head.
func setHead(ctx context.Context, tx *sql.Tx, head gatehouse.AuditHead) error {
	if err := setMeta(ctx, tx, "audit_head_seq", head.Seq); err != nil {
		return err
	}
	return setMeta(ctx, tx, "audit_head_hash", head.Hash)
}

// rawText stores raw JSON as TEXT, byte for byte, and absent JSON as NULL.
func rawText(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// ListAudit returns the events matching f in Seq order: Since is inclusive,
// Until exclusive, and Limit as audit.ListLimit takes it.
func (db *DB) ListAudit(ctx context.Context, f gatehouse.AuditFilter) ([]gatehouse.AuditEvent, error) {
	limit, err := audit.ListLimit(f.Limit)
	if err != nil {
		return nil, err
	}
	if err := f.CheckKind(); err != nil {
		return nil, err
	}
	conds := []string{"seq > ?"}
	args := []any{f.AfterSeq}
	if f.Actor != "" {
		conds = append(conds, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.Action != "" {
		conds = append(conds, "action = ?")
		args = append(args, f.Action)
	}
	switch {
	case f.Kind == gatehouse.AuditKindDecision || f.Reason != "":
		conds = append(conds, "action = ?")
		args = append(args, gatehouse.ActionDecision)
	case f.Kind == gatehouse.AuditKindChange:
		conds = append(conds, "action <> ?")
		args = append(args, gatehouse.ActionDecision)
	}
	if f.Kind == gatehouse.AuditKindChange && f.Reason != "" {
		// Changes record no reason.
		conds = append(conds, "0")
	}
	if f.Reason != "" {
		// The action index narrows the scan to decisions; detail is JSON
		// text the store validated on append. A reason that is not text
		// (json_type) never matches, as in every store.
		conds = append(conds, "json_type(detail, '$.reason') = 'text' AND json_extract(detail, '$.reason') = ?")
		args = append(args, f.Reason)
	}
	if f.TargetPrefix != "" {
		// instr, unlike LIKE, is case-sensitive and has no wildcards.
		conds = append(conds, "instr(target, ?) = 1")
		args = append(args, f.TargetPrefix)
	}
	if !f.Since.IsZero() {
		conds = append(conds, "time >= ?")
		args = append(args, ceilMicro(f.Since))
	}
	if !f.Until.IsZero() {
		conds = append(conds, "time < ?")
		args = append(args, ceilMicro(f.Until))
	}
	if f.BeforeSeq > 0 {
		conds = append(conds, "seq < ?")
		args = append(args, f.BeforeSeq)
	}
	order := "seq"
	if f.Newest {
		// The primary key, and the (actor|action|time, seq) indexes, walk
		// backwards as well.
		order = "seq DESC"
	}
	args = append(args, limit)
	query := `SELECT ` + eventColumns + ` FROM audit_events WHERE ` +
		strings.Join(conds, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`

	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, db.wrap("list audit", ctxErr(ctx, err))
	}
	defer rows.Close()
	var out []gatehouse.AuditEvent
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, db.wrap("list audit", ctxErr(ctx, err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list audit", ctxErr(ctx, err))
	}
	return out, nil
}

// eventColumns are the columns scanEvent reads, in its order.
const eventColumns = `seq, time, actor, action, target, before, after, detail, prev_hash, hash`

// scanEvent reads the event at rows' current row.
func scanEvent(rows scanner) (gatehouse.AuditEvent, error) {
	var (
		e                     gatehouse.AuditEvent
		micros                int64
		before, after, detail []byte
	)
	if err := rows.Scan(&e.Seq, &micros, &e.Actor, &e.Action, &e.Target,
		&before, &after, &detail, &e.PrevHash, &e.Hash); err != nil {
		return gatehouse.AuditEvent{}, err
	}
	e.Time = time.UnixMicro(micros).UTC()
	e.Before, e.After, e.Detail = before, after, detail
	return e, nil
}

// ceilMicro returns the first whole microsecond at or after t, so that
// comparing stored microseconds with it agrees with comparing times.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// AuditHead returns the head recorded by the last append.
func (db *DB) AuditHead(ctx context.Context) (gatehouse.AuditHead, error) {
	var head gatehouse.AuditHead
	err := db.readTx(ctx, "audit head", func(tx *sql.Tx) error {
		var err error
		head, err = auditHead(ctx, tx)
		return err
	})
	return head, err
}

func auditHead(ctx context.Context, tx *sql.Tx) (gatehouse.AuditHead, error) {
	var head gatehouse.AuditHead
	if err := readMeta(ctx, tx, "audit_head_seq", &head.Seq); err != nil {
		return gatehouse.AuditHead{}, err
	}
	if err := readMeta(ctx, tx, "audit_head_hash", &head.Hash); err != nil {
		return gatehouse.AuditHead{}, err
	}
	return head, nil
}

// AuditBase returns where the chain begins after pruning.
func (db *DB) AuditBase(ctx context.Context) (gatehouse.AuditBase, error) {
	var base gatehouse.AuditBase
	err := db.readTx(ctx, "audit base", func(tx *sql.Tx) error {
		var err error
		base, err = auditBase(ctx, tx)
		return err
	})
	return base, err
}

func auditBase(ctx context.Context, tx *sql.Tx) (gatehouse.AuditBase, error) {
	var base gatehouse.AuditBase
	for _, m := range []struct {
		key string
		dst any
	}{{"audit_base_seq", &base.Seq}, {"audit_base_hash", &base.Hash}, {"audit_base_retained", &base.Retained}} {
		if err := readMeta(ctx, tx, m.key, m.dst); err != nil {
			return gatehouse.AuditBase{}, err
		}
	}
	return base, nil
}

func setBase(ctx context.Context, tx *sql.Tx, base gatehouse.AuditBase) error {
	for _, m := range []struct {
		key   string
		value any
	}{{"audit_base_seq", base.Seq}, {"audit_base_hash", base.Hash}, {"audit_base_retained", base.Retained}} {
		if err := setMeta(ctx, tx, m.key, m.value); err != nil {
			return err
		}
	}
	return nil
}

// PruneAudit deletes the events of action up to the last event older than
// before and records the new base, in one transaction.
func (db *DB) PruneAudit(ctx context.Context, action string, before time.Time) (gatehouse.AuditBase, int64, error) {
	if action == "" {
		return gatehouse.AuditBase{}, 0, gatehouse.Invalidf("prune audit: no action")
	}
	var (
		base   gatehouse.AuditBase
		pruned int64
	)
	err := db.writeTx(ctx, "prune audit", func(tx *sql.Tx) error {
		var err error
		if base, err = auditBase(ctx, tx); err != nil {
			return err
		}
		var through sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT max(seq) FROM audit_events WHERE time < ?`, ceilMicro(before)).Scan(&through); err != nil {
			return err
		}
		if !through.Valid || through.Int64 <= base.Seq {
			return nil
		}
		next := gatehouse.AuditBase{Seq: through.Int64}
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE seq = ?`, next.Seq).Scan(&next.Hash); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE action = ? AND seq <= ?`, action, next.Seq)
		if err != nil {
			return err
		}
		if pruned, err = res.RowsAffected(); err != nil {
			return err
		}
		d := audit.NewRetainedDigest()
		rows, err := tx.QueryContext(ctx, `SELECT seq, hash FROM audit_events WHERE seq <= ? ORDER BY seq`, next.Seq)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				seq  int64
				hash string
			)
			if err := rows.Scan(&seq, &hash); err != nil {
				return err
			}
			d.Add(seq, hash)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		next.Retained = d.Sum()
		base = next
		return setBase(ctx, tx, base)
	})
	if err != nil {
		return gatehouse.AuditBase{}, 0, err
	}
	return base, pruned, nil
}
