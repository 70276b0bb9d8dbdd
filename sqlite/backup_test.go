package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"

	gschema "github.com/gatehouse/gatehouse/internal/schema"
)

// Backups hold every data table: a migration that adds a table must add it
// to gschema.DataTables, and the store's Dump and Restore must carry it.
func TestBackupCoversEveryTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	openClosed(t, path)
	rows, err := raw(t, path).QueryContext(t.Context(), `SELECT name FROM sqlite_schema
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT IN ('schema_migrations', 'meta')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(gschema.DataTables))
	if slices.Sort(tables); !slices.Equal(tables, want) {
		t.Errorf("tables %v, gschema.DataTables %v: include every table in backups", tables, want)
	}
}
