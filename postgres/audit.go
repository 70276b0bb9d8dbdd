package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	err = db.writeTx(ctx, "append audit", []string{keyHeadSeq, keyHeadHash}, func(tx pgx.Tx, meta metaValues) error {
		var batch pgx.Batch
		if err := queueEvents(&batch, meta, sealed); err != nil {
			return err
		}
		return sendBatch(ctx, tx, &batch)
	})
	if err != nil {
		return err
	}
	copy(events, sealed)
	return nil
}

// queueEvents seals events against the head recorded in meta, whose rows
// the transaction has locked, and queues their insert and the head's move.
func queueEvents(batch *pgx.Batch, meta metaValues, events []gatehouse.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	head, err := meta.head()
	if err != nil {
		return err
	}
	var (
		n                      = len(events)
		seqs                   = make([]int64, n)
		times                  = make([]time.Time, n)
		actors, actions        = make([]string, n), make([]string, n)
		targets, prevs, hashes = make([]string, n), make([]string, n), make([]string, n)
		befores, afters        = make([]*string, n), make([]*string, n)
		details                = make([]*string, n)
	)
	for i := range events {
		e := &events[i]
		audit.Seal(head, e)
		head = gatehouse.AuditHead{Seq: e.Seq, Hash: e.Hash}
		seqs[i], times[i], actors[i], actions[i], targets[i] = e.Seq, e.Time, e.Actor, e.Action, e.Target
		befores[i], afters[i], details[i] = rawText(e.Before), rawText(e.After), rawText(e.Detail)
		prevs[i], hashes[i] = e.PrevHash, e.Hash
	}
	batch.Queue(`INSERT INTO audit_events (seq, time, actor, action, target, before, after, detail, prev_hash, hash)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
			$6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
		seqs, times, actors, actions, targets, befores, afters, details, prevs, hashes)
	batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(head.Seq, 10), keyHeadSeq)
	batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, head.Hash, keyHeadHash)
	return nil
}

// copyEvents is queueEvents for many events: it seals them, writes them
// with COPY at once, and queues the new head.
func copyEvents(ctx context.Context, tx pgx.Tx, batch *pgx.Batch, meta metaValues, events []gatehouse.AuditEvent) error {
	head, err := meta.head()
	if err != nil {
		return err
	}
	for i := range events {
		audit.Seal(head, &events[i])
		head = gatehouse.AuditHead{Seq: events[i].Seq, Hash: events[i].Hash}
	}
	raw := func(r json.RawMessage) any {
		if len(r) == 0 {
			return nil
		}
		return []byte(r)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_events"},
		[]string{"seq", "time", "actor", "action", "target", "before", "after", "detail", "prev_hash", "hash"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := &events[i]
			return []any{e.Seq, e.Time, e.Actor, e.Action, e.Target, raw(e.Before), raw(e.After), raw(e.Detail), e.PrevHash, e.Hash}, nil
		}))
	if isDuplicateEvent(err) {
		return fmt.Errorf("audit events beyond the recorded head are already stored (%v): %w", err, gatehouse.ErrCorrupt)
	}
	if err != nil {
		return err
	}
	batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(head.Seq, 10), keyHeadSeq)
	batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, head.Hash, keyHeadHash)
	return nil
}

// rawText stores raw JSON as text, byte for byte, and absent JSON as NULL.
func rawText(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
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
	args := []any{f.AfterSeq}
	conds := []string{"seq > $1"}
	where := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.Actor != "" {
		where("actor = $%d", f.Actor)
	}
	if f.Action != "" {
		where("action = $%d", f.Action)
	}
	switch {
	case f.Kind == gatehouse.AuditKindDecision || f.Reason != "":
		where("action = $%d", gatehouse.ActionDecision)
	case f.Kind == gatehouse.AuditKindChange:
		where("action <> $%d", gatehouse.ActionDecision)
	}
	if f.Kind == gatehouse.AuditKindChange && f.Reason != "" {
		// Changes record no reason.
		conds = append(conds, "false")
	}
	if f.Reason != "" {
		// The action index narrows the scan to decisions; detail is JSON
		// text the store validated on append. ->> yields NULL for a
		// detail that is not an object, and a reason that is not a JSON
		// string never matches, as in every store.
		where("jsonb_typeof(detail::jsonb -> 'reason') = 'string' AND detail::jsonb ->> 'reason' = $%d", f.Reason)
	}
	if f.TargetPrefix != "" {
		// starts_with, unlike LIKE, has no wildcards.
		where("starts_with(target, $%d)", f.TargetPrefix)
	}
	if !f.Since.IsZero() {
		where("time >= $%d", ceilMicro(f.Since))
	}
	if !f.Until.IsZero() {
		where("time < $%d", ceilMicro(f.Until))
	}
	if f.BeforeSeq > 0 {
		where("seq < $%d", f.BeforeSeq)
	}
	order := "seq"
	if f.Newest {
		// The primary key, and the (actor|action|time, seq) indexes, scan
		// backwards as well.
		order = "seq DESC"
	}
	args = append(args, limit)
	query := `SELECT ` + eventColumns + ` FROM audit_events WHERE ` +
		strings.Join(conds, " AND ") + ` ORDER BY ` + order + ` LIMIT $` + strconv.Itoa(len(args))

	var out []gatehouse.AuditEvent
	err = db.readTx(ctx, "list audit", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eventColumns are the columns scanEvent reads, in its order.
const eventColumns = `seq, time, actor, action, target, before, after, detail, prev_hash, hash`

// scanEvent reads the event at row.
func scanEvent(row pgx.CollectableRow) (gatehouse.AuditEvent, error) {
	var e gatehouse.AuditEvent
	if err := row.Scan(&e.Seq, &e.Time, &e.Actor, &e.Action, &e.Target,
		&e.Before, &e.After, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return gatehouse.AuditEvent{}, err
	}
	e.Time = e.Time.UTC()
	return e, nil
}

// ceilMicro returns the first whole microsecond at or after t, since
// PostgreSQL keeps microseconds and pgx drops the nanoseconds of a
// parameter: comparing stored times with it agrees with comparing times.
func ceilMicro(t time.Time) time.Time {
	c := t.Truncate(time.Microsecond)
	if c.Before(t) {
		c = c.Add(time.Microsecond)
	}
	return c
}

// AuditHead returns the head recorded by the last append.
func (db *DB) AuditHead(ctx context.Context) (gatehouse.AuditHead, error) {
	var head gatehouse.AuditHead
	err := db.readTx(ctx, "audit head", func(tx pgx.Tx) error {
		meta, err := readMeta(ctx, tx, keyHeadSeq, keyHeadHash)
		if err != nil {
			return err
		}
		head, err = meta.head()
		return err
	})
	return head, err
}

// isDuplicateEvent reports an insert of an event whose seq is stored
// already: the recorded head is behind the log.
func isDuplicateEvent(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "audit_events"
}

// AuditBase returns where the chain begins after pruning.
func (db *DB) AuditBase(ctx context.Context) (gatehouse.AuditBase, error) {
	var base gatehouse.AuditBase
	err := db.readTx(ctx, "audit base", func(tx pgx.Tx) error {
		meta, err := readMeta(ctx, tx, keyBaseSeq, keyBaseHash, keyBaseKept)
		if err != nil {
			return err
		}
		base, err = meta.base()
		return err
	})
	return base, err
}

// PruneAudit deletes the events of action up to the last event older than
// before and records the new base, in one transaction that holds the audit
// head's lock, so appends wait for it.
func (db *DB) PruneAudit(ctx context.Context, action string, before time.Time) (gatehouse.AuditBase, int64, error) {
	if action == "" {
		return gatehouse.AuditBase{}, 0, gatehouse.Invalidf("prune audit: no action")
	}
	var (
		base   gatehouse.AuditBase
		pruned int64
	)
	keys := []string{keyBaseHash, keyBaseKept, keyBaseSeq, keyHeadHash, keyHeadSeq}
	err := db.writeTx(ctx, "prune audit", keys, func(tx pgx.Tx, meta metaValues) error {
		var err error
		if base, err = meta.base(); err != nil {
			return err
		}
		pruned = 0
		var through *int64
		if err := tx.QueryRow(ctx, `SELECT max(seq) FROM audit_events WHERE time < $1`, ceilMicro(before)).Scan(&through); err != nil {
			return err
		}
		if through == nil || *through <= base.Seq {
			return nil
		}
		next := gatehouse.AuditBase{Seq: *through}
		if err := tx.QueryRow(ctx, `SELECT hash FROM audit_events WHERE seq = $1`, next.Seq).Scan(&next.Hash); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM audit_events WHERE action = $1 AND seq <= $2`, action, next.Seq)
		if err != nil {
			return err
		}
		pruned = tag.RowsAffected()
		rows, err := tx.Query(ctx, `SELECT seq, hash FROM audit_events WHERE seq <= $1 ORDER BY seq`, next.Seq)
		if err != nil {
			return err
		}
		d := audit.NewRetainedDigest()
		var (
			seq  int64
			hash string
		)
		if _, err := pgx.ForEachRow(rows, []any{&seq, &hash}, func() error { d.Add(seq, hash); return nil }); err != nil {
			return err
		}
		next.Retained = d.Sum()
		var batch pgx.Batch
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(next.Seq, 10), keyBaseSeq)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, next.Hash, keyBaseHash)
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, next.Retained, keyBaseKept)
		if err := sendBatch(ctx, tx, &batch); err != nil {
			return err
		}
		base = next
		return nil
	})
	if err != nil {
		return gatehouse.AuditBase{}, 0, err
	}
	return base, pruned, nil
}
