package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

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
	return db.writeTx(ctx, "create api key", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = ?`, k.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("api key %q: %w", k.ID, gatehouse.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Name, k.Subject.String(), strings.Join(k.Scopes, ","), k.Hash,
			micros(k.CreatedAt), k.CreatedBy, micros(k.ExpiresAt), micros(k.RevokedAt)); err != nil {
			return err
		}
		return appendEvents(ctx, tx, events)
	})
}

// APIKey returns the key with id.
func (db *DB) APIKey(ctx context.Context, id string) (gatehouse.APIKey, error) {
	k, err := scanAPIKey(db.read.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return gatehouse.APIKey{}, gatehouse.NotFoundf("api key %q", id)
	}
	if err != nil {
		return gatehouse.APIKey{}, db.wrap("api key", ctxErr(ctx, err))
	}
	return k, nil
}

// ListAPIKeys returns every key, sorted by id.
func (db *DB) ListAPIKeys(ctx context.Context) ([]gatehouse.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, db.wrap("list api keys", ctxErr(ctx, err))
	}
	defer rows.Close()
	var out []gatehouse.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, db.wrap("list api keys", ctxErr(ctx, err))
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("list api keys", ctxErr(ctx, err))
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
	return db.writeTx(ctx, "revoke api key", func(tx *sql.Tx) error {
		var revoked int64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM api_keys WHERE id = ?`, id).Scan(&revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return gatehouse.NotFoundf("api key %q", id)
		}
		if err != nil || revoked != 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, micros(at), id); err != nil {
			return err
		}
		return appendEvents(ctx, tx, events)
	})
}

func scanAPIKey(row scanner) (gatehouse.APIKey, error) {
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
	k.CreatedAt, k.ExpiresAt, k.RevokedAt = fromMicros(created), fromMicros(expires), fromMicros(revoked)
	return k, nil
}
