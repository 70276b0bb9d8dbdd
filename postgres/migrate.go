package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/internal/schema"
)

// migrationFiles are the schema migrations, NNNN_name.sql, numbered from 1
// without gaps and applied in order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies every migration the schema lacks, all in one transaction;
// processes migrating the same schema at once take turns. It returns an
// error wrapping gatehouse.ErrSchemaTooNew, changing nothing, if the schema
// has a migration this binary does not know, and one wrapping
// gatehouse.ErrCorrupt if the schema holds tables but was never migrated by
// Gatehouse. Open calls it.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := schema.Load(migrationFiles)
	if err != nil {
		return fmt.Errorf("postgres %s: migrate: %w", db.where, err)
	}
	return db.writeTx(ctx, "migrate", nil, func(tx pgx.Tx, _ metaValues) error {
		if _, err := tx.Exec(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('gatehouse migrate ' || current_schema(), 0))`,
		); err != nil {
			return err
		}
		current, tracked, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("schema %s has version %d, this binary knows up to %d: %w",
				db.schema, current, len(ms), gatehouse.ErrSchemaTooNew)
		}
		if !tracked {
			var relations int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_class c
				JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f')`,
			).Scan(&relations); err != nil {
				return err
			}
			if relations > 0 {
				return fmt.Errorf("schema %s is not a Gatehouse schema: %d tables or views but no schema_migrations; "+
					"choose another with search_path in the DSN: %w", db.schema, relations, gatehouse.ErrCorrupt)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
				version    integer PRIMARY KEY,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL
			)`); err != nil {
				return err
			}
		}
		now := db.clock.Now()
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %s: %w", m, err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, now); err != nil {
				return fmt.Errorf("migration %s: %w", m, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the schema's migration version and the latest this
// binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := schema.Load(migrationFiles)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres %s: schema version: %w", db.where, err)
	}
	err = db.readTx(ctx, "schema version", func(tx pgx.Tx) error {
		current, _, err = schemaVersion(ctx, tx)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return current, len(ms), nil
}

// schemaVersion returns the highest applied migration and whether the
// schema tracks migrations at all.
func schemaVersion(ctx context.Context, tx pgx.Tx) (version int, tracked bool, err error) {
	if err := tx.QueryRow(ctx,
		`SELECT to_regclass(quote_ident(current_schema()) || '.schema_migrations') IS NOT NULL`,
	).Scan(&tracked); err != nil {
		return 0, false, err
	}
	if !tracked {
		return 0, false, nil
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, false, err
	}
	return version, true, nil
}
