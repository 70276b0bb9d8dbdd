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

// DataTables are the tables whose rows a backup holds: every table of a
// store but the schema's own (schema_migrations, and meta, whose values a
// backup carries as the policy version and audit head). Each store's tests
// check that its migrations create exactly these, so a new table cannot be
// left out of backups unnoticed.
var DataTables = []string{"policy_objects", "audit_events", "action_records",
	"billing_customers", "billing_events", "api_keys", "chat_threads", "chat_messages", "chat_attachments"}

// OccupiedTables is a query, the same in every store, for the data tables
// that hold rows, comma-separated ("" when none does): a restore needs all
// of them empty.
var OccupiedTables = func() string {
	cases := make([]string, len(DataTables))
	for i, t := range DataTables {
		cases[i] = "CASE WHEN EXISTS (SELECT 1 FROM " + t + ") THEN '" + t + "' END"
	}
	return "SELECT concat_ws(',', " + strings.Join(cases, ", ") + ")"
}()
