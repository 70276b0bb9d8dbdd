package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse"
)

func TestWrap(t *testing.T) {
	db := &DB{where: "db.example:5432/gatehouse"}
	tests := []struct {
		code string
		want error
	}{
		{"55P03", gatehouse.ErrUnavailable}, // lock_not_available
		{"40001", gatehouse.ErrConflict},    // serialization_failure
		{"40P01", gatehouse.ErrConflict},    // deadlock_detected
		{"57P01", gatehouse.ErrUnavailable}, // admin_shutdown
		{"57P03", gatehouse.ErrUnavailable}, // cannot_connect_now
		{"08006", gatehouse.ErrUnavailable}, // connection_failure
		{"53300", gatehouse.ErrUnavailable}, // too_many_connections
		{"23505", nil},                      // unique_violation
		{"28P01", nil},                      // invalid_password
	}
	for _, tt := range tests {
		pe := &pgconn.PgError{Severity: "ERROR", Code: tt.code, Message: "m"}
		err := db.wrap(t.Context(), "op", fmt.Errorf("inner: %w", pe))
		if got := gatehouse.ErrorCode(err); tt.want != nil && !errors.Is(err, tt.want) || tt.want == nil && got != gatehouse.CodeInternal {
			t.Errorf("wrap(SQLSTATE %s) = %v (code %s), want %v", tt.code, err, got, tt.want)
		}
		if !strings.HasPrefix(err.Error(), "postgres db.example:5432/gatehouse: op: ") || !strings.Contains(err.Error(), tt.code) {
			t.Errorf("wrap(SQLSTATE %s) = %v, want it to name the server, the operation and the SQLSTATE", tt.code, err)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := db.wrap(ctx, "op", &pgconn.PgError{Code: "57P01"})
	if !errors.Is(err, context.Canceled) || errors.Is(err, gatehouse.ErrUnavailable) {
		t.Errorf("wrap(after the context ended) = %v, want context.Canceled alone", err)
	}
	err = db.wrap(t.Context(), "op", fmt.Errorf("base 1, stored 2: %w", gatehouse.ErrConflict))
	if !errors.Is(err, gatehouse.ErrConflict) {
		t.Errorf("wrap(ErrConflict) = %v, want it kept", err)
	}
}
