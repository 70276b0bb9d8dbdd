package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/schema"
)

// migrationFiles are the schema migrations, NNNN_name.sql, numbered from 1
// without gaps and applied in order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies every migration the database lacks, all in one
// transaction. It returns an error wrapping gatehouse.ErrSchemaTooNew,
// changing nothing, if the database has a migration this binary does not
// know, and one wrapping gatehouse.ErrCorrupt if the database holds tables
// but was never migrated by Gatehouse. Open calls it. A database already at
// the latest schema is only read, so a read-only file opens.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := schema.Load(migrationFiles)
	if err != nil {
		return fmt.Errorf("sqlite %s: migrate: %w", db.path, err)
	}
	if current, _, err := schemaVersion(ctx, db.write); err == nil && current == len(ms) {
		return nil
	}
	return db.writeTx(ctx, "migrate", func(tx *sql.Tx) error {
		current, tracked, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("schema version %d, this binary knows up to %d: %w",
				current, len(ms), gatehouse.ErrSchemaTooNew)
		}
		if !tracked {
			var tables int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`,
			).Scan(&tables); err != nil {
				return err
			}
			if tables > 0 {
				return fmt.Errorf("not a Gatehouse database: %d tables but no schema_migrations: %w",
					tables, gatehouse.ErrCorrupt)
			}
			if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_migrations (
				version    INTEGER PRIMARY KEY,
				name       TEXT NOT NULL,
				applied_at TEXT NOT NULL
			) STRICT`); err != nil {
				return err
			}
		}
		now := db.clock.Now().UTC().Format(time.RFC3339Nano)
		for _, m := range ms[current:] {
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m, err)
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, now); err != nil {
				return fmt.Errorf("migration %s: %w", m, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the database's migration version and the latest
// this binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := schema.Load(migrationFiles)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite %s: schema version: %w", db.path, err)
	}
	err = db.readTx(ctx, "schema version", func(tx *sql.Tx) error {
		current, _, err = schemaVersion(ctx, tx)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return current, len(ms), nil
}

// rowQuerier is a transaction or a connection pool.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// schemaVersion returns the highest applied migration and whether the
// database tracks migrations at all.
func schemaVersion(ctx context.Context, tx rowQuerier) (version int, tracked bool, err error) {
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`,
	).Scan(&n); err != nil {
		return 0, false, err
	}
	if n == 0 {
		return 0, false, nil
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, false, err
	}
	return version, true, nil
}
