package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
)

// migrationFiles are the schema migrations, NNNN_name.sql, numbered from 1
// without gaps and applied in order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in order.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	// Glob returns names sorted, and the zero-padded numbers sort numerically.
	ms := make([]migration, 0, len(names))
	for i, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 || label == "" {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql numbered %d", name, i+1)
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: label, sql: string(body)})
	}
	return ms, nil
}

// Migrate applies every migration the schema lacks, all in one transaction;
// processes migrating the same schema at once take turns. It returns an
// error wrapping gatehouse.ErrSchemaTooNew, changing nothing, if the schema
// has a migration this binary does not know, and one wrapping
// gatehouse.ErrCorrupt if the schema holds tables but was never migrated by
// Gatehouse. Open calls it.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := loadMigrations()
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
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, now); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}

// SchemaVersion returns the schema's migration version and the latest this
// binary knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := loadMigrations()
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
