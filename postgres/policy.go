package postgres

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// NotifyChannel is the PostgreSQL notification channel on which every
// committed policy change is announced, with the payload "VERSION:SCHEMA":
// the new policy version and the schema of the store.
const NotifyChannel = "gatehouse_policy"

// LoadPolicy returns every stored object, sorted as gatehouse.SortObjects
// sorts them, and the policy version, from one consistent snapshot.
func (db *DB) LoadPolicy(ctx context.Context) ([]gatehouse.Object, int64, error) {
	var (
		objs    []gatehouse.Object
		version int64
	)
	err := db.readTx(ctx, "load policy", func(tx pgx.Tx) error {
		var err error
		objs, version, err = loadPolicy(ctx, tx)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return objs, version, nil
}

// ScanPolicy calls fn with every stored object, ordered by kind, position
// and id (bytewise), in one read transaction, and returns its policy
// version.
func (db *DB) ScanPolicy(ctx context.Context, fn func(gatehouse.Object) error) (int64, error) {
	var version int64
	err := db.readTx(ctx, "scan policy", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT kind, id, pos, body FROM policy_objects ORDER BY kind COLLATE "C", pos, id COLLATE "C"`)
		if err != nil {
			return err
		}
		var o gatehouse.Object
		if _, err := pgx.ForEachRow(rows, []any{&o.Kind, &o.ID, &o.Pos, &o.Body}, func() error {
			err := fn(o)
			o.Body = nil
			return err
		}); err != nil {
			return err
		}
		meta, err := readMeta(ctx, tx, keyVersion)
		if err != nil {
			return err
		}
		version, err = meta.int(keyVersion)
		return err
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// loadPolicy reads every object, sorted as gatehouse.SortObjects sorts
// them, and the policy version inside tx.
func loadPolicy(ctx context.Context, tx pgx.Tx) ([]gatehouse.Object, int64, error) {
	rows, err := tx.Query(ctx, `SELECT kind, id, pos, body FROM policy_objects`)
	if err != nil {
		return nil, 0, err
	}
	var (
		objs []gatehouse.Object
		o    gatehouse.Object
	)
	_, err = pgx.ForEachRow(rows, []any{&o.Kind, &o.ID, &o.Pos, &o.Body}, func() error {
		objs = append(objs, o)
		// Scanning into the same slice again would share its array.
		o.Body = nil
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	meta, err := readMeta(ctx, tx, keyVersion)
	if err != nil {
		return nil, 0, err
	}
	version, err := meta.int(keyVersion)
	if err != nil {
		return nil, 0, err
	}
	gatehouse.SortObjects(objs)
	return objs, version, nil
}

// PolicyVersion returns the current policy version.
func (db *DB) PolicyVersion(ctx context.Context) (int64, error) {
	var version int64
	err := db.readTx(ctx, "policy version", func(tx pgx.Tx) error {
		meta, err := readMeta(ctx, tx, keyVersion)
		if err != nil {
			return err
		}
		version, err = meta.int(keyVersion)
		return err
	})
	return version, err
}

// CommitPolicy applies changes in order and appends events in one
// transaction, and returns the new version: base+1, or base when changes is
// empty (events alone do not make a new policy). It returns ErrConflict if
// the stored version is not base, and ErrInvalid for a malformed change or
// event or a change whose Before is not byte for byte the stored body (nil:
// the object must not exist); either way nothing is written. On success the
// events' Seq, Time, PrevHash and Hash are filled in as stored, and a new
// version is announced on NotifyChannel.
func (db *DB) CommitPolicy(ctx context.Context, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) (int64, error) {
	sealed, err := audit.PrepareCommit(changes, events, db.clock.Now())
	if err != nil {
		return 0, err
	}
	keys := []string{keyVersion}
	if len(sealed) > 0 {
		keys = append(keys, keyHeadSeq, keyHeadHash)
	}
	var version int64
	err = db.writeTx(ctx, "commit policy", keys, func(tx pgx.Tx, meta metaValues) error {
		var batch pgx.Batch
		version, err = db.queueCommit(ctx, tx, &batch, meta, base, changes, sealed)
		if err != nil {
			return err
		}
		return sendBatch(ctx, tx, &batch)
	})
	if err != nil {
		return 0, err
	}
	copy(events, sealed)
	return version, nil
}

// queueCommit checks base against the locked policy version in meta and
// queues what CommitPolicy writes: the changes, the new version and its
// announcement, and the prepared events. It returns the new version.
func (db *DB) queueCommit(ctx context.Context, tx pgx.Tx, batch *pgx.Batch, meta metaValues, base int64, changes []gatehouse.Change, sealed []gatehouse.AuditEvent) (int64, error) {
	current, err := meta.int(keyVersion)
	if err != nil {
		return 0, err
	}
	if current != base {
		return 0, fmt.Errorf("base version %d, stored version %d: %w", base, current, gatehouse.ErrConflict)
	}
	version := base
	if len(changes) > 0 {
		if err := queueChanges(ctx, tx, batch, changes); err != nil {
			return 0, err
		}
		version = base + 1
		batch.Queue(`UPDATE meta SET value = $1 WHERE key = $2`, strconv.FormatInt(version, 10), keyVersion)
		// Delivered to listeners when, and only if, the transaction commits.
		batch.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notifyPayload(version, db.schema))
	}
	if len(sealed) > copyThreshold {
		return version, copyEvents(ctx, tx, batch, meta, sealed)
	}
	if err := queueEvents(batch, meta, sealed); err != nil {
		return 0, err
	}
	return version, nil
}

// copyThreshold is the number of new objects or events above which a commit
// writes them with COPY, streamed, instead of as arrays in one statement:
// applying a million users as arrays made the client hold several copies
// of every object at once (17 GB).
const copyThreshold = 1000

// notifyPayload announces version of the store in schema.
func notifyPayload(version int64, schema string) string {
	return strconv.FormatInt(version, 10) + ":" + schema
}

type objectKey struct {
	kind gatehouse.Kind
	id   string
}

// queueChanges checks each change's Before against the stored body, as it
// stands after the changes before it, and queues the writes that leave
// every object as the last change to it says, one statement per kind of
// write.
func queueChanges(ctx context.Context, tx pgx.Tx, batch *pgx.Batch, changes []gatehouse.Change) error {
	var (
		order     []objectKey
		last      = map[objectKey]gatehouse.Change{}
		kinds     []string
		ids       []string
		current   = map[objectKey][]byte{}
		upsertPos []int64
		bodies    []string
	)
	for _, c := range changes {
		k := objectKey{c.Kind, c.ID}
		if _, seen := last[k]; !seen {
			order = append(order, k)
			kinds = append(kinds, string(c.Kind))
			ids = append(ids, c.ID)
		}
		last[k] = c
	}
	rows, err := tx.Query(ctx, `SELECT o.kind, o.id, o.body FROM policy_objects o
		JOIN unnest($1::text[], $2::text[]) AS k (kind, id) USING (kind, id)`, kinds, ids)
	if err != nil {
		return err
	}
	var (
		kind, id string
		body     []byte
		existed  = map[objectKey]bool{}
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &id, &body}, func() error {
		k := objectKey{gatehouse.Kind(kind), id}
		current[k], existed[k] = body, true
		body = nil
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		k := objectKey{c.Kind, c.ID}
		stored, exists := current[k]
		switch {
		case c.Before == nil && exists:
			return gatehouse.Invalidf("create %s/%s: already exists", c.Kind, c.ID)
		case c.Before != nil && !exists:
			return gatehouse.Invalidf("%s %s/%s: does not exist", c.Op(), c.Kind, c.ID)
		case c.Before != nil && !bytes.Equal(stored, c.Before):
			return gatehouse.Invalidf("%s %s/%s: before does not match the stored object", c.Op(), c.Kind, c.ID)
		}
		if c.After == nil {
			delete(current, k)
		} else {
			current[k] = c.After
		}
	}
	kinds, ids = kinds[:0], ids[:0]
	var (
		delKinds, delIDs []string
		creates          []objectKey
	)
	for _, k := range order {
		if c := last[k]; c.After != nil && !existed[k] {
			creates = append(creates, k)
		}
	}
	copied := len(creates) > copyThreshold
	if copied {
		// Checked above not to exist, and the locked version keeps other
		// writers out: a plain COPY.
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"policy_objects"}, []string{"kind", "id", "pos", "body"},
			pgx.CopyFromSlice(len(creates), func(i int) ([]any, error) {
				k := creates[i]
				c := last[k]
				return []any{string(k.kind), k.id, int64(c.Pos), []byte(c.After)}, nil
			}))
		if err != nil {
			return err
		}
	}
	for _, k := range order {
		c := last[k]
		if c.After == nil {
			delKinds, delIDs = append(delKinds, string(k.kind)), append(delIDs, k.id)
			continue
		}
		if copied && !existed[k] {
			continue
		}
		kinds, ids = append(kinds, string(k.kind)), append(ids, k.id)
		upsertPos, bodies = append(upsertPos, int64(c.Pos)), append(bodies, string(c.After))
	}
	if len(delKinds) > 0 {
		batch.Queue(`DELETE FROM policy_objects o USING unnest($1::text[], $2::text[]) AS k (kind, id)
			WHERE o.kind = k.kind AND o.id = k.id`, delKinds, delIDs)
	}
	if len(kinds) > 0 {
		batch.Queue(`INSERT INTO policy_objects (kind, id, pos, body)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
			ON CONFLICT (kind, id) DO UPDATE SET pos = excluded.pos, body = excluded.body`,
			kinds, ids, upsertPos, bodies)
	}
	return nil
}

// sendBatch runs the queued statements in one round trip.
func sendBatch(ctx context.Context, tx pgx.Tx, batch *pgx.Batch) error {
	if batch.Len() == 0 {
		return nil
	}
	err := tx.SendBatch(ctx, batch).Close()
	if isDuplicateEvent(err) {
		return fmt.Errorf("audit events beyond the recorded head are already stored (%v): %w", err, gatehouse.ErrCorrupt)
	}
	return err
}
