// Package schema loads a store's embedded, numbered SQL migrations; every
// store applies them the same way.
package schema

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one NNNN_name.sql file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// String names the migration as its file does, without the extension.
func (m Migration) String() string { return fmt.Sprintf("%04d_%s", m.Version, m.Name) }

// Load returns the migrations/*.sql files of fsys in order. They must be
// named NNNN_name.sql and numbered from 1 without gaps.
func Load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	// Glob returns names sorted, and the zero-padded numbers sort numerically.
	ms := make([]Migration, 0, len(names))
	for i, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		num, label, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v != i+1 || label == "" {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql numbered %d", name, i+1)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: label, SQL: string(body)})
	}
	return ms, nil
}

// OccupiedTables is a query, the same in every store, for the tables that
// hold rows, comma-separated ("" when none does): a restore needs all of
// them empty.
const OccupiedTables = `SELECT concat_ws(',',
	CASE WHEN EXISTS (SELECT 1 FROM policy_objects) THEN 'policy_objects' END,
	CASE WHEN EXISTS (SELECT 1 FROM audit_events) THEN 'audit_events' END,
	CASE WHEN EXISTS (SELECT 1 FROM action_records) THEN 'action_records' END,
	CASE WHEN EXISTS (SELECT 1 FROM billing_customers) THEN 'billing_customers' END,
	CASE WHEN EXISTS (SELECT 1 FROM billing_events) THEN 'billing_events' END)`
