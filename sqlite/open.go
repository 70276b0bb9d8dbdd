package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse"
)

// OpenProblem says why a database file could not be opened, so that a
// surface can tell the user what to fix rather than "try again".
type OpenProblem string

// Open problems.
const (
	// ProblemMissingDirectory: the file's directory does not exist (Open
	// never creates directories).
	ProblemMissingDirectory OpenProblem = "missing_directory"
	// ProblemPermission: the process may not read or create the file, or
	// look into its directory.
	ProblemPermission OpenProblem = "permission_denied"
	// ProblemIsDirectory: the path names a directory.
	ProblemIsDirectory OpenProblem = "is_directory"
	// ProblemNotDatabase: the file is not a SQLite database, is damaged, or
	// is another application's database.
	ProblemNotDatabase OpenProblem = "not_a_database"
	// ProblemLocked: another process held the database's lock beyond the
	// busy timeout; retrying later may succeed.
	ProblemLocked OpenProblem = "locked"
)

// OpenError is an Open failure with its classified problem. It wraps the
// cause and the gatehouse sentinel of the problem: ErrCorrupt for
// ProblemNotDatabase, ErrUnavailable for the others.
type OpenError struct {
	// Path is the path as given to Open.
	Path    string
	Problem OpenProblem
	Err     error
}

func (e *OpenError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *OpenError) Unwrap() error { return e.Err }

// CheckPath reports, as an *OpenError, a path Open cannot use before it
// touches anything: a missing directory, a directory in the way, or a
// directory this process may not look into. It returns the absolute path.
func CheckPath(path string) (string, error) {
	if path == "" {
		return "", gatehouse.Invalidf("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite %s: open: %w", path, err)
	}
	// SQLite would report a missing directory only as "unable to open";
	// checking first names the cause.
	if _, err := os.Stat(filepath.Dir(abs)); err != nil {
		return "", openError(path, fmt.Errorf("sqlite %s: open: %w", path, err))
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return "", &OpenError{Path: path, Problem: ProblemIsDirectory,
			Err: fmt.Errorf("sqlite %s: open: is a directory: %w", path, gatehouse.ErrUnavailable)}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", openError(path, fmt.Errorf("sqlite %s: open: %w", path, err))
	}
	return abs, nil
}

// openError classifies err, an Open failure that names the path, as an
// *OpenError; an error it cannot classify (a schema too new, a cancelled
// context) is returned as it is.
func openError(path string, err error) error {
	var oe *OpenError
	if errors.As(err, &oe) {
		return err
	}
	var p OpenProblem
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p = ProblemMissingDirectory
	case errors.Is(err, fs.ErrPermission):
		p = ProblemPermission
	case errors.Is(err, errLocked):
		p = ProblemLocked
	case errors.Is(err, gatehouse.ErrCorrupt):
		p = ProblemNotDatabase
	}
	switch {
	case p == "":
		return err
	case errors.Is(err, gatehouse.ErrUnavailable), errors.Is(err, gatehouse.ErrCorrupt):
		// From wrap or Migrate, with its sentinel.
	default:
		err = fmt.Errorf("%w: %w", err, gatehouse.ErrUnavailable)
	}
	return &OpenError{Path: path, Problem: p, Err: err}
}
