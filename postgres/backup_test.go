package postgres_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/audit"
	gschema "github.com/gatehouse/gatehouse/internal/schema"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// sealedDump is a dump of one role at version 1 and n sealed events;
// before yielding event cut+1 it calls onCut.
func sealedDump(n, cut int, onCut func()) gatehouse.Dump {
	events := make([]gatehouse.AuditEvent, n)
	var head gatehouse.AuditHead
	for i := range events {
		events[i] = decision(i)
		audit.Seal(head, &events[i])
		head = gatehouse.AuditHead{Seq: events[i].Seq, Hash: events[i].Hash}
	}
	r := role("a")
	return gatehouse.Dump{
		Version: 1,
		Objects: []gatehouse.Object{{Kind: r.Kind, ID: r.ID, Body: r.After}},
		Head:    head,
		Events: func(yield func(gatehouse.AuditEvent, error) bool) {
			for i, e := range events {
				if i == cut && onCut != nil {
					onCut()
				}
				if !yield(e, nil) {
					return
				}
			}
		},
	}
}

// A connection lost while a restore streams fails it with nothing
// restored: the events consumed cannot be run again on a new connection.
// The store then restores as if nothing happened.
func TestRestoreConnectionLost(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	app := unique("gatehouse-restore-lost")
	db := openClosed(t, pgtest.WithParam(dsn, "application_name", app))
	admin := pgtest.Connect(t, pgtest.DSN(t))
	before := snapshot(t, db)

	// The events stream from COPY's own goroutine, where t.Fatal may not run.
	var cutErr error
	d := sealedDump(5000, 2000, func() {
		_, cutErr = admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE application_name = $1`, app)
	})
	err := db.Restore(t.Context(), d)
	if cutErr != nil {
		t.Fatal(cutErr)
	}
	if !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("Restore(connection lost midway) = %v, want ErrUnavailable", err)
	}
	if diff := cmp.Diff(before, snapshot(t, db)); diff != "" {
		t.Errorf("the failed restore changed the store (-before +after):\n%s", diff)
	}
	if err := db.Restore(t.Context(), sealedDump(5000, 0, nil)); err != nil {
		t.Fatalf("Restore() after the failure = %v", err)
	}
	verify(t, db, 5000)
}

// Backups hold every data table: a migration that adds a table must add it
// to gschema.DataTables, and the store's Dump and Restore must carry it.
func TestBackupCoversEveryTable(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	openClosed(t, dsn)
	rows, err := pgtest.Connect(t, dsn).Query(t.Context(), `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name NOT IN ('schema_migrations', 'meta') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(gschema.DataTables)); !slices.Equal(tables, want) {
		t.Errorf("tables %v, gschema.DataTables %v: include every table in backups", tables, want)
	}
}
