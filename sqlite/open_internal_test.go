package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/gatehouse/gatehouse"
)

// The permission problem as the operating system reports it, for the runs
// as root where TestOpenPermissionDenied cannot make one.
func TestOpenErrorPermission(t *testing.T) {
	cause := fmt.Errorf("sqlite g.db: open: %w", &fs.PathError{Op: "open", Path: "g.db", Err: syscall.EACCES})
	err := openError("g.db", cause)
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Problem != ProblemPermission || !errors.Is(err, gatehouse.ErrUnavailable) {
		t.Fatalf("openError(EACCES) = %v, want ProblemPermission wrapping ErrUnavailable", err)
	}
	if err := openError("g.db", gatehouse.ErrSchemaTooNew); err != gatehouse.ErrSchemaTooNew {
		t.Errorf("openError(ErrSchemaTooNew) = %v, want it unchanged", err)
	}
}
