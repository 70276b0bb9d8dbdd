package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
)

// API keys live in api_keys (migration 0004).

const apiKeyColumns = `id, name, subject, scopes, hash, created_at, created_by, expires_at, revoked_at`

// CreateAPIKey stores k and appends event in one transaction.
func (db *DB) CreateAPIKey(ctx context.Context, k gatehouse.APIKey, event gatehouse.AuditEvent) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	events, err := audit.Prepare([]gatehouse.AuditEvent{event}, k.CreatedAt)
	if err != nil {
		return fmt.Errorf("create api key: %w", err)
	}
	return db.writeTx(ctx, "create api key", auditHeadKeys, func(tx pgx.Tx, meta metaValues) error {
		tag, err := tx.Exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (id) DO NOTHING`,
			k.ID, k.Name, k.Subject.String(), strings.Join(k.Scopes, ","), k.Hash,
			micros(k.CreatedAt), k.CreatedBy, micros(k.ExpiresAt), micros(k.RevokedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("api key %q: %w", k.ID, gatehouse.ErrConflict)
		}
		var batch pgx.Batch
		if err := queueEvents(&batch, meta, events); err != nil {
			return err
		}
		return sendBatch(ctx, tx, &batch)
	})
}

// APIKey returns the key with id.
func (db *DB) APIKey(ctx context.Context, id string) (gatehouse.APIKey, error) {
	k, err := scanAPIKey(db.pool.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return gatehouse.APIKey{}, gatehouse.NotFoundf("api key %q", id)
	}
	if err != nil {
		return gatehouse.APIKey{}, db.wrap(ctx, "api key", err)
	}
	return k, nil
}

// ListAPIKeys returns every key, sorted by id.
func (db *DB) ListAPIKeys(ctx context.Context) ([]gatehouse.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, db.wrap(ctx, "list api keys", err)
	}
	defer rows.Close()
	var out []gatehouse.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, db.wrap(ctx, "list api keys", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap(ctx, "list api keys", err)
	}
	return out, nil
}

// RevokeAPIKey marks the key revoked at at, appending event, unless it is
// revoked already.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, at time.Time, event gatehouse.AuditEvent) error {
	events, err := audit.Prepare([]gatehouse.AuditEvent{event}, at)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	return db.writeTx(ctx, "revoke api key", auditHeadKeys, func(tx pgx.Tx, meta metaValues) error {
		var revoked int64
		err := tx.QueryRow(ctx, `SELECT revoked_at FROM api_keys WHERE id = $1 FOR UPDATE`, id).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return gatehouse.NotFoundf("api key %q", id)
		}
		if err != nil || revoked != 0 {
			return err
		}
		var batch pgx.Batch
		batch.Queue(`UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, micros(at), id)
		if err := queueEvents(&batch, meta, events); err != nil {
			return err
		}
		return sendBatch(ctx, tx, &batch)
	})
}

// micros is t in microseconds since the epoch; 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func scanAPIKey(row pgx.Row) (gatehouse.APIKey, error) {
	var (
		k                         gatehouse.APIKey
		subject, scopes           string
		created, expires, revoked int64
	)
	if err := row.Scan(&k.ID, &k.Name, &subject, &scopes, &k.Hash, &created, &k.CreatedBy, &expires, &revoked); err != nil {
		return gatehouse.APIKey{}, err
	}
	ref, err := gatehouse.ParseSubject(subject)
	if err != nil {
		return gatehouse.APIKey{}, fmt.Errorf("api key %q: subject %q: %v: %w", k.ID, subject, err, gatehouse.ErrCorrupt)
	}
	k.Subject, k.Scopes = ref, strings.Split(scopes, ",")
	from := func(us int64) time.Time {
		if us == 0 {
			return time.Time{}
		}
		return time.UnixMicro(us).UTC()
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = from(created), from(expires), from(revoked)
	return k, nil
}
