package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// LoadPolicy returns every stored object, sorted as gatehouse.SortObjects
// sorts them, and the policy version, from one consistent snapshot.
func (db *DB) LoadPolicy(ctx context.Context) ([]gatehouse.Object, int64, error) {
	var (
		objs    []gatehouse.Object
		version int64
	)
	err := db.readTx(ctx, "load policy", func(tx *sql.Tx) error {
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
// and id, in one read transaction, and returns its policy version.
func (db *DB) ScanPolicy(ctx context.Context, fn func(gatehouse.Object) error) (int64, error) {
	var version int64
	err := db.readTx(ctx, "scan policy", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT kind, id, pos, body FROM policy_objects ORDER BY kind, pos, id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				o    gatehouse.Object
				body []byte
			)
			if err := rows.Scan(&o.Kind, &o.ID, &o.Pos, &body); err != nil {
				return err
			}
			o.Body = body
			if err := fn(o); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return readMeta(ctx, tx, "policy_version", &version)
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// loadPolicy reads every object, sorted as gatehouse.SortObjects sorts
// them, and the policy version inside tx.
func loadPolicy(ctx context.Context, tx *sql.Tx) ([]gatehouse.Object, int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT kind, id, pos, body FROM policy_objects`)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var objs []gatehouse.Object
	for rows.Next() {
		var o gatehouse.Object
		var body []byte
		if err := rows.Scan(&o.Kind, &o.ID, &o.Pos, &body); err != nil {
			return nil, 0, err
		}
		o.Body = body
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var version int64
	if err := readMeta(ctx, tx, "policy_version", &version); err != nil {
		return nil, 0, err
	}
	gatehouse.SortObjects(objs)
	return objs, version, nil
}

// PolicyVersion returns the current policy version.
func (db *DB) PolicyVersion(ctx context.Context) (int64, error) {
	var version int64
	err := db.readTx(ctx, "policy version", func(tx *sql.Tx) error {
		return readMeta(ctx, tx, "policy_version", &version)
	})
	return version, err
}

// CommitPolicy applies changes in order and appends events in one
// transaction, and returns the new version: base+1, or base when changes is
// empty (events alone do not make a new policy). It returns ErrConflict if
// the stored version is not base, and ErrInvalid for a malformed change or
// event or a change whose Before is not byte for byte the stored body (nil:
// the object must not exist); either way nothing is written. On success the
// events' Seq, Time, PrevHash and Hash are filled in as stored.
func (db *DB) CommitPolicy(ctx context.Context, base int64, changes []gatehouse.Change, events []gatehouse.AuditEvent) (int64, error) {
	sealed, err := audit.PrepareCommit(changes, events, db.clock.Now())
	if err != nil {
		return 0, err
	}
	var version int64
	err = db.writeTx(ctx, "commit policy", func(tx *sql.Tx) error {
		version, err = commitPolicy(ctx, tx, base, changes, sealed)
		return err
	})
	if err != nil {
		return 0, err
	}
	copy(events, sealed)
	return version, nil
}

// commitPolicy is CommitPolicy inside tx, with events already prepared.
func commitPolicy(ctx context.Context, tx *sql.Tx, base int64, changes []gatehouse.Change, sealed []gatehouse.AuditEvent) (int64, error) {
	var current int64
	if err := readMeta(ctx, tx, "policy_version", &current); err != nil {
		return 0, err
	}
	if current != base {
		return 0, fmt.Errorf("base version %d, stored version %d: %w", base, current, gatehouse.ErrConflict)
	}
	if err := applyChanges(ctx, tx, changes); err != nil {
		return 0, err
	}
	if err := appendEvents(ctx, tx, sealed); err != nil {
		return 0, err
	}
	if len(changes) == 0 {
		return base, nil
	}
	return base + 1, setMeta(ctx, tx, "policy_version", base+1)
}

// objectWriter checks and writes policy objects through statements
// prepared once per transaction: a commit of a whole document writes
// hundreds of thousands of objects, and preparing each statement again
// cost more than running it.
type objectWriter struct {
	read, insert, upsert, remove *sql.Stmt
}

func prepareObjectWriter(ctx context.Context, tx *sql.Tx) (*objectWriter, error) {
	w := &objectWriter{}
	for _, s := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.read, `SELECT body FROM policy_objects WHERE kind = ? AND id = ?`},
		{&w.insert, `INSERT INTO policy_objects (kind, id, pos, body) VALUES (?, ?, ?, ?)`},
		{&w.upsert, `INSERT INTO policy_objects (kind, id, pos, body) VALUES (?, ?, ?, ?)
			ON CONFLICT (kind, id) DO UPDATE SET pos = excluded.pos, body = excluded.body`},
		{&w.remove, `DELETE FROM policy_objects WHERE kind = ? AND id = ?`},
	} {
		stmt, err := tx.PrepareContext(ctx, s.query)
		if err != nil {
			w.close()
			return nil, err
		}
		*s.dst = stmt
	}
	return w, nil
}

func (w *objectWriter) close() {
	for _, s := range []*sql.Stmt{w.read, w.insert, w.upsert, w.remove} {
		if s != nil {
			s.Close()
		}
	}
}

// applyChanges applies changes in order (see objectWriter.apply).
func applyChanges(ctx context.Context, tx *sql.Tx, changes []gatehouse.Change) error {
	if len(changes) == 0 {
		return nil
	}
	w, err := prepareObjectWriter(ctx, tx)
	if err != nil {
		return err
	}
	defer w.close()
	for _, c := range changes {
		if err := w.apply(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// apply checks c.Before against the stored body and writes c.After. A
// create is a plain insert, which the primary key refuses if the object
// exists: most objects of a large commit are new, and are not read first.
func (w *objectWriter) apply(ctx context.Context, c gatehouse.Change) error {
	if c.Before == nil {
		_, err := w.insert.ExecContext(ctx, string(c.Kind), c.ID, c.Pos, string(c.After))
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
			return gatehouse.Invalidf("create %s/%s: already exists", c.Kind, c.ID)
		}
		return err
	}
	var stored []byte
	err := w.read.QueryRowContext(ctx, string(c.Kind), c.ID).Scan(&stored)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	switch {
	case !exists:
		return gatehouse.Invalidf("%s %s/%s: does not exist", c.Op(), c.Kind, c.ID)
	case !bytes.Equal(stored, c.Before):
		return gatehouse.Invalidf("%s %s/%s: before does not match the stored object", c.Op(), c.Kind, c.ID)
	}
	if c.After == nil {
		_, err = w.remove.ExecContext(ctx, string(c.Kind), c.ID)
		return err
	}
	_, err = w.upsert.ExecContext(ctx, string(c.Kind), c.ID, c.Pos, string(c.After))
	return err
}

// readMeta scans the meta value of key into dst.
func readMeta(ctx context.Context, tx *sql.Tx, key string, dst any) error {
	err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(dst)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("meta %s missing: %w", key, gatehouse.ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("read meta %s: %w", key, err)
	}
	return nil
}

func setMeta(ctx context.Context, tx *sql.Tx, key string, value any) error {
	_, err := tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ?`, value, key)
	return err
}
