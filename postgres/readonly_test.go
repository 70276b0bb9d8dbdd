package postgres_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/postgres/pgtest"
)

// TestReadOnlyServer: a server that refuses writes (a standby, or
// default_transaction_read_only) makes writes and CheckWritable
// ErrUnavailable, not an internal error, while reads answer.
func TestReadOnlyServer(t *testing.T) {
	t.Parallel()
	dsn := newSchema(t)
	rw := openClosed(t, dsn)
	if _, err := rw.CommitPolicy(t.Context(), 0, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "r", After: json.RawMessage(`{"name":"r"}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	ro := openClosed(t, pgtest.WithParam(dsn, "default_transaction_read_only", "on"))
	if _, v, err := ro.LoadPolicy(t.Context()); err != nil || v != 1 {
		t.Errorf("LoadPolicy(read-only) = version %d, %v; want 1, nil", v, err)
	}
	if err := ro.CheckWritable(t.Context()); !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CheckWritable(read-only) = %v, want ErrUnavailable", err)
	}
	_, err := ro.CommitPolicy(t.Context(), 1, []gatehouse.Change{{Kind: gatehouse.KindRole, ID: "s", After: json.RawMessage(`{"name":"s"}`)}}, nil)
	if !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("CommitPolicy(read-only) = %v, want ErrUnavailable", err)
	}
	if err := rw.CheckWritable(t.Context()); err != nil {
		t.Errorf("CheckWritable(read-write) = %v, want nil", err)
	}
}
